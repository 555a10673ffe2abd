"""bgtrain: background training for game bots.

A game records each game with :class:`EpisodeRecorder`; a learner claims the recorded
episodes from the :class:`Spool`, trains, and publishes to the :class:`ModelStore`; the
game loads the newest model between games. See DESIGN.md for the contracts.
"""

from __future__ import annotations

from .episode import Episode, build_episode, load_episode, save_episode
from .errors import (
    BgtrainError,
    EpisodeWriteError,
    InvalidEpisodeError,
    InvalidModelError,
    LearnerLockedError,
    ModelNotFoundError,
    SpoolError,
)
from .lock import LearnerLock
from .models import LoadedModel, ModelMeta, ModelStore
from .recorder import EpisodeRecorder
from .root import TrainingRoot
from .safe_npz import SizeLimits
from .spool import Spool, SpoolCounts

__version__ = "0.1.0"

__all__ = [
    "BgtrainError",
    "Episode",
    "EpisodeRecorder",
    "EpisodeWriteError",
    "InvalidEpisodeError",
    "InvalidModelError",
    "LearnerLock",
    "LearnerLockedError",
    "LoadedModel",
    "ModelMeta",
    "ModelNotFoundError",
    "ModelStore",
    "SizeLimits",
    "Spool",
    "SpoolCounts",
    "SpoolError",
    "TrainingRoot",
    "build_episode",
    "load_episode",
    "save_episode",
]
