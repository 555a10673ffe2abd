"""The learner in its own process beside the games (torch is imported in that process only).

:class:`LearnerProcess` starts it, waits for its start-up to succeed or fail (the learner
takes the root's lock and loads the model before it says it started), and stops it:
cleanly (its batch in hand is published or returned) or at once.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import signal
from pathlib import Path
from typing import Any, NamedTuple

from bgtrain.errors import BgtrainError
from bgtrain.learn.settings import LearnerSettings

#: A clean stop waits this long for the learner to publish or return its batch.
LEARNER_STOP_TIMEOUT_S = 60.0
#: Then, or after a failed start, this long for a process told to go (terminated).
LEARNER_EXIT_TIMEOUT_S = 10.0
#: How often the start-up wait looks whether the process died without a word.
START_POLL_S = 0.5


class StartStatus(NamedTuple):
    """What the learner process says once its start-up is over."""

    #: Why it could not start (the learner's own message); ``None``: it runs.
    error: str | None = None


def learner_process_main(root: Path, settings: LearnerSettings, stop: Any, status: Any) -> None:
    """Start a learner, put its :class:`StartStatus` on ``status``, run until ``stop`` is
    set, then stop it (its batch in hand is published or returned)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run handles Ctrl+C and sets ``stop``
    from bgtrain.learn.learner import BackgroundLearner

    # This process's entry point, as a script's main: the learner's lines go to its stdout.
    learner = BackgroundLearner(root, settings, console=print)
    try:
        learner.start()
    except BgtrainError as exc:
        status.put(StartStatus(str(exc)))
        return
    status.put(StartStatus())
    stop.wait()
    learner.stop()


class LearnerProcess:
    """One learner process (``spawn``: the same on Windows and Linux)."""

    def __init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self._stop = self._ctx.Event()
        self._status: Any = self._ctx.Queue()
        self._proc: Any = None

    def start(self, root: Path, settings: LearnerSettings) -> None:
        """Start the learner on ``root`` and return once it runs.

        Raises:
            BgtrainError: the learner's own message when it could not start (the root is
                locked by another learner, its model is unreadable...), or that the
                process died while starting.
        """
        self._proc = self._ctx.Process(
            target=learner_process_main,
            args=(root, settings, self._stop, self._status),
            name="bgtrain-learner",
            daemon=True,
        )
        self._proc.start()
        while True:
            try:
                started: StartStatus = self._status.get(timeout=START_POLL_S)
                break
            except queue.Empty:
                if not self._proc.is_alive():
                    raise BgtrainError("the learner process died while starting") from None
        if started.error is not None:
            self._proc.join(LEARNER_EXIT_TIMEOUT_S)
            raise BgtrainError(started.error)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def stop(self) -> None:
        """Ask the learner to stop and wait (terminated if it takes too long)."""
        if self._proc is None:
            return
        self._stop.set()
        self._proc.join(LEARNER_STOP_TIMEOUT_S)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(LEARNER_EXIT_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL, no lock taken: safe from a signal handler that interrupted :meth:`stop`."""
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
