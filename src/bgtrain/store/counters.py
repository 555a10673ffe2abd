"""What the learner leaves for other processes to read (torch-free): its running totals
in ``state/counters.json`` and its heartbeat in ``state/heartbeat.json``.

The totals are saved after each batch is published and archived, so a learner killed in
between leaves them behind the root. At start-up :func:`load_counters` repairs them
upward to what the root itself proves (archived files, set-aside files, the latest
model's own totals), so the figures the monitor shows add up.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bgtrain.store.fs import atomic_write_text
from bgtrain.store.root import TrainingRoot

if TYPE_CHECKING:
    from bgtrain.store.models import ModelStore
    from bgtrain.store.spool import Spool

logger = logging.getLogger(__name__)

COUNTERS_NAME = "counters.json"
HEARTBEAT_NAME = "heartbeat.json"
#: The learner rewrites its heartbeat this often; a reader calls it gone after a few misses.
HEARTBEAT_S = 1.0
#: A heartbeat older than this (seconds) is a learner that is gone.
HEARTBEAT_STALE_S = 5 * HEARTBEAT_S


@dataclass
class LearnerCounters:
    """Running totals; saved in ``state/counters.json`` so they survive a restart."""

    files_processed: int = 0
    batches_trained: int = 0
    total_samples: int = 0
    total_processing_time: float = 0.0
    loss_sum: float = 0.0
    last_loss: float = 0.0
    errors: int = 0
    files_skipped_old: int = 0
    files_quarantined: int = 0
    last_batch_time: float | None = None
    #: Times the collapse guard went back to the best version's weights.
    guard_restores: int = 0

    @classmethod
    def load(cls, path: Path) -> LearnerCounters:
        try:
            raw = json.loads(path.read_text("utf-8"))
            names = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in raw.items() if k in names})
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(dataclasses.asdict(self)), fsync=False)

    def count_batch(self, games: int, samples: int, loss: float) -> None:
        """Add one published batch of ``games`` episode files and ``samples`` steps."""
        self.files_processed += games
        self.batches_trained += 1
        self.total_samples += samples
        self.loss_sum += loss
        self.last_loss = loss

    def model_totals(self) -> dict[str, int]:
        """The totals a model's meta carries (key ``counters``), which :func:`root_facts`
        reads back as lower bounds."""
        return {
            "batches": self.batches_trained,
            "games": self.files_processed,
            "samples": self.total_samples,
        }

    @property
    def avg_loss(self) -> float:
        return self.loss_sum / self.batches_trained if self.batches_trained else 0.0

    @property
    def samples_per_second(self) -> float:
        t = self.total_processing_time
        return self.total_samples / t if t else 0.0


def read_counters(root: str | Path | TrainingRoot) -> LearnerCounters:
    return LearnerCounters.load(TrainingRoot.at(root).state / COUNTERS_NAME)


# ---------------------------------------------------------------------- start-up repair


@dataclass(frozen=True)
class RootFacts:
    """Lower bounds on the learner's totals that a root proves whatever ``counters.json``
    says: every archived file was trained once, set-aside files were counted when set
    aside (requeue only lowers these), and each model carries the totals it was trained
    with (key ``counters`` of its meta: ``batches``, ``games``, ``samples``)."""

    archived: int = 0
    stale: int = 0
    quarantined: int = 0
    model: Mapping[str, Any] = field(default_factory=dict)


def root_facts(spool: Spool, store: ModelStore) -> RootFacts:
    """What ``spool``'s root proves now (run under the learner lock, after recovery)."""
    counts = spool.counts()
    try:
        model = dict(store.load().meta.counters)
    except Exception:  # no model yet, or unreadable: the learner reports that itself
        model = {}
    return RootFacts(counts.archive, counts.stale, counts.quarantine, model)


