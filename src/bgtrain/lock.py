"""One learner per root (guarantee 5), through ``filelock``.

The lock is an OS file lock on ``state/learner.lock``, so it dies with its process: a
learner killed with ``kill -9`` leaves nothing that blocks the next one. Who holds it
(pid, host, start time) is written beside it in ``state/learner.json``, for the refusal
message and for the monitor.
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

from ._fs import atomic_write_text
from .errors import LearnerLockedError
from .root import TrainingRoot

logger = logging.getLogger(__name__)

LOCK_NAME = "learner.lock"
HOLDER_NAME = "learner.json"


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
        self.root.state.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise LearnerLockedError(self._refusal(), self._holder_pid()) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "role": self.role,
            "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        atomic_write_text(self.root.state / HOLDER_NAME, json.dumps(holder))
        logger.debug("learner lock on %s taken by pid %d", self.root.path, os.getpid())
        return self

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()

    def _holder_pid(self) -> int | None:
        holder = read_holder(self.root) or {}
        pid = holder.get("pid")
        return pid if isinstance(pid, int) else None

    def _refusal(self) -> str:
        holder = read_holder(self.root) or {}
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

    def __enter__(self) -> LearnerLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
