"""The game processes of the local engine (:mod:`bgtrain.runner.engine`).

:class:`LocalFleet` starts N copies of the game loop (:func:`bgtrain.runner.actor.play`)
as processes on this machine, hands them a stop flag and a shared game budget, and
collects their reports.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from collections.abc import Sequence
from typing import Any

from bgtrain.runner.actor import ActorConfig, Report, actor_process_main

#: After a stop's timeout, or a kill, this long for each process told to go.
EXIT_TIMEOUT_S = 5.0
#: How long one wait for reports lasts while a stop waits for the games to end.
STOP_DRAIN_S = 0.05


class _Slots:
    """A game budget shared by processes (``None``: unlimited)."""

    def __init__(self, ctx: Any, max_games: int | None) -> None:
        self._left = ctx.Value("q", -1 if max_games is None else max_games)

    def take(self) -> bool:
        with self._left.get_lock():
            if self._left.value < 0:
                return True
            if self._left.value == 0:
                return False
            self._left.value -= 1
            return True

    def spent(self) -> bool:
        with self._left.get_lock():
            return self._left.value == 0


class LocalFleet:
    """Game processes on this machine (``spawn``: the same on Windows and Linux)."""

    def __init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self._stop = self._ctx.Event()
        self._queue: Any = self._ctx.Queue()
        self._procs: list[Any] = []
        self._late: list[Report] = []

    def start(self, configs: Sequence[ActorConfig], max_games: int | None) -> None:
        # Kept referenced until the children have started: spawn unpickles it later.
        self._slots = slots = _Slots(self._ctx, max_games)
        for config in configs:
            proc = self._ctx.Process(
                target=actor_process_main,
                args=(config, self._stop, slots, self._queue),
                name=f"bgtrain-actor-{config.actor_id}",
                daemon=True,
            )
            proc.start()
            self._procs.append(proc)

    def _drain(self, timeout: float) -> list[Report]:
        """What the queue holds, waiting at most ``timeout`` for the first report."""
        out: list[Report] = []
        try:
            out.append(self._queue.get(timeout=timeout))
            while True:
                out.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return out

    def reports(self, timeout: float) -> list[Report]:
        """Reports that arrived, waiting at most ``timeout`` for the first."""
        late, self._late = self._late, []
        return late + self._drain(0 if late else timeout)

    def stop(self, timeout: float) -> None:
        """Ask every game to stop (a game in progress is saved as cut short) and wait at
        most ``timeout`` s before terminating; the reports stay readable."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        # Drain while waiting: a process cannot exit until its queued reports are read.
        while self.alive() and time.monotonic() < deadline:
            self._late += self._drain(STOP_DRAIN_S)
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(EXIT_TIMEOUT_S)
        self._late += self._drain(0)

    def kill(self) -> None:
        # Called from a signal handler that may have interrupted stop() inside
        # ``self._stop.set()``: touching that event's lock again would deadlock. SIGKILL
        # and waitpid take no lock.
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()
        for proc in self._procs:
            proc.join(EXIT_TIMEOUT_S)

    def alive(self) -> int:
        """How many game processes still run."""
        return sum(proc.is_alive() for proc in self._procs)

    def pids(self) -> list[int]:
        """The game processes' ids (their temp files carry them)."""
        return [proc.pid for proc in self._procs if proc.pid is not None]