def _whole(value: Any) -> int:
    """A model meta total as a count (anything else proves nothing: 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def repair_counters(
    counters: LearnerCounters, facts: RootFacts
) -> tuple[LearnerCounters, list[str]]:
    """``counters`` raised to ``facts`` (never lowered), and what was raised, as
    ``"name old -> new (source)"``."""
    floors = {
        "files_processed": (
            max(facts.archived, _whole(facts.model.get("games"))),
            "archive/ and the model",
        ),
        "batches_trained": (_whole(facts.model.get("batches")), "the model"),
        "total_samples": (_whole(facts.model.get("samples")), "the model"),
        "files_skipped_old": (facts.stale, "stale/"),
        "files_quarantined": (facts.quarantined, "quarantine/"),
    }
    changes: dict[str, int] = {}
    repairs = []
    for name, (floor, source) in floors.items():
        old = getattr(counters, name)
        if floor > old:
            changes[name] = floor
            repairs.append(f"{name} {old} -> {floor} ({source})")
    if not changes:
        return counters, []
    repaired = dataclasses.replace(counters, **changes)
    # The lost batches' losses and times are unknown: assume they were like the known
    # ones, so the average loss and samples/s the monitor shows stay what they were.
    if counters.batches_trained and repaired.batches_trained > counters.batches_trained:
        repaired.loss_sum *= repaired.batches_trained / counters.batches_trained
    if counters.total_samples and repaired.total_samples > counters.total_samples:
        repaired.total_processing_time *= repaired.total_samples / counters.total_samples
    return repaired, repairs


def load_counters(spool: Spool, store: ModelStore) -> LearnerCounters:
    """``state/counters.json``, repaired upward to what the root proves (and saved so
    that readers see the repaired figures at once). Logs what was repaired."""
    path = spool.root.state / COUNTERS_NAME
    counters, repairs = repair_counters(LearnerCounters.load(path), root_facts(spool, store))
    if repairs:
        logger.warning(
            "%s was behind the root (a learner stopped before saving it); repaired: %s",
            path,
            "; ".join(repairs),
        )
        try:
            counters.save(path)
        except OSError as exc:  # saved again after the next batch
            logger.warning("cannot save the repaired counters to %s: %s", path, exc)
    return counters


# ---------------------------------------------------------------------- heartbeat


@dataclass(frozen=True)
class Heartbeat:
    """``state/heartbeat.json``: the learner says it is alive every :data:`HEARTBEAT_S`."""

    pid: int | None = None
    #: When it was written, Unix seconds.
    time: float | None = None
    #: ``"training"``, ``"idle"`` or ``"stopped"`` (written once, at a clean stop).
    state: str | None = None
    model_version: int = 0
    #: Failed learner cycles so far.
    errors: int = 0

    def age(self, now: float) -> float | None:
        """Seconds since it was written (``None``: no time in the file)."""
        ok = isinstance(self.time, (int, float)) and not isinstance(self.time, bool)
        return now - self.time if ok else None  # type: ignore[operator]

    def alive(self, now: float) -> bool:
        """A learner that beat recently and has not said it stopped."""
        age = self.age(now)
        return age is not None and age < HEARTBEAT_STALE_S and self.state != "stopped"


def write_heartbeat(root: str | Path | TrainingRoot, beat: Heartbeat) -> None:
    path = TrainingRoot.at(root).state / HEARTBEAT_NAME
    atomic_write_text(path, json.dumps(dataclasses.asdict(beat)), fsync=False)


def read_heartbeat(root: str | Path | TrainingRoot) -> Heartbeat | None:
    """The last heartbeat, or ``None`` (no learner yet, or a file torn by hand)."""
    try:
        record = json.loads((TrainingRoot.at(root).state / HEARTBEAT_NAME).read_text("utf-8"))
        names = {f.name for f in dataclasses.fields(Heartbeat)}
        return Heartbeat(**{k: v for k, v in record.items() if k in names})
    except (OSError, ValueError, TypeError, AttributeError):
        return None
