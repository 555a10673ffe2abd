"""The root's episode folders and every move between them.

    buffer/ --claim--> processing/ --archive--> archive/YYYY-MM-DD/
                          |  \\--mark_stale--> stale/       (+ NAME.reason.json)
                          \\----quarantine--> quarantine/  (+ NAME.reason.json)
    stale/, quarantine/ --requeue--> buffer/

Every move is a rename (atomic, never a copy), never overwrites (a taken name gets a
``~N`` suffix) and never deletes. Only ``*.npz`` entries that are not dot-named are
episodes; anything else in ``buffer/`` is left alone. A directory entry is moved as it is
(a link is moved, not followed).

The learner is the only process that moves files out of ``buffer/`` (it holds the root's
lock), so the archive's per-day counts are kept in ``state/archive_index.json`` by the
mover and trusted by readers while the day folder's mtime is unchanged: counting never
rescans an archive of 100,000 files. (On file systems with coarse timestamps — FAT, 2 s —
a file added to an archive day folder *by hand* within the same tick as the learner's
own move is not counted until that folder changes again; counts are a display.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import json
import logging
import os
import time
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, Literal, NamedTuple

from bgtrain.common.faults import crash_point
from bgtrain.errors import SpoolError
from bgtrain.store.episode import (
    Episode,
    episode_steps,
    load_episode,
    piece_name,
    save_episode,
    split_episode,
)
from bgtrain.store.fs import (
    atomic_write_text,
    free_name,
    move_into,
    remove_temps,
    remove_writer_temps,
)
from bgtrain.store.root import TrainingRoot
from bgtrain.store.safe_npz import DEFAULT_LIMITS, SizeLimits

logger = logging.getLogger(__name__)

REASON_SUFFIX = ".reason.json"
REQUEUED_FOLDER = "requeued"
ARCHIVE_INDEX = "archive_index.json"
#: How many of the latest archived files the index remembers (for the monitor).
RECENT_ARCHIVED = 10

RequeueSource = Literal["quarantine", "stale"]


class SpoolCounts(NamedTuple):
    buffer: int
    processing: int
    archive: int
    stale: int
    quarantine: int


class Recovery(NamedTuple):
    """What start-up recovery did with a crashed learner's leftovers."""

    archived: list[Path]  # in processing/ and in the latest model's batch
    returned: list[Path]  # in processing/, not trained on: back to buffer/
    temps_removed: list[Path]


@dataclass
class _DayCount:
    count: int
    mtime_ns: int
    bytes: int


class SetAside(NamedTuple):
    """A file moved out of the way, as its reason file records it."""

    #: ``"quarantine"``, ``"stale"`` or ``"split"``: the folder it went to.
    folder: str
    #: Where it is now.
    path: Path
    reason: str


class ArchivedFile(NamedTuple):
    """One of the most recently archived episodes (kept in the archive index)."""

    name: str
    size: int
    archived_at: float


def is_episode_name(name: str) -> bool:
    return name.endswith(".npz") and not name.startswith(".")


def episode_entries(folder: Path) -> list[os.DirEntry[str]]:
    """The episode entries of ``folder`` (any kind: file, folder or link), unsorted."""
    try:
        with os.scandir(folder) as it:
            return [e for e in it if is_episode_name(e.name)]
    except FileNotFoundError:
        return []


def _now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


