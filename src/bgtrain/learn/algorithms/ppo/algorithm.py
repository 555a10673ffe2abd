"""The PPO/V-trace algorithm: its learning state and step (see
:mod:`bgtrain.learn.algorithms.ppo` for the method)."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from bgtrain.errors import NonFiniteTrainingError, TrainingStopped
from bgtrain.learn.algorithms.base import TrainMetrics
from bgtrain.learn.algorithms.ppo.network import ActorCritic, RunningMeanStd
from bgtrain.learn.algorithms.ppo.vtrace import vtrace
from bgtrain.learn.settings import MAX_PIECE_STEPS, PPOSettings
from bgtrain.store import model_layout as layout
from bgtrain.store.episode import Episode
from bgtrain.store.models import LoadedModel, ModelMeta

#: What ``TrainingStopped`` says: the learner puts the batch back.
_STOPPED = "training stopped: the batch goes back to buffer/"
#: Indices of the per-minibatch figures summed over a batch.
_LOSS, _POLICY, _VALUE, _ENTROPY, _KL, _CLIPPED = range(6)


class PreparedBatch(NamedTuple):
    """A batch's samples as tensors, ``n`` samples each (new and replayed alike)."""

    obs: torch.Tensor  # [n, obs_dim] float32, normalised
    actions: torch.Tensor  # [n] int64
    start_logp: torch.Tensor  # [n] float32: log pi(a|s) of the policy at the batch's start
    behaviour_logp: torch.Tensor  # [n] float32: log mu(a|s) of the policy that played
    targets: torch.Tensor  # [n] float32: V-trace value targets
    advantages: torch.Tensor  # [n] float32: V-trace advantages (not normalised)


class Surrogate(NamedTuple):
    """What the policy loss weighs each of a batch's ``n`` samples by."""

    weights: torch.Tensor  # [n] float32: proximal/behaviour ratio, truncated at rho_bar
    advantages: torch.Tensor  # [n] float32: centred and scaled
    ratio_mean: float  # mean proximal/behaviour ratio: 1.0 on-policy


class LearningState(NamedTuple):
    """Everything a batch changes (see :meth:`PPOVTrace._snapshot`): deep copies."""

    net: dict[str, Any]
    optimizer: dict[str, Any]
    obs_rms: tuple[np.ndarray, np.ndarray, float]
    rng: dict[str, Any]


def _ppo_settings(settings: PPOSettings | None) -> PPOSettings:
    """``settings``, or the defaults for ``None``. Anything else is refused: a
    ``LearnerSettings`` is unpacked by the registry (:func:`~bgtrain.learn.algorithms.create`),
    which also hands over its ``max_piece_steps``."""
    if settings is None:
        return PPOSettings()
    if not isinstance(settings, PPOSettings):
        raise TypeError(
            f"PPOVTrace takes PPOSettings, got {type(settings).__name__} (make it with "
            "bgtrain.learn.algorithms.create to pass a learner's settings)"
        )
    return settings


