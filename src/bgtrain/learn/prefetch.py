"""Loading the next episode files while the learner trains (``max_workers`` threads)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from pathlib import Path

from bgtrain.store.episode import Episode, load_episode
from bgtrain.store.safe_npz import SizeLimits


class Prefetcher:
    """Loads and validates buffer files on worker threads while the learner trains.

    A claim renames a file into ``processing/``: same inode, size and mtime, so a result
    loaded from ``buffer/`` is reused when those still match and the load succeeded. A
    failed early load is never reused: the worker may have looked in ``buffer/`` after the
    claim had moved the file ("file not found"), so the file is loaded again where it is.
    """

    def __init__(self, workers: int, limits: SizeLimits) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bgtrain-load")
        self._limits = limits
        self._futures: dict[str, tuple[tuple[int, int, int], Future[Episode]]] = {}
        self.active = 0
        self._lock = threading.Lock()

    def _load(self, path: Path) -> Episode:
        with self._lock:
            self.active += 1
        try:
            return load_episode(path, limits=self._limits)
        finally:
            with self._lock:
                self.active -= 1

    def prefetch(self, paths: Sequence[Path]) -> None:
        for path in paths:
            if path.name in self._futures:
                continue
            try:
                st = path.lstat()
            except OSError:
                continue
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            self._futures[path.name] = (key, self._pool.submit(self._load, path))

    def load(self, path: Path) -> Episode:
        entry = self._futures.pop(path.name, None)
        if entry is not None:
            try:
                st = path.lstat()
                future = entry[1]
                if (st.st_ino, st.st_size, st.st_mtime_ns) == entry[0] and (
                    future.exception() is None
                ):
                    return future.result()
            except (OSError, CancelledError):
                pass
        return load_episode(path, limits=self._limits)

    def forget_missing(self, present: set[str]) -> None:
        for name in [n for n in self._futures if n not in present]:
            del self._futures[name]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
