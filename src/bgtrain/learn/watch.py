"""Waking the learner as soon as an episode file lands in ``buffer/`` (watchdog)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bgtrain.store.spool import is_episode_name

logger = logging.getLogger(__name__)

#: How long a stop waits for watchdog's observer thread, seconds.
OBSERVER_JOIN_S = 5.0


def _quiet_watchdog_stop_race(record: logging.LogRecord) -> bool:
    # watchdog logs this as an error when an event arrives while its observer is stopping;
    # nothing is lost (the learner is stopping), so it is not shown to users.
    return "called when the thread is inactive" not in record.getMessage()


logging.getLogger("watchdog.observers.inotify").addFilter(_quiet_watchdog_stop_race)


class BufferWatch:
    """Calls ``wake`` when an episode file is created in, or moved into, ``folder``.

    The learner polls as well (``poll_interval``): the watch only makes it prompt, so a
    watch that cannot start (no watchdog) is logged and the learner polls.
    """

    def __init__(self, folder: Path, wake: Callable[[], None], poll_interval: float) -> None:
        self.folder = folder
        self._wake = wake
        self._poll_interval = poll_interval
        self._observer: Any = None

    def start(self) -> None:
        self._observer = self._new_observer()

    def _new_observer(self) -> Any:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:  # pragma: no cover - watchdog is a dependency
            logger.warning("watchdog is not installed: polling every %ss", self._poll_interval)
            return None
        wake = self._wake

        class _Landed(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                name = Path(getattr(event, "dest_path", "") or event.src_path).name
                if event.event_type in ("created", "moved") and is_episode_name(name):
                    wake()

        observer = Observer()
        self.folder.mkdir(parents=True, exist_ok=True)
        observer.schedule(_Landed(), str(self.folder), recursive=False)
        observer.daemon = True
        observer.start()
        return observer

    @property
    def observer(self) -> Any:
        """watchdog's observer (``None`` when not watching)."""
        return self._observer

    def keep_watching(self) -> None:
        """watchdog's watch ends for good when the folder is removed (and made again):
        watch anew, so that a landed file wakes the learner at once rather than at the
        next poll."""
        observer = self._observer
        if observer is None:
            return
        # A stopped observer thread lists no emitter at all, and all() of nothing is True:
        # an empty list is a watch that has ended too.
        emitters = list(observer.emitters)
        if observer.is_alive() and emitters and all(e.is_alive() for e in emitters):
            return
        logger.warning("the watch on %s had ended; watching it again", self.folder)
        observer.stop()
        observer.join(timeout=OBSERVER_JOIN_S)
        # Raises if the folder cannot be watched yet: the ended observer stays, so that
        # the next look tries again.
        self._observer = self._new_observer()

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=OBSERVER_JOIN_S)
