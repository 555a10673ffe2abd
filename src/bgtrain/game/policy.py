"""Numpy inference of a model file: what game processes use (they never import torch).

The model is an MLP actor-critic (separate policy and value networks); its arrays are
named and checked by :mod:`bgtrain.store.model_layout`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bgtrain.errors import InvalidModelError
from bgtrain.store import model_layout as layout
from bgtrain.store.models import LoadedModel, ModelMeta, ModelStore
from bgtrain.store.root import TrainingRoot


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


#: The numpy function of each of the layout's activation names (the torch side has its own).
NUMPY_ACTIVATIONS = {layout.TANH: np.tanh, layout.RELU: _relu}


def _check_algorithm(meta: ModelMeta) -> None:
    """Refuse a model of an algorithm whose arrays are laid out otherwise: read as this
    MLP, it would play nonsense (or fail on a missing array) instead of saying why."""
    name = meta.algorithm or layout.DEFAULT_ALGORITHM
    if name not in layout.ALGORITHMS:
        raise InvalidModelError(
            f"model v{meta.version} was trained by algorithm {name!r}, which the numpy "
            f"policy cannot play (it plays {', '.join(layout.ALGORITHMS)}): play it with a "
            "bgtrain that knows it, or roll back to a version it knows (bgtrain rollback "
            "VERSION)"
        )


class Policy:
    """Chooses actions for one model version. ``act`` samples, ``act_greedy`` takes the best."""

    def __init__(self, arrays: Mapping[str, np.ndarray], meta: ModelMeta) -> None:
        """Raises :class:`InvalidModelError` when the meta names an algorithm whose models
        are not of :mod:`~bgtrain.store.model_layout`'s layout, when the arrays are not an
        actor-critic of the meta's ``obs_dim`` and ``n_actions``, or when the activation is
        unknown."""
        _check_algorithm(meta)
        self.meta = meta
        self.version = meta.version
        self.obs_dim = meta.obs_dim
        self.n_actions = meta.n_actions
        mean, var, _ = layout.obs_statistics(arrays)
        self._obs = layout.ObsNormalization.of(mean, var)
        self._pi = layout.layers(arrays, layout.POLICY)
        self._vf = layout.layers(arrays, layout.VALUE)
        self._check_shapes()
        try:
            self._activation = NUMPY_ACTIVATIONS[meta.activation or layout.DEFAULT_ACTIVATION]
        except KeyError:
            raise InvalidModelError(f"unknown activation {meta.activation!r}") from None
        self._rng = random.Random()

    def _check_shapes(self) -> None:
        if not self._pi or not self._vf:
            pi0, vf0 = layout.weight_name(layout.POLICY, 0), layout.weight_name(layout.VALUE, 0)
            raise InvalidModelError(f"model has no {pi0!r}/{vf0!r} layers: not an actor-critic")
        if self._pi[0][0].shape[0] != self.obs_dim or self._pi[-1][0].shape[1] != self.n_actions:
            raise InvalidModelError(
                f"policy layers are {self._pi[0][0].shape[0]} -> {self._pi[-1][0].shape[1]}, "
                f"meta says obs_dim {self.obs_dim}, n_actions {self.n_actions}"
            )
        layout.check_layers(self._pi, layout.POLICY, self.obs_dim, self.n_actions)
        layout.check_layers(self._vf, layout.VALUE, self.obs_dim, 1)
        for name, stat in ((layout.OBS_MEAN, self._obs.mean), (layout.OBS_VAR, self._obs.inv_std)):
            if stat.shape != (self.obs_dim,):
                raise InvalidModelError(
                    f"{name!r} has shape {stat.shape}; expected ({self.obs_dim},)"
                )

    @classmethod
    def from_model(cls, model: LoadedModel) -> Policy:
        return cls(model.arrays, model.meta)

    @classmethod
    def load(cls, root: str | Path | TrainingRoot, version: int | None = None) -> Policy:
        return cls.from_model(ModelStore(root).load(version))

    def seed(self, seed: int | None) -> None:
        self._rng.seed(seed)

    # ------------------------------------------------------------------ networks

    def normalize(self, states: np.ndarray) -> np.ndarray:
        """States ``[obs_dim]`` or ``[B, obs_dim]`` as the networks take them (float32)."""
        return self._obs.apply(states)

    def _forward(self, layers: list[layout.Layer], x: np.ndarray) -> np.ndarray:
        for w, b in layers[:-1]:
            x = self._activation(x @ w + b)
        w, b = layers[-1]
        return x @ w + b

    def logits(self, states: np.ndarray) -> np.ndarray:
        return self._forward(self._pi, self.normalize(states))

    def log_probs(self, states: np.ndarray) -> np.ndarray:
        logits = self.logits(states).astype(np.float64)
        logits -= logits.max(axis=-1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))

    def probs(self, states: np.ndarray) -> np.ndarray:
        """Action probabilities for one state ``[obs_dim]`` or a batch ``[B, obs_dim]``."""
        return np.exp(self.log_probs(states))

    def value(self, states: np.ndarray) -> np.ndarray:
        """The critic's value of one state (a 0-d array) or of a batch ``[B]``."""
        return self._forward(self._vf, self.normalize(states))[..., 0]

    # ------------------------------------------------------------------ acting

    def _checked(self, state: np.ndarray) -> np.ndarray:
        """One state of the size this model takes (numpy would broadcast a (1,) state)."""
        x = np.asarray(state, dtype=np.float32)
        if x.shape != (self.obs_dim,):
            raise ValueError(
                f"state has shape {x.shape}; model v{self.version} takes ({self.obs_dim},)"
            )
        return x

    def _finite(self, values: np.ndarray, state: np.ndarray) -> np.ndarray:
        """``values`` (logits or log-probabilities), refused if not finite: a NaN reads as
        "the last action" to the sampler below and "the first" to argmax, a silent and
        wrong choice. Checked on the few outputs, not on every input number."""
        if np.isfinite(values).all():
            return values
        bad = np.flatnonzero(~np.isfinite(state))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"state[{i}] is {state[i]}: no action can be chosen for it")
        raise ValueError(
            f"model v{self.version} gives non-finite action probabilities; it cannot "
            "choose an action (roll back to an earlier version)"
        )

    def act(self, state: np.ndarray) -> tuple[int, float]:
        """Sample an action; returns ``(action, log-probability)`` to record."""
        x = self._checked(state)
        log_p = self._finite(self.log_probs(x), x)
        u = self._rng.random()
        cumulative = 0.0
        action = self.n_actions - 1
        for a, lp in enumerate(log_p):
            cumulative += math.exp(lp)
            if u < cumulative:
                action = a
                break
        return action, float(log_p[action])

    def act_greedy(self, state: np.ndarray) -> int:
        x = self._checked(state)
        return int(np.argmax(self._finite(self.logits(x), x)))


class UniformPolicy:
    """What a game plays before the first model is published: every action equally likely."""

    version = None

    def __init__(self, n_actions: int, seed: int | None = None) -> None:
        self.n_actions = n_actions
        self._logp = -math.log(n_actions)
        self._rng = random.Random(seed)

    def seed(self, seed: int | None) -> None:
        self._rng.seed(seed)

    def probs(self, states: np.ndarray) -> np.ndarray:
        shape = (*np.shape(states)[:-1], self.n_actions)
        return np.full(shape, 1.0 / self.n_actions)

    def act(self, state: np.ndarray) -> tuple[int, float]:
        return self._rng.randrange(self.n_actions), self._logp

    def act_greedy(self, state: np.ndarray) -> int:
        return self._rng.randrange(self.n_actions)
