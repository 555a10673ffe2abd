"""The folders of a training root (DESIGN.md, "A training root")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("local_training")
MODEL_FILE_NAME = "rl_agent_model.npz"
TRAINING_LOG_NAME = "background_training.log"
METRICS_NAME = "metrics.jsonl"


@dataclass(frozen=True)
class TrainingRoot:
    """Where one bot's games, models, logs and learner state live."""

    path: Path

    @classmethod
    def at(cls, path: str | Path | TrainingRoot = DEFAULT_ROOT) -> TrainingRoot:
        return path if isinstance(path, TrainingRoot) else cls(Path(path))

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def buffer(self) -> Path:
        return self.data / "buffer"

    @property
    def processing(self) -> Path:
        return self.data / "processing"

    @property
    def archive(self) -> Path:
        return self.data / "archive"

    @property
    def stale(self) -> Path:
        return self.data / "stale"

    @property
    def quarantine(self) -> Path:
        return self.data / "quarantine"

    @property
    def models(self) -> Path:
        return self.path / "models"

    @property
    def model_file(self) -> Path:
        return self.models / MODEL_FILE_NAME

    @property
    def history(self) -> Path:
        return self.models / "history"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def training_log(self) -> Path:
        return self.logs / TRAINING_LOG_NAME

    @property
    def metrics(self) -> Path:
        return self.logs / METRICS_NAME

    @property
    def state(self) -> Path:
        return self.path / "state"

    def ensure(self) -> TrainingRoot:
        """Create every folder of the layout (idempotent)."""
        for folder in (
            self.buffer,
            self.processing,
            self.archive,
            self.stale,
            self.quarantine,
            self.history,
            self.logs,
            self.state,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        return self
