"""bgtrain: background training for game bots.

A game records each game with :class:`EpisodeRecorder`; a learner claims the recorded
episodes from the :class:`Spool`, trains, and publishes to the :class:`ModelStore`; the
game loads the newest model between games. See DESIGN.md for the contracts.
"""

from __future__ import annotations

from bgtrain.errors import (
    BgtrainError,
    EpisodeWriteError,
    InvalidEpisodeError,
    InvalidModelError,
    LearnerLockedError,
    ModelNotFoundError,
    SpoolError,
)
from bgtrain.game.recorder import EpisodeRecorder
from bgtrain.store.episode import Episode, build_episode, load_episode, save_episode
from bgtrain.store.lock import LearnerLock
from bgtrain.store.models import LoadedModel, ModelMeta, ModelStore
from bgtrain.store.root import TrainingRoot
from bgtrain.store.safe_npz import SizeLimits
from bgtrain.store.spool import Spool, SpoolCounts

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
