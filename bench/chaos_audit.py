"""The fault suite's audit: what a training root's files say after the faults.

Everything is judged from the files alone, against what the writers logged (a line per
file, see chaos_proc.py): each name is in exactly one of archive/, stale/, quarantine/ (or
still waiting in buffer/ or processing/), in the folder its kind belongs in; every
archived game is in the batch of exactly one model version (the history keeps them all);
the latest model's observation count equals the steps of the games its versions list (a
batch applied to the weights twice shows up as more); every set-aside file has its
``NAME.reason.json``; the learner's counters agree with the folders.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bgtrain import TrainingRoot
from bgtrain.store.counters import read_counters
from bgtrain.store.episode import episode_steps
from bgtrain.store.models import MODEL_LIMITS, ModelMeta, ModelStore, history_name
from bgtrain.store.safe_npz import load_npz
from bgtrain.store.spool import REASON_SUFFIX

#: Folders of files set aside, each file beside its NAME.reason.json.
SET_ASIDE = ("stale", "quarantine", "split")
_SUFFIX = re.compile(r"^(?P<stem>[^.]*?)~\d+(?P<ext>\..*)$")
#: Where each kind of file a writer wrote may be at the end.
BELONGS = {
    # A game longer than the learner's max_piece_steps goes to split/, its pieces onward.
    "valid": ("archive", "buffer", "processing", "split"),
    "invalid": ("quarantine", "buffer", "processing"),
    "stale": ("stale", "buffer", "processing"),
}


def base_name(name: str) -> str:
    """The name a file was written under: a move to a taken name adds ``~N``."""
    m = _SUFFIX.match(name)
    return f"{m['stem']}{m['ext']}" if m else name


@dataclass
class Expected:
    """What the writers logged: name -> (kind, steps); ``optional`` names may be absent
    (a writer killed mid-write logged it before the file was whole)."""

    files: dict[str, tuple[str, int]] = field(default_factory=dict)
    optional: dict[str, tuple[str, int]] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)

    def steps(self, name: str) -> int | None:
        entry = self.files.get(name) or self.optional.get(name)
        return entry[1] if entry else None

    def kind(self, name: str) -> str | None:
        entry = self.files.get(name) or self.optional.get(name)
        return entry[0] if entry else None


def read_writer_log(log: Path, into: Expected) -> None:
    """``KIND NAME STEPS`` lines of a writer (``failed NAME 0``: refused by a full disk)."""
    for line in log.read_text("utf-8").splitlines():
        kind, name, steps = line.split()
        if kind == "failed":
            into.failed.add(name)
        else:
            into.files[name] = (kind, int(steps))


def read_midwriter_log(log: Path, into: Expected) -> list[float]:
    """``begin NAME STEPS T`` / ``done NAME T`` lines; returns the write durations."""
    begun: dict[str, tuple[int, float]] = {}
    durations = []
    for line in log.read_text("utf-8").splitlines():
        parts = line.split()
        if parts[0] == "begin":
            begun[parts[1]] = (int(parts[2]), float(parts[3]))
            into.optional[parts[1]] = ("valid", int(parts[2]))
        elif parts[0] == "done" and parts[1] in begun:
            steps, started = begun[parts[1]]
            into.files[parts[1]] = ("valid", steps)
            into.optional.pop(parts[1], None)
            durations.append(float(parts[2]) - started)
    return durations


@dataclass
class Audit:
    """What a root's files say after the run (every list holds names)."""

    written: Counter = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    waiting: int = 0
    unknown: list[str] = field(default_factory=list)
    #: valid games quarantined or staled, invalid or stale files archived: name -> why.
    misplaced: dict[str, str] = field(default_factory=dict)
    set_aside: int = 0
    without_reason: list[str] = field(default_factory=list)
    orphan_reasons: int = 0
    writer_temps_taken: list[str] = field(default_factory=list)
    writer_temps_left: int = 0
    writer_temps_bytes: int = 0
    #: Writers' dot-temps the learner's sweep should have removed by now (see OLD_TEMP_S).
    writer_temps_old: list[str] = field(default_factory=list)
    learner_temps_left: int = 0
    interrupted_writes: int = 0
    #: Games in split/ whose reason says the split was not finished.
    incomplete_splits: list[str] = field(default_factory=list)
    versions: int = 0
    history_gaps: list[int] = field(default_factory=list)
    trained_twice: list[str] = field(default_factory=list)
    archived_unlisted: list[str] = field(default_factory=list)
    listed_unarchived: list[str] = field(default_factory=list)
    #: Latest model's observation count minus the steps its versions list (None: unknown).
    obs_excess: float | None = None
    counters_off: dict[str, tuple[int, int]] = field(default_factory=dict)

    def merge(self, other: Audit) -> Audit:
        merged = Audit()
        for name, value in vars(self).items():
            theirs = getattr(other, name)
            if isinstance(value, (list, Counter)):
                setattr(merged, name, value + theirs)
            elif isinstance(value, dict):
                setattr(merged, name, {**value, **theirs})
            elif name == "obs_excess":
                known = [v for v in (value, theirs) if v is not None]
                merged.obs_excess = sum(abs(v) for v in known) if known else None
            else:
                setattr(merged, name, value + theirs)
        return merged


