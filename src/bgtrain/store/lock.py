"""One learner per root (guarantee 5), through ``filelock``.

The lock is an OS file lock on ``state/learner.lock``, so it dies with its process: a
learner killed with ``kill -9`` leaves nothing that blocks the next one. Who holds it
(pid, host, start time) is written beside it in ``state/learner.json``, for the refusal
message and for the monitor.

Taking the lock and writing that record are two steps, so a learner refused between them
would read the record of the previous, perhaps dead, holder. Both steps therefore happen
inside a short-lived second lock, the start gate ``state/learner.start.lock``, and a
refused learner reads the record inside the gate too: whoever holds ``learner.lock`` when
a learner is refused has written its record already.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from bgtrain.errors import LearnerLockedError, RootError
from bgtrain.store.fs import atomic_write_text
from bgtrain.store.root import TrainingRoot

logger = logging.getLogger(__name__)

LOCK_NAME = "learner.lock"
HOLDER_NAME = "learner.json"
GATE_NAME = "learner.start.lock"
#: The gate is held for one record write (milliseconds); a start that keeps it longer than
#: this is stuck half-way (a stopped process), and the next learner is refused.
GATE_TIMEOUT_S = 10.0
GATE_POLL_S = 0.005


def read_holder(root: str | Path | TrainingRoot) -> dict[str, Any] | None:
    """The last recorded lock holder (it may have died since; the lock itself tells)."""
    try:
        return json.loads((TrainingRoot.at(root).state / HOLDER_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return None


class LearnerLock:
    """``with LearnerLock(root, role="learner"):`` ... raises :class:`LearnerLockedError`."""

    def __init__(self, root: str | Path | TrainingRoot, role: str = "learner") -> None:
        self.root = TrainingRoot.at(root)
        self.role = role
        self._lock = FileLock(self.root.state / LOCK_NAME, thread_local=False)

    @property
    def is_held(self) -> bool:
        """Whether this object holds the lock."""
        return self._lock.is_locked

    def acquire(self) -> LearnerLock:
        """Take the lock and record the holder, or raise :class:`LearnerLockedError`
        naming the live holder (:class:`~bgtrain.errors.RootError` if ``state/`` cannot
        be written)."""
        try:
            self.root.state.mkdir(parents=True, exist_ok=True)
            gate = FileLock(self.root.state / GATE_NAME, thread_local=False)
            gate.acquire(timeout=GATE_TIMEOUT_S, poll_interval=GATE_POLL_S)
        except Timeout:
            raise LearnerLockedError(self._stuck_start(), None) from None
        except OSError as exc:
            raise self._unwritable(exc) from None
        try:
            self._take()
        finally:
            gate.release()
        logger.debug("learner lock on %s taken by pid %d", self.root.path, os.getpid())
        return self

    def _take(self) -> None:
        """Inside the gate: take the lock and write the record, or refuse."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            holder = read_holder(self.root)  # read once: message and pid agree
            raise LearnerLockedError(self._refusal(holder), _pid_of(holder)) from None
        except OSError as exc:
            raise self._unwritable(exc) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "role": self.role,
            "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        try:
            atomic_write_text(self.root.state / HOLDER_NAME, json.dumps(holder))
        except OSError as exc:
            # Without its record the holder could not be named: do not hold the lock.
            self._lock.release()
            raise self._unwritable(exc) from None

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()

    def _refusal(self, holder: dict[str, Any] | None) -> str:
        who = (
            f"pid {holder.get('pid')} on {holder.get('host')}, "
            f"{holder.get('role', 'learner')} started {holder.get('started_at')}"
            if holder
            else "holder unknown"
        )
        return (
            f"another learner already holds {self.root.path} ({who}); "
            "stop it first, or use another --root"
        )

    def _stuck_start(self) -> str:
        return (
            f"another learner has been starting on {self.root.path} for over "
            f"{GATE_TIMEOUT_S:g} s (it holds {self.root.state / GATE_NAME}: a stopped "
            "process?); stop it first, or use another --root"
        )

    def _unwritable(self, exc: OSError) -> RootError:
        return RootError(
            f"cannot take the learner lock in {self.root.state} ({exc.strerror or exc}): "
            "the root must be a writable folder with free space; fix it or use another --root"
        )

    def __enter__(self) -> LearnerLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _pid_of(holder: dict[str, Any] | None) -> int | None:
    pid = (holder or {}).get("pid")
    return pid if isinstance(pid, int) else None
