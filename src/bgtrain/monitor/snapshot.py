"""Everything the monitor shows, gathered from files alone, cheaply enough for every refresh.

Costs per refresh: one scandir of ``buffer/`` (small: it drains), one stat per archive day
folder (the learner's archive index holds the counts), the new bytes of
``logs/metrics.jsonl`` since the last refresh, and the end of the training log.
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bgtrain.store.counters import (
    Heartbeat,
    LearnerCounters,
    read_counters,
    read_heartbeat,
)
from bgtrain.store.events import (
    RECENT_GAMES,
    BatchEvent,
    GameEvent,
    GameLog,
    RunEvent,
    parse_event,
)
from bgtrain.store.models import ModelStore
from bgtrain.store.root import TrainingRoot
from bgtrain.store.spool import REASON_SUFFIX, Spool, episode_entries

RECENT_FILES = 5
LOG_LINES = 10
SPARK_VERSIONS = 30
#: On the first read of a long metrics file, only its end is read.
METRICS_TAIL_BYTES = 2 * 1024 * 1024
#: The monitor keeps this many of the last games and batches (for its rates and sparkline).
KEPT_GAMES = 2000
KEPT_BATCHES = 200
#: The monitor counts each machine's games over this many seconds.
MACHINE_WINDOW_S = 600

__all__ = ["LOG_LINES", "RECENT_FILES", "Snapshot", "Watcher"]


@dataclass
class FileInfo:
    name: str
    size: int
    time: float


@dataclass
class FolderView:
    path: str
    count: int
    total_bytes: int
    recent: list[FileInfo]
    #: Files that arrived (buffer) or were archived since the previous refresh.
    new_since_last: int = 0


@dataclass
class ModelView:
    path: str
    exists: bool
    size: int | None = None
    modified: float | None = None
    age_s: float | None = None
    version: int | None = None


@dataclass
class LearningView:
    model_version: int | None
    games_seen: int
    games_per_minute: float | None
    mean_return: float | None
    win_rate: float | None
    #: Mean return of the games each recent model version played, oldest first.
    return_by_version: list[tuple[int, float]]
    policy_lag: dict[str, float] | None
    samples_per_second: float | None
    stale: int
    quarantined: int
    latest_quarantine_reason: str | None
    #: The engine of the latest ``bgtrain run`` on this root (``None``: no run wrote one).
    engine: str | None = None
    #: Games of the last :data:`MACHINE_WINDOW_S` by the machine that played them, most
    #: first (only games a cluster's engine stamped with their machine).
    games_by_machine: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class LearnerView:
    running: bool
    pid: int | None
    state: str | None
    heartbeat_age_s: float | None
    errors: int
    batches: int


@dataclass
class Snapshot:
    root: str
    exists: bool
    time: float
    monitor_started: float
    buffer: FolderView | None = None
    archive: FolderView | None = None
    model: ModelView | None = None
    learning: LearningView | None = None
    learner: LearnerView | None = None
    log_tail: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class MetricsReader:
    """Reads ``logs/metrics.jsonl`` incrementally and keeps the recent events."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._inode: int | None = None
        self._partial = b""
        self.games = GameLog(maxlen=KEPT_GAMES)
        self.batches: deque[BatchEvent] = deque(maxlen=KEPT_BATCHES)
        self.last_run: RunEvent | None = None

    def poll(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        if self._inode != st.st_ino or st.st_size < self._offset:  # new or truncated file
            self._inode, self._partial = st.st_ino, b""
            self._offset = max(0, st.st_size - METRICS_TAIL_BYTES)
            skip_first = self._offset > 0
        else:
            skip_first = False
        if st.st_size == self._offset:
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read(st.st_size - self._offset)
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next poll
        if skip_first and lines:
            lines = lines[1:]  # we started mid-line
        for line in lines:
            event = parse_event(line)
            if event is None:
                continue
            self.games.add(event)
            if isinstance(event, BatchEvent):
                self.batches.append(event)
            elif isinstance(event, RunEvent):
                self.last_run = event


def _folder(path: Path, seen_before: set[str] | None) -> tuple[FolderView, set[str]]:
    files = []
    for entry in episode_entries(path):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        files.append(FileInfo(entry.name, st.st_size, st.st_mtime))
    files.sort(key=lambda f: f.time)
    names = {f.name for f in files}
    new = 0 if seen_before is None else len(names - seen_before)
    view = FolderView(
        str(path), len(files), sum(f.size for f in files), files[-RECENT_FILES:][::-1], new
    )
    return view, names


def _tail_lines(path: Path, n: int) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            f.seek(max(0, end - 16 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-n:]


def _quarantine_view(spool: Spool) -> tuple[int, str | None]:
    entries = episode_entries(spool.root.quarantine)
    if not entries:
        return 0, None

    def quarantined_at(entry: os.DirEntry[str]) -> float:
        # The reason file is written when the file is quarantined; the file keeps its own
        # (possibly old) times through the move.
        try:
            return os.stat(entry.path + REASON_SUFFIX).st_mtime
        except OSError:
            return -1.0

    newest = max(entries, key=quarantined_at)
    reason = spool.reason(Path(newest.path)) or {}
    return len(entries), reason.get("reason")


class Watcher:
    """Takes snapshots of one root; keeps what it needs between refreshes."""

    def __init__(self, root: str | Path | TrainingRoot, log_lines: int = LOG_LINES) -> None:
        self.root = TrainingRoot.at(root)
        #: Lines of the training log each snapshot keeps (``--json`` keeps the seed's ten; a
        #: tall live screen shows more).
        self.log_lines = log_lines
        self.started = time.time()
        self.spool = Spool(self.root)
        self.store = ModelStore(self.root)
        self.metrics = MetricsReader(self.root.metrics)
        self._buffer_names: set[str] | None = None
        self._archived_before: int | None = None

    def take(self) -> Snapshot:
        now = time.time()
        if not self.root.path.is_dir():
            # A root that is a file is not "a root not made yet": say so (RootError).
            self.root.check(write=False)
            return Snapshot(str(self.root.path), False, now, self.started)
        buffer, self._buffer_names = _folder(self.root.buffer, self._buffer_names)
        count, size = self.spool.archive_totals()
        recent = [FileInfo(f.name, f.size, f.archived_at) for f in self.spool.recent_archived()]
        archive = FolderView(
            str(self.root.archive),
            count,
            size,
            recent[::-1][:RECENT_FILES],
            0 if self._archived_before is None else max(0, count - self._archived_before),
        )
        self._archived_before = count
        model = self._model(now)
        counters = read_counters(self.root)
        snapshot = Snapshot(
            root=str(self.root.path),
            exists=True,
            time=now,
            monitor_started=self.started,
            buffer=buffer,
            archive=archive,
            model=model,
            learning=self._learning(now, model, counters),
            learner=self._learner(now, counters),
            log_tail=_tail_lines(self.root.training_log, self.log_lines),
        )
        return snapshot

    def _model(self, now: float) -> ModelView:
        path = self.root.model_file
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return ModelView(str(path), False)
        version = self._model_version()
        return ModelView(str(path), True, st.st_size, st.st_mtime, now - st.st_mtime, version)

    def _learning(self, now: float, model: ModelView, counters: LearnerCounters) -> LearningView:
        self.metrics.poll()
        games = list(self.metrics.games)
        recent = self.metrics.games.recent(RECENT_GAMES)
        returns = [g.return_ for g in recent if g.return_ is not None]
        outcomes = [g.outcome for g in recent if g.outcome]
        last_minute = [g.t for g in games if g.t and g.t >= now - 60]
        span = now - min(last_minute) if last_minute else 0.0
        quarantined, reason = _quarantine_view(self.spool)
        return LearningView(
            model_version=model.version,
            games_seen=len(games),
            games_per_minute=len(last_minute) * 60 / span if span >= 5 else None,
            mean_return=sum(returns) / len(returns) if returns else None,
            win_rate=outcomes.count("Victory") / len(outcomes) if outcomes else None,
            return_by_version=_return_by_version(games),
            policy_lag=self._policy_lag(),
            samples_per_second=(
                counters.samples_per_second if counters.total_processing_time else None
            ),
            stale=len(episode_entries(self.root.stale)),
            quarantined=quarantined,
            latest_quarantine_reason=reason,
            engine=self.metrics.last_run.engine if self.metrics.last_run else None,
            games_by_machine=_games_by_machine(games, now),
        )

    def _policy_lag(self) -> dict[str, float] | None:
        """The last batch's policy lag, in model versions (Sample Factory's version_diff)."""
        if not self.metrics.batches:
            return None
        last = self.metrics.batches[-1]
        return {
            "min": last.version_diff_min,
            "mean": last.version_diff_avg,
            "max": last.version_diff_max,
        }

    def _model_version(self) -> int | None:
        try:
            return self.store.latest_version()
        except Exception:  # a damaged model file is shown as such, not a crash
            return None

    def _learner(self, now: float, counters: LearnerCounters) -> LearnerView:
        beat = read_heartbeat(self.root) or Heartbeat()
        return LearnerView(
            running=beat.alive(now),
            pid=beat.pid,
            state=beat.state,
            heartbeat_age_s=beat.age(now),
            errors=counters.errors,
            batches=counters.batches_trained,
        )


def _games_by_machine(games: list[GameEvent], now: float) -> list[tuple[str, int]]:
    """Games of the last :data:`MACHINE_WINDOW_S` by machine, most first."""
    recent = Counter(
        g.machine for g in games if g.machine and g.t is not None and g.t >= now - MACHINE_WINDOW_S
    )
    return recent.most_common()


def _return_by_version(games: list[GameEvent]) -> list[tuple[int, float]]:
    """Mean return of the games each of the last SPARK_VERSIONS versions played."""
    by_version: dict[int, list[float]] = {}
    for g in games:
        if g.policy_version is not None and g.return_ is not None:
            by_version.setdefault(int(g.policy_version), []).append(g.return_)
    versions = sorted(by_version)[-SPARK_VERSIONS:]
    return [(v, sum(by_version[v]) / len(by_version[v])) for v in versions]
