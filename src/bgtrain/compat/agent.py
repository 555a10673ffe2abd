"""``RLAgent``: the seed system's agent API, over a bgtrain algorithm and the numpy policy."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bgtrain.common.settings import replace_settings
from bgtrain.errors import ModelNotFoundError
from bgtrain.game.policy import Policy
from bgtrain.learn.algorithms import Algorithm, continue_from, create
from bgtrain.learn.settings import PPOSettings
from bgtrain.store.episode import build_episode
from bgtrain.store.fs import atomic_write
from bgtrain.store.models import ModelStore, model_file_bytes, read_model_file
from bgtrain.store.root import DEFAULT_ROOT, MODEL_FILE_NAME

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = DEFAULT_ROOT / "models" / MODEL_FILE_NAME
#: The seed bot's five strategies.
SEED_N_ACTIONS = 5

__all__ = ["RLAgent"]


class RLAgent:
    """``get_action(state)``, ``train_from_batch(experiences)``, ``save_model()``.

    The network is made on first use from the state's length (or loaded from
    ``model_path`` if a model is there, continued by the algorithm it names). A
    ``model_path`` inside a training root's ``models/`` folder is published through the
    root's model store (versions, and the history size the root's learner keeps);
    anywhere else it is written atomically as a single model file. ``settings`` are the
    algorithm's (PPO's); ``learning_rate`` and ``gamma`` override theirs.
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        model_path: str | Path | None = None,
        *,
        gamma: float = 0.99,
        n_actions: int = SEED_N_ACTIONS,
        settings: PPOSettings | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path else DEFAULT_MODEL_PATH
        self.settings = replace_settings(
            settings or PPOSettings(), learning_rate=learning_rate, gamma=gamma
        )
        self.n_actions = n_actions
        self.algorithm: Algorithm | None = None
        self.version = 0
        self._policy: Policy | None = None
        self._games = 0
        self._samples = 0
        self._load_model()

    def _load_model(self) -> None:
        try:
            model = read_model_file(self.model_path)
        except ModelNotFoundError:
            return
        self.algorithm = continue_from(model, self.settings)
        self.n_actions = model.meta.n_actions
        self.version = model.version
        logger.info("RLAgent: model version %d loaded from %s", model.version, self.model_path)

    def _ensure_trainer(self, obs_dim: int) -> Algorithm:
        if self.algorithm is None:
            self.algorithm = create(None, obs_dim, self.n_actions, self.settings)
        return self.algorithm

    def _current_policy(self) -> Policy:
        if self._policy is None:
            assert self.algorithm is not None
            self._policy = Policy(
                self.algorithm.export(), self.algorithm.meta(version=self.version)
            )
        return self._policy

    def get_action(self, state: Any) -> int:
        """A sampled action index for ``state``."""
        state = np.asarray(state, dtype=np.float32)
        self._ensure_trainer(state.shape[-1])
        return self._current_policy().act(state)[0]

    def train_from_batch(self, experiences: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Train on games given as dicts of ``states``/``actions``/``rewards`` (and
        optionally ``logp``, ``terminated``, ``last_state``). Returns loss, steps, games."""
        if not experiences:
            return {"loss": 0.0, "steps": 0, "games": 0}
        first_width = np.shape(experiences[0]["states"])[-1]
        obs_dim = self.algorithm.obs_dim if self.algorithm is not None else first_width
        episodes = [
            build_episode(
                exp["states"],
                exp["actions"],
                exp["rewards"],
                logp=exp.get("logp"),
                terminated=bool(exp.get("terminated", True)),
                last_state=exp.get("last_state"),
                obs_dim=obs_dim,
                n_actions=self.n_actions,
            )
            for exp in experiences
        ]
        metrics = self._ensure_trainer(episodes[0].obs_dim).train(episodes)
        self._policy = None
        self._games += metrics.n_episodes
        self._samples += metrics.n_samples
        return {"loss": metrics.loss, "steps": metrics.n_samples, "games": metrics.n_episodes}

    def save_model(self, path: str | Path | None = None) -> bool:
        """Write the model (whole, atomically). Returns ``True`` once it is on disk."""
        if self.algorithm is None:
            logger.warning("RLAgent.save_model: nothing to save before the first state or batch")
            return False
        target = Path(path) if path else self.model_path
        counters = {"games": self._games, "samples": self._samples}
        meta = self.algorithm.meta(counters=counters)
        if target.name == MODEL_FILE_NAME and target.parent.name == "models":
            self.version = (
                ModelStore(target.parent.parent).publish(self.algorithm.export(), meta).version
            )
        else:
            self.version += 1
            meta = dataclasses.replace(meta, version=self.version)
            payload = model_file_bytes(self.algorithm.export(), meta)
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, lambda f: f.write(payload))
        self._policy = None
        return True
