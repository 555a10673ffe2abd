"""The learner's heartbeat: ``state/heartbeat.json`` rewritten every HEARTBEAT_S."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bgtrain.common.outage import OutageLog
from bgtrain.store.counters import (
    HEARTBEAT_NAME,
    HEARTBEAT_S,
    Heartbeat,
    write_heartbeat,
)
from bgtrain.store.root import TrainingRoot

logger = logging.getLogger(__name__)


class HeartbeatThread:
    """Tells readers (the monitor, spare game processes) that the learner is alive.

    A failed write (disk full, ``state/`` gone for a while) must not end the beat: the
    monitor would show a learner that keeps training as not running. It is retried at
    the next beat, with one warning per outage instead of a traceback per beat.
    """

    def __init__(self, root: TrainingRoot, beat: Callable[[], Heartbeat]) -> None:
        self.root = root
        self._beat = beat
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.outage = OutageLog(f"writing the heartbeat {root.state / HEARTBEAT_NAME}", logger)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bgtrain-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                write_heartbeat(self.root, self._beat())
            except Exception as exc:
                self.outage.failed(exc)
            else:
                self.outage.succeeded()
            self._stop.wait(HEARTBEAT_S)

    def stop(self, timeout: float | None = None) -> None:
        """Stop beating (the caller writes the last, ``"stopped"``, beat itself)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
