"""The game-side API: ``record()`` each decision, ``finish()`` each game.

``record()`` copies the state into a preallocated float32 block (no per-step arrays);
``finish()`` hands the episode to a background writer thread and returns at once, so the
game loop never waits on the disk (unless ``MAX_PENDING_WRITES`` games already wait to be
written: memory stays bounded when the disk is slower than the game). The writer
validates, writes a dot-named temp file in ``buffer/``, fsyncs it and links it into
place under a name nobody holds (guarantee 1).

Names never clash: each recorder has its own actor id (host, pid and a per-process
counter by default) and its names' millisecond field only increases; the final rename
refuses to overwrite as a last safety.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bgtrain.errors import EpisodeWriteError, InvalidEpisodeError
from bgtrain.store.episode import build_episode, episode_bytes, episode_file_name
from bgtrain.store.fs import free_name, temp_name_for
from bgtrain.store.root import DEFAULT_ROOT, TrainingRoot

logger = logging.getLogger(__name__)

_recorder_ids = itertools.count()
_INITIAL_CAPACITY = 256
#: flush() returns the paths written since the previous flush, the last this many at most:
#: a recorder that is never flushed (a game process playing for hours) keeps no more, so
#: its memory stays flat. The same bound holds for failed writes not yet reported.
MAX_REMEMBERED_WRITES = 1_000
#: finish() waits while this many games wait to be written: a game loop faster than the
#: disk must not hold every unwritten game in memory (a one-step game outruns an fsync).
MAX_PENDING_WRITES = 32


def default_actor() -> str:
    host = socket.gethostname().split(".")[0][:16] or "host"
    n = next(_recorder_ids)
    return f"{host}-{os.getpid()}" + (f"-{n}" if n else "")


class EpisodeRecorder:
    """Records one game at a time and saves each into a training root's ``buffer/``.

    >>> rec = EpisodeRecorder("local_training", env="CartPole-v1")   # doctest: +SKIP
    >>> rec.record(state, action, reward, logp)                      # doctest: +SKIP
    >>> rec.finish("Victory")                                        # doctest: +SKIP
    >>> rec.close()                                                  # doctest: +SKIP

    ``remember``: how many written paths :meth:`flush` returns at most (0: none, for a
    loop that never asks, so nothing is kept per game).

    ``sink``: where a finished game's bytes go instead of ``buffer/``: called in the
    writer thread with the file's name and bytes, it returns where the root holds it
    once it is stored (a game on another machine sends it to the learner's machine:
    :mod:`bgtrain.store.remote_writer`); an exception it raises is the write's failure.
    """

    def __init__(
        self,
        root: str | Path | TrainingRoot = DEFAULT_ROOT,
        *,
        actor: str | None = None,
        env: str | None = None,
        policy_version: int | None = None,
        compress: bool = False,
        remember: int = MAX_REMEMBERED_WRITES,
        sink: Callable[[str, bytes], Path] | None = None,
    ) -> None:
        self.root = TrainingRoot.at(root)
        self._sink = sink
        self.buffer = self.root.buffer
        self.actor = actor or default_actor()
        self.env = env
        #: Stamped on every episode finished from now on; set it when a new model is loaded.
        self.policy_version = policy_version
        self.compress = compress
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bgtrain-writer")
        #: Writes not yet known to have ended: each game's intended path and its write.
        self._pending: list[tuple[Path, Future[Path]]] = []
        #: Writes that ended since the last flush(): their paths and their failures.
        #: How many written paths flush() returns at most: 0 for a caller that never asks
        #: (a game process playing for hours keeps nothing per game).
        self._remember = remember
        self._written: deque[Path] = deque(maxlen=remember)
        self._failed: deque[tuple[Path, BaseException]] = deque(maxlen=MAX_REMEMBERED_WRITES)
        #: Failed writes since they were last reported (may exceed what ``_failed`` keeps).
        self._n_failed = 0
        self._pending_lock = threading.Lock()
        self._last_stamp: datetime | None = None
        self._reset()

    # ------------------------------------------------------------------ game thread

    def _reset(self) -> None:
        self._states: np.ndarray | None = None
        self._shape: tuple[int, ...] = ()
        self._actions: list[int] = []
        self._rewards: list[float] = []
        self._logp: list[float] = []

    @property
    def steps(self) -> int:
        """Decisions recorded in the game in progress."""
        return len(self._actions)

    @property
    def pending(self) -> int:
        """Games finished but not yet written (or failed): they wait for the disk."""
        with self._pending_lock:
            self._collect_done()
            return len(self._pending)

    def record(self, state: Any, action: int, reward: float, logp: float | None = None) -> None:
        """One decision: the state seen, the action chosen, the reward that followed."""
        t = len(self._actions)
        states = self._states
        if states is None:
            first = np.asarray(state, dtype=np.float32)
            if first.ndim != 1:
                raise InvalidEpisodeError(f"a state must be 1-D, got shape {first.shape}")
            states = self._states = np.empty((_INITIAL_CAPACITY, first.shape[0]), np.float32)
            self._shape = first.shape
        elif np.shape(state) != self._shape:
            # Checked here, not left to numpy: it would broadcast a (1,) state silently.
            raise InvalidEpisodeError(
                f"state has shape {np.shape(state)}, expected {self._shape} "
                "like the first state of this game"
            )
        if t == states.shape[0]:
            states = self._states = np.concatenate([states, np.empty_like(states)])
        states[t, :] = state
        if logp is None:
            if self._logp:
                raise InvalidEpisodeError("logp was given for earlier steps of this game, not now")
        elif len(self._logp) != t:
            raise InvalidEpisodeError("logp is given now but was not for earlier steps")
        else:
            self._logp.append(logp)
        self._actions.append(action)
        self._rewards.append(reward)

    def finish(
        self,
        outcome: str = "Tie",
        terminated: bool = True,
        last_state: Any = None,
        **meta: Any,
    ) -> Path | None:
        """End the game; its file is written in the background. Returns its future path.

        ``terminated=False`` marks a game cut short (time limit, Ctrl+C, crash); give
        ``last_state`` then so the learner can bootstrap. Extra keywords go into ``meta``.
        A game with no recorded decision writes nothing and returns ``None``.
        """
        t = len(self._actions)
        if t == 0:
            logger.warning("finish() on a game with no recorded step: nothing to save")
            self._reset()
            return None
        assert self._states is not None
        states = self._states[:t].copy()
        actions = np.asarray(self._actions)
        rewards = np.asarray(self._rewards, dtype=np.float64)
        logp = np.asarray(self._logp, dtype=np.float32) if self._logp else None
        if last_state is not None:
            last_state = np.array(last_state, dtype=np.float32)  # the game may reuse its array
        self._reset()
        path = self.buffer / episode_file_name(self._stamp(), self.actor, outcome)
        info = {"outcome": outcome, "actor": self.actor, **meta}
        if self.env is not None:
            info.setdefault("env", self.env)
        self._wait_for_room()
        future = self._writer.submit(
            self._write,
            path,
            states,
            actions,
            rewards,
            logp,
            self.policy_version,
            terminated,
            last_state,
            info,
        )
        with self._pending_lock:
            self._collect_done()
            self._pending.append((path, future))
        return path

    def _wait_for_room(self) -> None:
        """Wait while ``MAX_PENDING_WRITES`` games wait to be written (the disk is behind)."""
        while True:
            with self._pending_lock:
                self._collect_done()
                if len(self._pending) < MAX_PENDING_WRITES:
                    return
                oldest = self._pending[0][1]
            oldest.exception()  # waits for it; its failure is kept by _collect_done

    def discard(self) -> int:
        """Drop the game in progress without saving anything (a game refused half-way);
        returns the number of decisions dropped."""
        dropped = len(self._actions)
        self._reset()
        return dropped

    def _collect_done(self) -> None:
        """Move ended writes out of the pending list, keeping their paths and failures."""
        still = []
        for path, f in self._pending:
            if not f.done():
                still.append((path, f))
            elif (exc := f.exception()) is not None:
                self._failed.append((path, exc))
                self._n_failed += 1
            else:
                self._written.append(f.result())
        self._pending = still

    def take_failures(self) -> list[tuple[Path, BaseException]]:
        """Writes that have failed since the last call (or flush), without waiting: each
        game's intended path and its error. A caller that takes them is told of each
        failure once; ``flush()`` no longer raises for them."""
        with self._pending_lock:
            self._collect_done()
            failures, self._failed = list(self._failed), deque(maxlen=MAX_REMEMBERED_WRITES)
            self._n_failed = 0
        return failures

    def _stamp(self) -> datetime:
        """Wall-clock time, but strictly later (by >= 1 ms) than this recorder's last name."""
        now = datetime.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = now
        return now

    # ------------------------------------------------------------------ writer thread

    def _write(
        self,
        path: Path,
        states: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        logp: np.ndarray | None,
        policy_version: int | None,
        terminated: bool,
        last_state: Any,
        meta: dict[str, Any],
    ) -> Path:
        try:
            episode = build_episode(
                states,
                actions,
                rewards,
                logp=logp,
                policy_version=policy_version,
                terminated=terminated,
                last_state=last_state,
                meta=meta,
            )
            data = episode_bytes(episode, self.compress)
            if self._sink is not None:
                return self._sink(path.name, data)
            return self._save_no_clobber(data, path)
        except Exception as exc:
            logger.error("could not save episode %s: %s", path.name, exc)
            raise

    def _save_no_clobber(self, data: bytes, path: Path) -> Path:
        """Write ``data`` under a private temp name, fsync it, then link it to a name
        nobody holds: os.link fails rather than overwrite, which os.replace/os.rename on
        POSIX would not.

        Few system calls on purpose: each one lets the game thread take the GIL, and this
        thread then waits for it again (a fast game's loop felt every extra call)."""
        tmp = temp_name_for(path)
        try:
            try:
                self._write_synced(tmp, data)
            except FileNotFoundError:  # buffer/ was removed (or never made): make it
                self.buffer.mkdir(parents=True, exist_ok=True)
                self._write_synced(tmp, data)
            target = path
            while True:
                try:
                    os.link(tmp, target)
                    return target
                except FileExistsError:
                    target = free_name(path.parent, path.name)
                except OSError:  # no hard links on this file system
                    target = free_name(path.parent, path.name)
                    os.rename(tmp, target)
                    return target
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    @staticmethod
    def _write_synced(path: Path, data: bytes) -> None:
        with open(path, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    # ------------------------------------------------------------------ lifecycle

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every pending write to end (written or failed), raising nothing but
        ``TimeoutError`` (the writes stay pending) if ``timeout`` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._pending_lock:
            pending = [future for _, future in self._pending]
        for future in pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                future.exception(timeout=left)
            except FutureTimeout:
                raise TimeoutError(
                    f"episode writes still pending after {timeout} s into {self.buffer}"
                ) from None

    def flush(self, timeout: float | None = None) -> list[Path]:
        """Wait for every pending write; return the paths written since the last flush
        (the last ``remember`` of them at most).

        Raises :class:`EpisodeWriteError` if a write failed (and was not taken by
        :meth:`take_failures`), and ``TimeoutError`` (the writes stay pending) if
        ``timeout`` seconds pass first.
        """
        self.wait(timeout)
        with self._pending_lock:
            self._collect_done()
            written, self._written = list(self._written), deque(maxlen=self._remember)
            failures, self._failed = list(self._failed), deque(maxlen=MAX_REMEMBERED_WRITES)
            n_failed, self._n_failed = self._n_failed, 0
        if failures:
            first = failures[0][1]
            raise EpisodeWriteError(
                f"{n_failed} episode(s) could not be saved into {self.buffer}: {first}"
            ) from first
        return written

    def close(self) -> list[Path]:
        """Flush, then stop the writer thread."""
        try:
            return self.flush()
        finally:
            self._writer.shutdown(wait=True)

    def __enter__(self) -> EpisodeRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
