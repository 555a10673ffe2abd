"""The algorithm seam: what the learner (and RLAgent) ask of a learning algorithm.

An algorithm holds one root's learning state (networks, optimiser, statistics), trains
it on recorded episodes and exports it as a model file's arrays and meta. It is made by
the registry (:mod:`bgtrain.learn.algorithms`): new from the shapes of the games, or
continued from a published model. Torch-free: the protocols only name the types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from bgtrain.store.episode import Episode
from bgtrain.store.models import LoadedModel, ModelMeta


class TrainMetrics(NamedTuple):
    """One batch's training figures (names follow Stable-Baselines3's ``train/*``)."""

    loss: float
    policy_loss: float
    value_loss: float
    entropy: float
    approx_kl: float
    clip_fraction: float
    explained_variance: float
    ratio_mean: float  # behaviour ratio before the update: 1.0 when on-policy
    n_samples: int  # new samples (first training)
    n_episodes: int
    n_replayed_samples: int  # samples of earlier batches trained again (sample reuse)
    n_updates: int
    train_time_s: float


class Algorithm(Protocol):
    """One root's learning state. Every method that changes it is all or nothing."""

    @property
    def obs_dim(self) -> int:
        """Length of a state (the model's input)."""
        ...

    @property
    def n_actions(self) -> int:
        """Number of discrete actions (the model's outputs)."""
        ...

    def train(
        self,
        episodes: Sequence[Episode],
        should_stop: Callable[[], bool] | None = None,
        replay: Sequence[Episode] = (),
    ) -> TrainMetrics:
        """Train on ``episodes`` (each ``states`` float32 ``[T, obs_dim]``, ``actions``
        int64 ``[T]`` in ``0..n_actions-1``), and again on ``replay`` (episodes of earlier
        batches). If it raises, the state is as before the call: ``NonFiniteTrainingError``
        when a number is not finite, ``TrainingStopped`` once ``should_stop()`` is true."""
        ...

    def export(self) -> dict[str, np.ndarray]:
        """The model's arrays (names: :mod:`bgtrain.store.model_layout`). Raises
        ``NonFiniteTrainingError`` if a value is not finite: such a model is never
        published."""
        ...

    def meta(self, **fields: Any) -> ModelMeta:
        """The meta of the current model (``algorithm`` is its registry name), with
        ``fields`` replaced (``counters=``, ``extra=``, ``version=``)."""
        ...

    def load_weights(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Take the weights and statistics of a model of the same shape (the collapse
        guard's way back to a better version); what the optimiser learnt stays."""
        ...

    def undo(self) -> None:
        """Go back to the state before the last :meth:`train` call (its model was not
        published); nothing happens if there was none."""
        ...

    def nonfinite_episodes(self, episodes: Sequence[Episode]) -> dict[int, str]:
        """``{index: error}`` of the episodes that, trained on alone from the current
        state, give non-finite numbers. The state is the same afterwards."""
        ...


class AlgorithmFactory(Protocol):
    """How the registry makes an algorithm (an implementation class fits it).

    ``settings`` are the algorithm's own settings object (its ``AlgorithmSpec``'s
    ``settings_type``); ``max_piece_steps`` is the learner's: the longest piece of an
    episode to handle at once (the learner's pipeline already splits longer files, but
    RLAgent's batches are not split), so that memory stays bounded and a stop is seen
    between pieces. An algorithm that has no use for it takes it all the same.
    """

    def __call__(
        self, obs_dim: int, n_actions: int, settings: Any, max_piece_steps: int
    ) -> Algorithm:
        """A new model for states of ``obs_dim`` numbers and ``n_actions`` actions."""
        ...

    def from_model(self, model: LoadedModel, settings: Any, max_piece_steps: int) -> Algorithm:
        """Continue ``model``: its shape (layers, activation) wins over ``settings``;
        :class:`~bgtrain.errors.InvalidModelError` if its arrays do not fit together."""
        ...