class Spool:
    """Claims, archives, stales, quarantines, recovers and requeues a root's episodes."""

    def __init__(
        self, root: str | Path | TrainingRoot, limits: SizeLimits = DEFAULT_LIMITS
    ) -> None:
        self.root = TrainingRoot.at(root)
        self.limits = limits
        self._day_cache: dict[str, _DayCount] = {}
        #: Waiting names, oldest first, as last listed (see _listing).
        self._waiting: deque[str] = deque()
        #: Files put back to settle (see put_back): not claimed again until settled.
        self._settling: set[str] = set()
        #: Every file set aside since the last take_set_aside().
        self._set_aside_log: list[SetAside] = []

    # ------------------------------------------------------------------ claiming

    def pending(self, limit: int | None = None) -> list[Path]:
        """Episodes waiting in ``buffer/``, oldest first (mtime, then name); the oldest
        ``limit`` of them if given (cheaper with a long backlog)."""
        keyed = []
        for entry in episode_entries(self.root.buffer):
            try:
                mtime = entry.stat(follow_symlinks=False).st_mtime_ns
            except FileNotFoundError:  # claimed or requeued meanwhile
                continue
            keyed.append((mtime, entry.name))
        oldest = sorted(keyed) if limit is None else heapq.nsmallest(limit, keyed)
        return [self.root.buffer / name for _, name in oldest]

    def claimed(self) -> list[Path]:
        """The batch in ``processing/`` (empty unless a batch is in hand or a learner died)."""
        return sorted(Path(e.path) for e in episode_entries(self.root.processing))

    def claim(
        self, max_files: int = 10, max_steps: int | None = None, settle_time: float = 0.0
    ) -> list[Path]:
        """Move the oldest waiting episodes into ``processing/``: at most ``max_files``,
        and at most ``max_steps`` steps in all (but always one file, however long).

        A file put back to settle (:meth:`put_back`) is skipped while it changed less than
        ``settle_time`` seconds ago; a file that cannot be moved (on Windows: still open
        in its writer) is left for a later claim.

        Raises :class:`SpoolError` if ``processing/`` still holds an earlier batch.
        """
        if max_files < 1:
            raise SpoolError(f"max_files must be at least 1, got {max_files}")
        leftover = self.claimed()
        if leftover:
            raise SpoolError(
                f"{self.root.processing} still holds {len(leftover)} file(s) of an earlier "
                "batch; run start-up recovery (Spool.recover) before claiming"
            )
        self.root.processing.mkdir(parents=True, exist_ok=True)
        batch: list[Path] = []
        steps = 0
        listing = self._listing(max_files)
        while listing and len(batch) < max_files:
            name = listing[0]
            path = self.root.buffer / name
            if name in self._settling and self.is_settling(path, settle_time):
                listing.popleft()  # listed again once it has settled
                continue
            if max_steps is not None:
                # Unreadable files count as 0 steps: they are claimed to be quarantined.
                t = episode_steps(path, self.limits) or 0
                if batch and steps + t > max_steps:
                    break
                steps += t
            listing.popleft()
            try:
                batch.append(move_into(path, self.root.processing))
            except FileNotFoundError:  # requeued or removed since it was listed
                if not listing:
                    listing = self._listing(max_files)
                continue
            except PermissionError:  # Windows: its writer still has it open
                logger.info("%s is still open elsewhere; it is claimed later", name)
                continue
            self._settling.discard(name)
        return batch

    @property
    def settling(self) -> frozenset[str]:
        """Names put back to settle, still in ``buffer/`` and not claimed since."""
        self._settling = {n for n in self._settling if os.path.lexists(self.root.buffer / n)}
        return frozenset(self._settling)

    @staticmethod
    def is_settling(path: Path, settle_time: float) -> bool:
        """Whether ``path`` changed less than ``settle_time`` seconds ago: a file that fails
        to load then may be a copy still in progress (cp, scp, a network share)."""
        try:
            age = time.time() - os.lstat(path).st_mtime
        except OSError:
            return False
        return age < settle_time

    def put_back(self, path: Path, why: str, settling: bool = False) -> Path:
        """Return a claimed file to ``buffer/`` untrained (its name and age kept).

        ``settling``: it failed to load while young; :meth:`claim` leaves it until it has
        been unchanged for the settle time, and it is quarantined if it fails again then.
        """
        back = move_into(path, self.root.buffer)
        self._waiting.clear()  # list again, so that it takes its place by age
        if settling:
            self._settling.add(back.name)
            logger.info(
                "%s back to buffer/ to settle (it may still be written): %s", path.name, why
            )
        else:
            logger.info("%s back to buffer/ for a later batch: %s", path.name, why)
        return back

    def remove_writer_temps(self, older_than: float) -> list[Path]:
        """Remove writers' dot-temp files in ``buffer/`` unchanged for ``older_than`` seconds.

        A writer renames its temp into place within moments of creating it; one this old
        was left by a writer that died mid-write and never was an episode.
        """
        now = time.time()
        removed = remove_writer_temps(
            self.root.buffer, lambda _, st: now - st.st_mtime >= older_than
        )
        for path, st in removed:
            logger.warning(
                "removed %s from buffer/: a writer's temp file unchanged for %.0f s (%d bytes; "
                "its writer died mid-write)",
                path.name,
                now - st.st_mtime,
                st.st_size,
            )
        return [path for path, _ in removed]

    def upcoming(self, n: int) -> list[Path]:
        """The next ``n`` episodes :meth:`claim` would take (a prefetcher reads them early)."""
        return [self.root.buffer / name for name in islice(self._listing(n), n)]

    def _listing(self, n: int) -> deque[str]:
        """The waiting names, oldest first, as last listed. The buffer is listed again only
        when fewer than ``n`` are left: a backlog of N files costs one scan, not one per
        batch. (Files that land meanwhile are newer, so the order holds; a file requeued
        meanwhile waits for the next listing.)"""
        if len(self._waiting) < n:
            self._waiting = deque(path.name for path in self.pending())
        return self._waiting

    # ------------------------------------------------------------------ outcomes

    def archive(self, paths: Iterable[Path], day: str | None = None) -> list[Path]:
        """Move trained episodes into ``archive/DAY/`` (today, local time, by default)."""
        paths = list(paths)
        if not paths:
            return []
        day = day or datetime.now().strftime("%Y-%m-%d")
        folder = self.root.archive / day
        folder.mkdir(parents=True, exist_ok=True)
        days, recent = self._read_index()
        before = self._day_count(folder, days.get(day))
        sizes = [os.lstat(path).st_size for path in paths]
        moved = [move_into(path, folder) for path in paths]
        now = time.time()
        self._day_cache[day] = _DayCount(
            before.count + len(moved), os.stat(folder).st_mtime_ns, before.bytes + sum(sizes)
        )
        recent = [
            *recent,
            *(ArchivedFile(p.name, n, now) for p, n in zip(moved, sizes, strict=True)),
        ]
        self._write_index(days, recent[-RECENT_ARCHIVED:])
        return moved

    def mark_stale(self, path: Path, reason: str) -> Path:
        """Set aside a valid episode not to train on (too old, or too far behind the policy)."""
        return self._set_aside(path, self.root.stale, reason, None)

    def quarantine(self, path: Path, reason: str, error: str | None = None) -> Path:
        """Set aside an invalid file, with ``NAME.reason.json`` saying why."""
        return self._set_aside(path, self.root.quarantine, reason, error)

    def _set_aside(self, path: Path, folder: Path, reason: str, error: str | None) -> Path:
        # The reason is written first, under the name the file will take: a crash between
        # the two steps leaves the file in processing/ (recovery returns it to buffer/)
        # and a reason that the next set-aside of that name overwrites, never a set-aside
        # file without its reason.
        try:
            size: int | None = os.lstat(path).st_size
        except OSError:
            size = None
        folder.mkdir(parents=True, exist_ok=True)
        target = free_name(folder, path.name)
        record = {
            "name": target.name,
            "reason": reason,
            "error": error,
            "time": _now_iso(),
            "size": size,
            "from": path.parent.name,
        }
        reason_file = target.with_name(target.name + REASON_SUFFIX)
        atomic_write_text(reason_file, json.dumps(record, indent=2))
        crash_point("between_reason_and_move")
        try:
            moved = move_into(path, folder, target.name)
        except BaseException:
            with contextlib.suppress(OSError):
                reason_file.unlink()  # our own record of a move that did not happen
            raise
        if moved != target:  # the name was taken meanwhile (a person's requeue): follow it
            record["name"] = moved.name
            atomic_write_text(
                moved.with_name(moved.name + REASON_SUFFIX), json.dumps(record, indent=2)
            )
        self._set_aside_log.append(SetAside(folder.name, moved, reason))
        logger.info("%s -> %s/: %s", path.name, folder.name, reason)
        return moved

    def take_set_aside(self) -> list[SetAside]:
        """The files set aside since the last call: the learner counts them even when the
        cycle that moved them failed later."""
        taken, self._set_aside_log = self._set_aside_log, []
        return taken

    # ------------------------------------------------------------------ splitting

    def split(
        self, path: Path, episode: Episode, max_steps: int, extra_meta: dict[str, Any]
    ) -> Path:
        """Cut a claimed episode (``episode``, loaded from ``path``) too long to train at
        once into pieces of at most ``max_steps`` steps
        (:func:`~bgtrain.store.episode.split_episode`): the pieces go into ``buffer/`` with the
        episode's age (so they are claimed next, in order), and the episode itself into
        ``split/``, beside ``NAME.reason.json`` listing its pieces.
        Returns the episode's path in ``split/``.

        Crash-safe: the reason is written first (``complete: false``), then the pieces
        (deterministic names and contents), then the episode moves, then the reason is
        marked complete; start-up recovery finishes a split that a crash interrupted
        before any piece can be claimed (:meth:`recover`).
        """
        pieces = split_episode(episode, max_steps, extra_meta)
        names = [piece_name(path.name, k, len(pieces)) for k in range(1, len(pieces) + 1)]
        self.root.split.mkdir(parents=True, exist_ok=True)
        target = free_name(self.root.split, path.name)
        record = {
            "name": target.name,
            "reason": (
                f"{episode.length} steps, more than max_piece_steps {max_steps}: "
                f"trained as {len(pieces)} pieces"
            ),
            "error": None,
            "time": _now_iso(),
            "size": os.lstat(path).st_size,
            "from": path.parent.name,
            "max_piece_steps": max_steps,
            "extra_meta": extra_meta,
            "pieces": names,
            "complete": False,
        }
        reason_file = target.with_name(target.name + REASON_SUFFIX)
        atomic_write_text(reason_file, json.dumps(record, indent=2))
        self._finish_split(path, reason_file, record, pieces)
        self._waiting.clear()  # list again: the pieces are older than what was listed
        logger.info("%s -> split/: %s", path.name, record["reason"])
        self._set_aside_log.append(SetAside(self.root.split.name, target, record["reason"]))
        return target

    def _finish_split(
        self, path: Path, reason_file: Path, record: dict[str, Any], pieces: list | None = None
    ) -> None:
        if path.parent != self.root.split:
            if pieces is None:
                episode = load_episode(path, limits=self.limits)
                pieces = split_episode(episode, record["max_piece_steps"], record["extra_meta"])
            mtime_ns = os.lstat(path).st_mtime_ns
            for name, piece in zip(record["pieces"], pieces, strict=True):
                save_episode(piece, self.root.buffer / name)  # the same bytes if redone
                os.utime(self.root.buffer / name, ns=(mtime_ns, mtime_ns))
            crash_point("between_pieces_and_move")
            move_into(path, self.root.split, record["name"])
        record["complete"] = True
        atomic_write_text(reason_file, json.dumps(record, indent=2))

    def _finish_interrupted_splits(self) -> list[str]:
        """Start-up recovery: complete every split whose reason says it is not complete."""
        finished = []
        try:
            reasons = sorted(self.root.split.glob("*" + REASON_SUFFIX))
        except OSError:
            return []
        for reason_file in reasons:
            record = self.reason(self.root.split / reason_file.name[: -len(REASON_SUFFIX)])
            if not record or record.get("complete", True):
                continue
            name = record["name"]
            where = [
                folder / name
                for folder in (self.root.processing, self.root.buffer, self.root.split)
                if os.path.lexists(folder / name)
            ]
            if not where:
                logger.error("split of %s cannot be finished: the episode is gone", name)
                continue
            self._finish_split(where[0], reason_file, record)
            logger.warning("finished the split of %s that a crash interrupted", name)
            finished.append(name)
        return finished

    def reason(self, path: Path) -> dict | None:
        """The reason record of a file in ``stale/`` or ``quarantine/``."""
        try:
            return json.loads(path.with_name(path.name + REASON_SUFFIX).read_text("utf-8"))
        except (OSError, ValueError):
            return None

    # ------------------------------------------------------------------ recovery

    def recover(self, trained: Collection[str], remove_state_temps: bool = True) -> Recovery:
        """After a crash: a split that was interrupted is finished; then each file in
        ``processing/`` goes to ``archive/`` if ``trained`` (the latest published model's
        batch) names it, else back to ``buffer/``. The learner's own temp files in
        ``state/`` are removed, unless ``remove_state_temps`` is false (a running learner
        putting a failed batch back: its heartbeat thread may be writing one right then).
        """
        self._finish_interrupted_splits()
        leftover = self.claimed()
        done = [p for p in leftover if p.name in trained]
        undone = [p for p in leftover if p.name not in trained]
        archived = self.archive(done)
        returned = [move_into(p, self.root.buffer) for p in undone]
        temps = remove_temps(self.root.state) if remove_state_temps else []
        if archived or returned:
            logger.info(
                "recovered processing/: %d archived (already trained), %d back to buffer/",
                len(archived),
                len(returned),
            )
        return Recovery(archived, returned, temps)

    def requeue(self, source: RequeueSource, names: Collection[str] | None = None) -> list[Path]:
        """Move files from ``stale/`` or ``quarantine/`` back into ``buffer/``.

        All of them when ``names`` is empty or ``None``. Their age starts again (mtime set
        to now) so a file staled for its age is not staled again at once. Each reason
        file moves to ``SOURCE/requeued/`` so the history is kept.
        """
        if source not in ("quarantine", "stale"):
            raise SpoolError(f"can only requeue from quarantine or stale, not {source!r}")
        folder = self.root.quarantine if source == "quarantine" else self.root.stale
        available = {e.name: Path(e.path) for e in episode_entries(folder)}
        if names:
            names = list(dict.fromkeys(names))  # a name given twice is moved once
            missing = [n for n in names if n not in available]
            if missing:
                raise SpoolError(
                    f"no file named {', '.join(repr(n) for n in missing)} in {folder}"
                    f" ({len(available)} file(s) there)"
                )
            chosen = [available[n] for n in names]
        else:
            chosen = [available[n] for n in sorted(available)]
        requeued = []
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        for path in chosen:
            reason_file = path.with_name(path.name + REASON_SUFFIX)
            target = move_into(path, self.root.buffer)
            if target.is_file() and not target.is_symlink():
                os.utime(target)
            if reason_file.exists():
                move_into(reason_file, folder / REQUEUED_FOLDER, f"{stamp}_{reason_file.name}")
            logger.info("requeued %s from %s/ into buffer/", path.name, source)
            requeued.append(target)
        return requeued

    # ------------------------------------------------------------------ counting

    def counts(self) -> SpoolCounts:
        return SpoolCounts(
            buffer=len(episode_entries(self.root.buffer)),
            processing=len(episode_entries(self.root.processing)),
            archive=self.archive_count(),
            stale=len(episode_entries(self.root.stale)),
            quarantine=len(episode_entries(self.root.quarantine)),
        )

    def archive_count(self) -> int:
        """Episodes in ``archive/`` (see :meth:`archive_totals`)."""
        return self.archive_totals()[0]

    def archive_totals(self) -> tuple[int, int]:
        """Episodes in ``archive/`` and their total size in bytes: one ``stat`` per day
        folder, a rescan only of a day folder changed by someone other than the learner
        since it last counted."""
        days, _ = self._read_index()
        count = size = 0
        try:
            folders = [e for e in os.scandir(self.root.archive) if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return 0, 0
        for folder in folders:
            known = self._day_count(Path(folder.path), days.get(folder.name))
            count += known.count
            size += known.bytes
        return count, size

    def recent_archived(self) -> list[ArchivedFile]:
        """The latest archived files, newest last (as the learner recorded them)."""
        return self._read_index()[1]

    def _day_count(self, folder: Path, recorded: _DayCount | None) -> _DayCount:
        mtime_ns = os.stat(folder).st_mtime_ns
        for known in (recorded, self._day_cache.get(folder.name)):
            if known is not None and known.mtime_ns == mtime_ns:
                return known
        entries = episode_entries(folder)
        size = 0
        for entry in entries:
            with contextlib.suppress(OSError):  # removed meanwhile
                size += entry.stat(follow_symlinks=False).st_size
        counted = self._day_cache[folder.name] = _DayCount(len(entries), mtime_ns, size)
        return counted

    def _index_path(self) -> Path:
        return self.root.state / ARCHIVE_INDEX

    def _read_index(self) -> tuple[dict[str, _DayCount], list[ArchivedFile]]:
        try:
            raw = json.loads(self._index_path().read_text("utf-8"))
            days = {
                day: _DayCount(int(v["count"]), int(v["mtime_ns"]), int(v["bytes"]))
                for day, v in raw["days"].items()
            }
            recent = [ArchivedFile(str(n), int(b), float(t)) for n, b, t in raw["recent"]]
            return days, recent
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}, []

    def _write_index(self, days: dict[str, _DayCount], recent: list[ArchivedFile]) -> None:
        days = {**days, **self._day_cache}
        self.root.state.mkdir(parents=True, exist_ok=True)
        text = json.dumps(
            {
                "days": {d: dataclasses.asdict(c) for d, c in days.items()},
                "recent": [list(r) for r in recent],
            }
        )
        # A cache: rebuilt by a rescan if lost, so no fsync on the learner's hot path.
        atomic_write_text(self._index_path(), text, fsync=False)