class PPOVTrace:
    """PPO with V-trace (algorithm ``ppo-vtrace``): holds the network, its optimiser and
    the observation statistics of one root (an
    :class:`~bgtrain.learn.algorithms.base.Algorithm`)."""

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        settings: PPOSettings | None = None,
        max_piece_steps: int = MAX_PIECE_STEPS,
    ) -> None:
        """``settings``: the hyperparameters (``None``: the defaults). ``max_piece_steps``:
        an episode is trained in pieces of at most this many steps (the learner's setting
        of that name); :class:`ValueError` below 1."""
        self.settings = settings = _ppo_settings(settings)
        if max_piece_steps < 1:
            raise ValueError(f"max_piece_steps must be at least 1, got {max_piece_steps}")
        self.max_piece_steps = max_piece_steps
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        self._rng = np.random.default_rng(settings.seed)
        #: The state before the last train() call, for undo().
        self._before_train: LearningState | None = None
        self.net = ActorCritic(obs_dim, n_actions, settings.hidden_sizes, settings.activation)
        # foreach: one kernel per step for all tensors, not one per tensor (CPU defaults
        # to the per-tensor loop, which dominates the step of a small MLP).
        self.optimizer = torch.optim.Adam(
            self.net.parameters(), lr=settings.learning_rate, eps=1e-5, foreach=True
        )
        self.obs_rms = RunningMeanStd(obs_dim)

    @property
    def obs_dim(self) -> int:
        return self.net.obs_dim

    @property
    def n_actions(self) -> int:
        return self.net.n_actions

    @classmethod
    def from_model(
        cls,
        model: LoadedModel,
        settings: PPOSettings | None = None,
        max_piece_steps: int = MAX_PIECE_STEPS,
    ) -> PPOVTrace:
        """Continue training a published model (its layer sizes win over ``settings``;
        both arguments are as the constructor takes them)."""
        meta = model.meta
        settings = _ppo_settings(settings)
        # The network's shape is the model's: read from its arrays, whatever the meta says.
        settings = dataclasses.replace(
            settings,
            hidden_sizes=layout.hidden_sizes(model.arrays),
            activation=meta.activation or settings.activation,
        )
        algorithm = cls(meta.obs_dim, meta.n_actions, settings, max_piece_steps)
        algorithm.load_weights(model.arrays)
        return algorithm

    # ------------------------------------------------------------------ state

    def load_weights(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Take the weights and observation statistics of a model of the same shape (a
        published model continued, or the collapse guard's way back to a better version).
        The optimiser's moments stay."""
        self.net.load_arrays(arrays)
        self.obs_rms.mean, self.obs_rms.var, self.obs_rms.count = layout.obs_statistics(arrays)

    def _snapshot(self) -> LearningState:
        """A copy of the weights, optimiser moments, observation statistics and shuffling
        RNG: :meth:`_restore` of it undoes a batch exactly (a batch changes the weights
        once, even when its publish fails and it is trained again)."""
        return LearningState(
            copy.deepcopy(self.net.state_dict()),
            copy.deepcopy(self.optimizer.state_dict()),
            (self.obs_rms.mean.copy(), self.obs_rms.var.copy(), self.obs_rms.count),
            copy.deepcopy(self._rng.bit_generator.state),
        )

    def _restore(self, state: LearningState) -> None:
        """Go back to a :meth:`_snapshot` (its copies stay usable for another restore)."""
        self.net.load_state_dict(copy.deepcopy(state.net))
        self.optimizer.load_state_dict(copy.deepcopy(state.optimizer))
        mean, var, count = state.obs_rms
        self.obs_rms.mean, self.obs_rms.var, self.obs_rms.count = mean.copy(), var.copy(), count
        self._rng.bit_generator.state = copy.deepcopy(state.rng)

    def undo(self) -> None:
        """Go back to the state before the last :meth:`train` call: its model was not
        published (a batch changes the weights once, even when it is trained again)."""
        if self._before_train is not None:
            self._restore(self._before_train)

    def nonfinite_episodes(self, episodes: Sequence[Episode]) -> dict[int, str]:
        """The episodes that, trained on alone from the current state, give non-finite
        numbers, with the error of each. The state is the same afterwards."""
        found = {}
        for i, episode in enumerate(episodes):
            try:
                self.train([episode])
            except NonFiniteTrainingError as exc:  # train went back on its own
                found[i] = str(exc)
            else:
                self.undo()
        return found

    # ------------------------------------------------------------------ export

    def export(self) -> dict[str, np.ndarray]:
        """The model's arrays (format 1). Raises :class:`NonFiniteTrainingError` if any
        value is not finite: such a model is never published."""
        arrays = self.net.export()
        with np.errstate(over="ignore"):
            arrays[layout.OBS_MEAN] = self.obs_rms.mean.astype(np.float32)
            arrays[layout.OBS_VAR] = self.obs_rms.var.astype(np.float32)
        arrays[layout.OBS_COUNT] = np.array(self.obs_rms.count)
        for name, values in arrays.items():
            if not np.isfinite(values).all():
                raise NonFiniteTrainingError(f"model array {name!r} is not finite")
        return arrays

    def meta(self, **fields: Any) -> ModelMeta:
        """The model meta of the current network (version set by the model store). Its
        hyperparameters are the settings it trains with, and the piece length: it shapes
        the numbers too (where a long game bootstraps)."""
        hyper = dataclasses.asdict(self.settings)
        hyper["hidden_sizes"] = list(hyper["hidden_sizes"])
        hyper["max_piece_steps"] = self.max_piece_steps
        base = ModelMeta(
            version=0,
            obs_dim=self.obs_dim,
            n_actions=self.n_actions,
            layer_sizes=tuple(self.net.hidden),
            activation=self.net.activation,
            algorithm=layout.PPO_VTRACE,
            hyperparameters=hyper,
        )
        return dataclasses.replace(base, **fields)

    def normalize(self, states: np.ndarray) -> torch.Tensor:
        """States ``[B, obs_dim]`` as the network takes them (float32, clipped), as the
        numpy policy normalises them."""
        normalization = layout.ObsNormalization.of(self.obs_rms.mean, self.obs_rms.var)
        return torch.from_numpy(normalization.apply(states))

    # ------------------------------------------------------------------ training

    def train(
        self,
        episodes: Sequence[Episode],
        should_stop: Callable[[], bool] | None = None,
        replay: Sequence[Episode] = (),
    ) -> TrainMetrics:
        """Several epochs of clipped, off-policy-corrected actor-critic on ``episodes``.

        All or nothing: if it raises, the algorithm is back to its state before the call.
        Raises :class:`NonFiniteTrainingError` when a loss, gradient norm, target or
        statistic is not finite (no such step is applied), and :class:`TrainingStopped`
        when ``should_stop()`` turns true (checked between pieces and minibatches, so a
        stop waits for one minibatch, never for a whole batch).
        """
        self._before_train = self._snapshot()
        try:
            return self._train(episodes, replay, should_stop or (lambda: False))
        except BaseException:
            self.undo()
            raise

    def _train(
        self,
        episodes: Sequence[Episode],
        replay: Sequence[Episode],
        should_stop: Callable[[], bool],
    ) -> TrainMetrics:
        started = time.perf_counter()
        if self.settings.normalize_obs:
            self._update_obs_statistics(episodes)
        batch = self._prepare([*episodes, *replay], should_stop)
        surrogate = self._surrogate(batch)
        totals, n_updates = self._epochs(batch, surrogate, should_stop)
        n = batch.obs.shape[0]
        n_replayed = sum(ep.length for ep in replay)
        means = totals / max(n_updates, 1)
        return TrainMetrics(
            loss=float(means[_LOSS]),
            policy_loss=float(means[_POLICY]),
            value_loss=float(means[_VALUE]),
            entropy=float(means[_ENTROPY]),
            approx_kl=float(means[_KL]),
            clip_fraction=float(means[_CLIPPED]),
            explained_variance=self._explained_variance(batch),
            ratio_mean=surrogate.ratio_mean,
            n_samples=n - n_replayed,
            n_episodes=len(episodes),
            n_replayed_samples=n_replayed,
            n_updates=n_updates,
            train_time_s=time.perf_counter() - started,
        )

    def _update_obs_statistics(self, episodes: Sequence[Episode]) -> None:
        """Merge the new episodes' states (replayed ones were counted when new)."""
        step = self.max_piece_steps
        for ep in episodes:
            for lo in range(0, ep.length, step):
                self.obs_rms.update(ep.states[lo : lo + step].astype(np.float64))
        if not (np.isfinite(self.obs_rms.var).all() and np.isfinite(self.obs_rms.mean).all()):
            raise NonFiniteTrainingError("observation statistics are not finite")

    def _surrogate(self, batch: PreparedBatch) -> Surrogate:
        # Decoupled PPO (Hilton et al. 2021): the surrogate is weighted by the importance
        # weight of the proximal policy (the policy at the start of this batch) to the
        # behaviour policy, truncated at rho_bar as V-trace truncates it (IMPALA), and the
        # ratio is clipped against the proximal policy. On-policy the weight is 1: PPO.
        behaviour_ratio = (batch.start_logp - batch.behaviour_logp).exp()
        weights = behaviour_ratio.clamp(max=self.settings.rho_bar)
        # Advantages centred with the same weights (as GePPO centres them), scaled to unit
        # std; a single sample has no std and is used as it is (as Stable-Baselines3 does).
        advantages = batch.advantages
        if batch.obs.shape[0] > 1:
            centre = (weights * advantages).sum() / weights.sum().clamp(min=1e-8)
            advantages = (advantages - centre) / (advantages.std() + 1e-8)
        return Surrogate(weights, advantages, float(behaviour_ratio.mean()))

    def _epochs(
        self, batch: PreparedBatch, surrogate: Surrogate, should_stop: Callable[[], bool]
    ) -> tuple[np.ndarray, int]:
        """``n_epochs`` passes of shuffled minibatches: the summed figures of the applied
        minibatches (see ``_LOSS``...) and how many were applied."""
        s = self.settings
        n = batch.obs.shape[0]
        totals = np.zeros(6)
        n_updates = 0
        for _ in range(s.n_epochs):
            order = torch.from_numpy(self._rng.permutation(n))
            for start in range(0, n, s.minibatch_size):
                if should_stop():
                    raise TrainingStopped(_STOPPED)
                figures = self._step(batch, surrogate, order[start : start + s.minibatch_size])
                if figures is None:  # target_kl reached: the batch's epochs end here
                    return totals, n_updates
                totals += figures
                n_updates += 1
        return totals, n_updates

    def _step(
        self, batch: PreparedBatch, surrogate: Surrogate, idx: torch.Tensor
    ) -> list[float] | None:
        """One gradient step on the samples ``idx``: its figures, or ``None`` (and no step)
        once the KL to the starting policy passes 1.5 x ``target_kl`` (as SB3 does)."""
        s = self.settings
        logits, values = self.net(batch.obs[idx])
        if not torch.isfinite(logits).all():
            raise NonFiniteTrainingError("the policy's logits are not finite")
        log_probs = torch.log_softmax(logits, dim=-1)
        logp = log_probs.gather(1, batch.actions[idx, None]).squeeze(1)
        log_ratio = logp - batch.start_logp[idx]
        ratio = log_ratio.exp()
        with torch.no_grad():
            kl = ((ratio - 1) - log_ratio).mean().item()
            clipped = ((ratio - 1).abs() > s.clip_range).float().mean().item()
        if s.target_kl is not None and kl > 1.5 * s.target_kl:
            return None
        adv = surrogate.advantages[idx]
        pg1 = -adv * ratio
        pg2 = -adv * ratio.clamp(1 - s.clip_range, 1 + s.clip_range)
        policy_loss = (surrogate.weights[idx] * torch.max(pg1, pg2)).mean()
        value_loss = (values - batch.targets[idx]).pow(2).mean()
        entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
        loss = policy_loss + s.vf_coef * value_loss - s.ent_coef * entropy
        self._apply(loss)
        return [loss.item(), policy_loss.item(), value_loss.item(), entropy.item(), kl, clipped]

    def _apply(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` and take an Adam step, unless a number is not finite."""
        if not torch.isfinite(loss):
            raise NonFiniteTrainingError(f"the loss is {loss.item()}")
        self.optimizer.zero_grad()
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(
            self.net.parameters(), self.settings.max_grad_norm, foreach=True
        )
        if not torch.isfinite(grad_norm):
            raise NonFiniteTrainingError(f"the gradient norm is {grad_norm.item()}")
        self.optimizer.step()

    @torch.no_grad()
    def _explained_variance(self, batch: PreparedBatch) -> float:
        """How much of the targets' variance the value net explains after the update."""
        _, values = self.net(batch.obs)
        targets = batch.targets
        # Population variances, as SB3's explained_variance (np.var) takes them.
        var_y = targets.var(correction=0).item()
        if var_y == 0:
            return float("nan")
        return 1 - (targets - values).var(correction=0).item() / var_y

    @torch.no_grad()
    def _prepare(
        self, episodes: Sequence[Episode], should_stop: Callable[[], bool] | None = None
    ) -> PreparedBatch:
        """Tensors of the batch: observations, actions, log pi(a|s) of the current net, and
        V-trace targets and advantages (importance-weighted against the behaviour logp).

        An episode is handled in pieces of at most ``max_piece_steps``; a piece that ends
        before its episode does bootstraps from the value of the next state, as a game
        cut short by a time limit would.
        """
        step = self.max_piece_steps
        pieces = []
        for ep in episodes:
            for lo in range(0, ep.length, step):
                if should_stop is not None and should_stop():
                    raise TrainingStopped(_STOPPED)
                pieces.append(self._prepare_piece(ep, lo, min(lo + step, ep.length)))
        obs, actions, logp, behaviour, targets, advantages = (
            np.concatenate(column) for column in zip(*pieces, strict=True)
        )
        if not (np.isfinite(targets).all() and np.isfinite(advantages).all()):
            raise NonFiniteTrainingError("the value targets or advantages are not finite")
        with np.errstate(over="ignore"):
            targets32, advantages32 = targets.astype(np.float32), advantages.astype(np.float32)
        if not (np.isfinite(targets32).all() and np.isfinite(advantages32).all()):
            raise NonFiniteTrainingError("the value targets or advantages overflow float32")
        return PreparedBatch(
            torch.from_numpy(obs),
            torch.from_numpy(actions),
            torch.from_numpy(logp.astype(np.float32)),
            torch.from_numpy(behaviour.astype(np.float32)),
            torch.from_numpy(targets32),
            torch.from_numpy(advantages32),
        )

    def _prepare_piece(self, ep: Episode, lo: int, hi: int) -> tuple[np.ndarray, ...]:
        s = self.settings
        obs = self.normalize(ep.states[lo:hi])
        actions = torch.from_numpy(ep.actions[lo:hi])
        logits, values_t = self.net(obs)
        if not torch.isfinite(logits).all() or not torch.isfinite(values_t).all():
            raise NonFiniteTrainingError("the network's outputs are not finite")
        current_logp = (
            torch.log_softmax(logits, dim=-1).gather(1, actions[:, None]).squeeze(1).numpy()
        )
        values = values_t.numpy().astype(np.float64)
        # Seed files have no logp: on-policy, ratio 1.
        mu = ep.logp[lo:hi] if ep.logp is not None else current_logp
        targets, advantages = vtrace(
            ep.rewards[lo:hi].astype(np.float64),
            values,
            self._bootstrap(ep, hi, values),
            current_logp.astype(np.float64) - mu,
            s.gamma,
            s.gae_lambda,
            s.rho_bar,
        )
        return obs.numpy(), actions.numpy(), current_logp, mu, targets, advantages

    def _bootstrap(self, ep: Episode, hi: int, values: np.ndarray) -> float:
        """The value after a piece ending at step ``hi`` (``values``: the piece's own)."""
        if hi < ep.length:  # cut here: bootstrap from the next state's value
            return float(self.net.vf(self.normalize(ep.states[hi : hi + 1]))[0, 0])
        if ep.terminated:
            return 0.0
        if ep.last_state is not None:
            return float(self.net.vf(self.normalize(ep.last_state[None]))[0, 0])
        return float(values[-1])  # cut short with no last state: the best guess we have
