"""What the learner leaves for other processes to read (torch-free): its running totals
in ``state/counters.json`` and its heartbeat in ``state/heartbeat.json``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._fs import atomic_write_text
from .root import TrainingRoot

COUNTERS_NAME = "counters.json"
HEARTBEAT_NAME = "heartbeat.json"
#: The learner rewrites its heartbeat this often; a reader calls it gone after a few misses.
HEARTBEAT_S = 1.0


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


def read_counters(root: str | Path | TrainingRoot) -> LearnerCounters:
    return LearnerCounters.load(TrainingRoot.at(root).state / COUNTERS_NAME)


def write_heartbeat(root: str | Path | TrainingRoot, record: dict[str, Any]) -> None:
    path = TrainingRoot.at(root).state / HEARTBEAT_NAME
    atomic_write_text(path, json.dumps(record), fsync=False)


def read_heartbeat(root: str | Path | TrainingRoot) -> dict[str, Any] | None:
    try:
        record = json.loads((TrainingRoot.at(root).state / HEARTBEAT_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