#: The suite's learners remove writers' dot-temps older than STALE_TEMP_AGE_S, at start-up
#: and every minute (TEMP_SWEEP_S): one older than both, plus slack, was missed.
STALE_TEMP_AGE_S = 60
OLD_TEMP_S = STALE_TEMP_AGE_S + 60 + 60


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return [e for e in it if e.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _history_meta(root: TrainingRoot, version: int) -> ModelMeta:
    _, arrays = load_npz(root.history / history_name(version), MODEL_LIMITS, keys=("meta",))
    return ModelMeta.from_json(str(arrays["meta"]))


def audit(root: TrainingRoot, expected: Expected) -> Audit:
    """Check a root against what its writers logged, from its files alone."""
    a = Audit()
    a.written = Counter(kind for kind, _ in expected.files.values())
    where, archived = _scan(root, a)
    expected = _with_pieces(root, expected, where, a)
    for name in expected.files:
        if not where.get(name):
            a.lost.append(name)
    for name in expected.optional:
        if not where.get(name):
            a.interrupted_writes += 1
    for base, places in where.items():
        if len(places) > 1:
            a.duplicated.append(f"{base}: {', '.join(f'{f}/{n}' for f, n in places)}")
        kind = expected.kind(base)
        if kind is None:
            a.unknown.append(base)
            continue
        for label, name in places:
            if label in ("buffer", "processing"):
                a.waiting += 1
            if label not in BELONGS[kind]:
                why = ""
                if label in SET_ASIDE:
                    reason_file = root.data / label / (name + REASON_SUFFIX)
                    with contextlib.suppress(OSError, ValueError):
                        why = json.loads(reason_file.read_text("utf-8")).get("reason", "")
                a.misplaced[name] = f"{kind} file in {label}/" + (f": {why}" if why else "")
    _audit_versions(root, expected, archived, a)
    _audit_counters(root, archived, a)
    return a


def _scan(root: TrainingRoot, a: Audit) -> tuple[dict[str, list[tuple[str, str]]], set[str]]:
    """Every episode of the root by the name it was written under: (folder, name) pairs;
    and the names in archive/. Counts temps and set-aside files without a reason."""
    where: dict[str, list[tuple[str, str]]] = defaultdict(list)
    folders = {
        "buffer": [root.buffer],
        "processing": [root.processing],
        **{label: [root.data / label] for label in SET_ASIDE},
        "archive": sorted(p for p in root.archive.glob("*") if p.is_dir()),
    }
    archived: set[str] = set()
    for label, paths in folders.items():
        for folder in paths:
            for entry in _entries(folder):
                name = entry.name
                if name.startswith("."):
                    if label == "buffer":
                        st = entry.stat(follow_symlinks=False)
                        a.writer_temps_left += 1
                        a.writer_temps_bytes += st.st_size
                        if time.time() - st.st_mtime > OLD_TEMP_S:
                            a.writer_temps_old.append(name)
                    elif REASON_SUFFIX in name and label in SET_ASIDE:
                        a.learner_temps_left += 1
                    else:
                        a.writer_temps_taken.append(f"{label}/{name}")
                    continue
                if name.endswith(REASON_SUFFIX):
                    if not os.path.lexists(folder / name[: -len(REASON_SUFFIX)]):
                        a.orphan_reasons += 1
                    continue
                if not name.endswith(".npz"):
                    continue
                where[base_name(name)].append((label, name))
                if label == "archive":
                    archived.add(name)
                if label in SET_ASIDE:
                    a.set_aside += 1
                    if not (folder / (name + REASON_SUFFIX)).is_file():
                        a.without_reason.append(f"{label}/{name}")
    return where, archived


def _with_pieces(
    root: TrainingRoot, expected: Expected, where: dict[str, list[tuple[str, str]]], a: Audit
) -> Expected:
    """``expected`` plus the pieces of every game the learner split (each listed in the
    reason beside the game in split/): they must arrive like games of their own."""
    out = Expected(dict(expected.files), dict(expected.optional), set(expected.failed))
    for _, name in where_in(where, "split"):
        record = _reason(root.data / "split" / name)
        if record is None:
            continue  # counted as a file without a reason
        if not record.get("complete", False):
            a.incomplete_splits.append(name)
        for piece in record.get("pieces", []):
            places = where.get(piece, [])
            steps = None
            for label, found in places:
                folder = _folder(root, label, found)
                steps = episode_steps(folder / found) if folder is not None else None
                if steps is not None:
                    break
            # A piece's steps come from its file (None, if it is lost: counted as lost).
            out.files[piece] = ("valid", steps if steps is not None else 0)
    return out


def where_in(where: dict[str, list[tuple[str, str]]], label: str) -> list[tuple[str, str]]:
    return [(base, name) for base, places in where.items() for f, name in places if f == label]


def _folder(root: TrainingRoot, label: str, name: str) -> Path | None:
    if label != "archive":
        return root.data / label
    for day in root.archive.glob("*"):
        if (day / name).exists():
            return day
    return None


def _reason(path: Path) -> dict | None:
    try:
        record = json.loads(path.with_name(path.name + REASON_SUFFIX).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _audit_versions(root: TrainingRoot, expected: Expected, archived: set[str], a: Audit) -> None:
    """Exactly once: every archived game is in one version's batch, and no batch is trained
    into the weights twice (the latest model's observation count adds up)."""
    store = ModelStore(root, history_size=None)
    latest = store.latest_version() or 0
    kept = set(store.versions())
    a.versions = latest
    a.history_gaps = [v for v in range(1, latest + 1) if v not in kept]
    listed: dict[str, list[int]] = defaultdict(list)
    for version in range(1, latest + 1):
        if version in kept:
            for name in _history_meta(root, version).batch:
                listed[name].append(version)
    by_base = Counter(base_name(name) for name, vs in listed.items() for _ in vs)
    a.trained_twice = sorted(b for b, n in by_base.items() if n > 1)
    a.archived_unlisted = sorted(archived - set(listed))
    a.listed_unarchived = sorted(set(listed) - archived)
    if latest and not a.history_gaps:
        steps = [expected.steps(base_name(n)) for n, vs in listed.items() for _ in vs]
        if None not in steps:
            count = float(store.load().arrays.get("obs_count", np.array(np.nan)))
            a.obs_excess = count - float(sum(s for s in steps if s is not None))


def _audit_counters(root: TrainingRoot, archived: set[str], a: Audit) -> None:
    """The learner's running totals against the root (the monitor shows these)."""
    c = read_counters(root)
    truth = {
        "files_processed": len(archived),
        "batches_trained": a.versions,
        "files_quarantined": len([e for e in _entries(root.quarantine) if _is_episode(e.name)]),
        "files_skipped_old": len([e for e in _entries(root.stale) if _is_episode(e.name)]),
    }
    for key, true in truth.items():
        if getattr(c, key) != true:
            a.counters_off[f"{root.path.parent.name}: {key}"] = (getattr(c, key), true)


def _is_episode(name: str) -> bool:
    return name.endswith(".npz") and not name.startswith(".")
