"""The torch learning step: actor-critic from whole episodes, off-policy corrected.

Episodes may have been played by a policy a few versions old. Each recorded step carries
the behaviour log-probability ``logp`` (seed files without it are taken as on-policy):

* value targets and advantages are V-trace with lambda: each TD error is weighted by the
  truncated importance weight ``min(rho_bar, pi/mu)`` and the traces are cut by
  ``lambda * min(1, pi/mu)``; on-policy (``pi == mu``) this is exactly GAE(lambda);
* the policy loss is PPO's clipped surrogate in the decoupled form (Hilton et al. 2021,
  "Batch size-invariance for policy optimization"): each sample is weighted by the
  importance weight of the *proximal* policy (the policy as it was when this batch
  arrived) to the behaviour policy, truncated at ``rho_bar`` as V-trace truncates it, and
  the ratio is clipped against the proximal policy. So a batch from a much older policy
  moves the policy by a bounded amount, while batches that keep coming from one old
  policy (a slow game) still make progress: clipping against the behaviour policy itself
  would freeze learning once the policy moved ``clip_range`` away from it;
* episodes of earlier batches may be trained again beside a new one (``replay``): sample
  reuse as in Generalized PPO (GePPO, Queeney et al., NeurIPS 2021), corrected exactly
  as above; they count in the advantages' centring and scale but not a second time in
  the observation statistics;
* entropy bonus, Adam, gradient-norm clipping, advantages normalised over the batch,
  several epochs of shuffled minibatches; a cut-short episode bootstraps from the value
  of its ``last_state``; observations are normalised with running statistics that are
  saved into the model, so the numpy :class:`~bgtrain.game.policy.Policy` sees the same inputs.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from bgtrain.errors import NonFiniteTrainingError, TrainingStopped
from bgtrain.game.policy import OBS_CLIP, OBS_EPS
from bgtrain.learn.settings import TrainerSettings
from bgtrain.store.episode import Episode
from bgtrain.store.models import LoadedModel, ModelMeta

ALGORITHM = "ppo-vtrace"


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


class PreparedBatch(NamedTuple):
    """A batch's samples as tensors, ``n`` samples each (new and replayed alike)."""

    obs: torch.Tensor  # [n, obs_dim] float32, normalised
    actions: torch.Tensor  # [n] int64
    start_logp: torch.Tensor  # [n] float32: log pi(a|s) of the policy at the batch's start
    behaviour_logp: torch.Tensor  # [n] float32: log mu(a|s) of the policy that played
    targets: torch.Tensor  # [n] float32: V-trace value targets
    advantages: torch.Tensor  # [n] float32: V-trace advantages (not normalised)


class TrainerState(NamedTuple):
    """Everything a batch changes (see :meth:`Trainer.snapshot`): deep copies."""

    net: dict[str, Any]
    optimizer: dict[str, Any]
    obs_rms: tuple[np.ndarray, np.ndarray, float]
    rng: dict[str, Any]


class RunningMeanStd:
    """Running mean and variance (parallel-merge form), in float64."""

    def __init__(self, obs_dim: int) -> None:
        self.mean = np.zeros(obs_dim)
        self.var = np.ones(obs_dim)
        self.count = 0.0

    def update(self, x: np.ndarray) -> None:
        batch_mean, batch_var, n = x.mean(axis=0), x.var(axis=0), x.shape[0]
        if n == 0:
            return
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.mean = self.mean + delta * n / total
        self.var = m2 / total
        self.count = total


def _mlp(sizes: Sequence[int], activation: str, out_gain: float) -> nn.Sequential:
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        linear = nn.Linear(a, b)
        last = i == len(sizes) - 2
        nn.init.orthogonal_(linear.weight, gain=out_gain if last else math.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(act())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int], activation: str):
        super().__init__()
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be tanh or relu, got {activation!r}")
        self.obs_dim, self.n_actions = obs_dim, n_actions
        self.hidden, self.activation = tuple(hidden), activation
        self.pi = _mlp([obs_dim, *hidden, n_actions], activation, out_gain=0.01)
        self.vf = _mlp([obs_dim, *hidden, 1], activation, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pi(obs), self.vf(obs).squeeze(-1)

    def export(self) -> dict[str, np.ndarray]:
        """Weights as format-1 arrays (``[in, out]``), for the numpy policy."""
        arrays = {}
        for prefix, net in (("pi", self.pi), ("vf", self.vf)):
            linears = [m for m in net if isinstance(m, nn.Linear)]
            for i, linear in enumerate(linears):
                arrays[f"{prefix}.w{i}"] = linear.weight.detach().cpu().numpy().T.copy()
                arrays[f"{prefix}.b{i}"] = linear.bias.detach().cpu().numpy().copy()
        return arrays

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        with torch.no_grad():
            for prefix, net in (("pi", self.pi), ("vf", self.vf)):
                linears = [m for m in net if isinstance(m, nn.Linear)]
                for i, linear in enumerate(linears):
                    linear.weight.copy_(torch.from_numpy(np.asarray(arrays[f"{prefix}.w{i}"]).T))
                    linear.bias.copy_(torch.from_numpy(np.asarray(arrays[f"{prefix}.b{i}"])))


def vtrace(
    rewards: np.ndarray,
    values: np.ndarray,
    bootstrap: float,
    log_rhos: np.ndarray,
    gamma: float,
    lam: float,
    rho_bar: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Value targets and advantages of one episode (V-trace with lambda).

    ``log_rhos`` = log pi(a|s) - log mu(a|s). With all ``log_rhos`` 0 this is GAE(lambda):
    advantages ``A_t = sum_k (gamma*lam)^k delta_{t+k}`` and targets ``A_t + V_t``.
    """
    rhos = np.exp(log_rhos)
    clipped = np.minimum(rho_bar, rhos)
    traces = lam * np.minimum(1.0, rhos)
    next_values = np.append(values[1:], bootstrap)
    deltas = clipped * (rewards + gamma * next_values - values)
    advantages = np.empty_like(deltas)
    acc = 0.0
    for t in range(len(deltas) - 1, -1, -1):
        acc = deltas[t] + gamma * traces[t] * acc
        advantages[t] = acc
    return advantages + values, advantages


class Trainer:
    """Holds the network, its optimiser and the observation statistics of one root."""

    def __init__(self, obs_dim: int, n_actions: int, settings: TrainerSettings | None = None):
        self.settings = settings = settings or TrainerSettings()
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        self._rng = np.random.default_rng(settings.seed)
        #: The state before the last train() call, for undo().
        self._before_train: TrainerState | None = None
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
    def from_model(cls, model: LoadedModel, settings: TrainerSettings | None = None) -> Trainer:
        """Continue training a published model (its layer sizes win over ``settings``)."""
        meta = model.meta
        settings = settings or TrainerSettings()
        # The network's shape is the model's: read from its arrays, whatever the meta says.
        hidden, i = [], 0
        while f"pi.w{i + 1}" in model.arrays:
            hidden.append(int(np.shape(model.arrays[f"pi.w{i}"])[1]))
            i += 1
        settings = dataclasses.replace(
            settings,
            hidden_sizes=tuple(hidden),
            activation=meta.activation or settings.activation,
        )
        trainer = cls(meta.obs_dim, meta.n_actions, settings)
        trainer.load_weights(model.arrays)
        return trainer

    # ------------------------------------------------------------------ state

    def load_weights(self, arrays: dict[str, np.ndarray]) -> None:
        """Take the weights and observation statistics of a model of the same shape (a
        published model continued, or the collapse guard's way back to a better version).
        The optimiser's moments stay."""
        self.net.load_arrays(arrays)
        self.obs_rms.mean = np.asarray(arrays["obs_mean"], dtype=np.float64)
        self.obs_rms.var = np.asarray(arrays["obs_var"], dtype=np.float64)
        self.obs_rms.count = float(arrays.get("obs_count", np.array(0.0)))

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = value

    def snapshot(self) -> TrainerState:
        """A copy of the weights, optimiser moments, observation statistics and shuffling
        RNG: :meth:`restore` of it undoes a batch exactly (a batch changes the weights
        once, even when its publish fails and it is trained again)."""
        return TrainerState(
            copy.deepcopy(self.net.state_dict()),
            copy.deepcopy(self.optimizer.state_dict()),
            (self.obs_rms.mean.copy(), self.obs_rms.var.copy(), self.obs_rms.count),
            copy.deepcopy(self._rng.bit_generator.state),
        )

    def restore(self, state: TrainerState) -> None:
        """Go back to a :meth:`snapshot` (its copies stay usable for another restore)."""
        self.net.load_state_dict(copy.deepcopy(state.net))
        self.optimizer.load_state_dict(copy.deepcopy(state.optimizer))
        mean, var, count = state.obs_rms
        self.obs_rms.mean, self.obs_rms.var, self.obs_rms.count = mean.copy(), var.copy(), count
        self._rng.bit_generator.state = copy.deepcopy(state.rng)

    def undo(self) -> None:
        """Go back to the state before the last :meth:`train` call: its model was not
        published (a batch changes the weights once, even when it is trained again)."""
        if self._before_train is not None:
            self.restore(self._before_train)

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
            arrays["obs_mean"] = self.obs_rms.mean.astype(np.float32)
            arrays["obs_var"] = self.obs_rms.var.astype(np.float32)
        arrays["obs_count"] = np.array(self.obs_rms.count)
        for name, values in arrays.items():
            if not np.isfinite(values).all():
                raise NonFiniteTrainingError(f"model array {name!r} is not finite")
        return arrays

    def meta(self, **fields) -> ModelMeta:
        """The model meta of the current network (version set by the model store)."""
        hyper = dataclasses.asdict(self.settings)
        hyper["hidden_sizes"] = list(hyper["hidden_sizes"])
        base = ModelMeta(
            version=0,
            obs_dim=self.obs_dim,
            n_actions=self.n_actions,
            layer_sizes=tuple(self.net.hidden),
            activation=self.net.activation,
            algorithm=ALGORITHM,
            hyperparameters=hyper,
        )
        return dataclasses.replace(base, **fields)

    def normalize(self, states: np.ndarray) -> torch.Tensor:
        mean = self.obs_rms.mean.astype(np.float32)
        inv_std = (1.0 / np.sqrt(self.obs_rms.var + OBS_EPS)).astype(np.float32)
        x = np.clip((states.astype(np.float32) - mean) * inv_std, -OBS_CLIP, OBS_CLIP)
        return torch.from_numpy(x)

    # ------------------------------------------------------------------ training

    def train(
        self,
        episodes: Sequence[Episode],
        should_stop: Callable[[], bool] | None = None,
        replay: Sequence[Episode] = (),
    ) -> TrainMetrics:
        """Several epochs of clipped, off-policy-corrected actor-critic on ``episodes``.

        All or nothing: if it raises, the trainer is back to its state before the call.
        Raises :class:`NonFiniteTrainingError` when a loss, gradient norm, target or
        statistic is not finite (no such step is applied), and :class:`TrainingStopped`
        when ``should_stop()`` turns true (checked between pieces and minibatches, so a
        stop waits for one minibatch, never for a whole batch).
        """
        self._before_train = self.snapshot()
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
        s = self.settings
        if s.normalize_obs:
            for ep in episodes:
                for lo in range(0, ep.length, s.max_piece_steps):
                    self.obs_rms.update(ep.states[lo : lo + s.max_piece_steps].astype(np.float64))
            if not (np.isfinite(self.obs_rms.var).all() and np.isfinite(self.obs_rms.mean).all()):
                raise NonFiniteTrainingError("observation statistics are not finite")
        obs, actions, start_logp, behaviour_logp, targets, advantages = self._prepare(
            [*episodes, *replay], should_stop
        )
        n = obs.shape[0]
        n_replayed = sum(ep.length for ep in replay)
        # Decoupled PPO (Hilton et al. 2021): the surrogate is weighted by the importance
        # weight of the proximal policy (the policy at the start of this batch) to the
        # behaviour policy, truncated at rho_bar as V-trace truncates it (IMPALA), and the
        # ratio is clipped against the proximal policy. On-policy the weight is 1: PPO.
        behaviour_ratio = (start_logp - behaviour_logp).exp()
        weights = behaviour_ratio.clamp(max=s.rho_bar)
        ratio_mean = float(behaviour_ratio.mean())
        # Advantages centred with the same weights (as GePPO centres them), scaled to unit
        # std; a single sample has no std and is used as it is (as Stable-Baselines3 does).
        adv = advantages
        if n > 1:
            centre = (weights * advantages).sum() / weights.sum().clamp(min=1e-8)
            adv = (advantages - centre) / (advantages.std() + 1e-8)
        totals = np.zeros(6)  # loss, pg, vf, entropy, kl, clipfrac
        n_updates = 0
        # Like Stable-Baselines3: stop the batch's epochs once a minibatch's KL to the
        # starting policy passes 1.5 x target_kl (that minibatch is not applied).
        stop_kl = None if s.target_kl is None else 1.5 * s.target_kl
        stopped_early = False
        for _ in range(s.n_epochs):
            order = torch.from_numpy(self._rng.permutation(n))
            for start in range(0, n, s.minibatch_size):
                if should_stop():
                    raise TrainingStopped("training stopped: the batch goes back to buffer/")
                idx = order[start : start + s.minibatch_size]
                logits, values = self.net(obs[idx])
                if not torch.isfinite(logits).all():
                    raise NonFiniteTrainingError("the policy's logits are not finite")
                log_probs = torch.log_softmax(logits, dim=-1)
                logp = log_probs.gather(1, actions[idx, None]).squeeze(1)
                log_ratio = logp - start_logp[idx]
                ratio = log_ratio.exp()
                with torch.no_grad():
                    kl = ((ratio - 1) - log_ratio).mean().item()
                    clipped = ((ratio - 1).abs() > s.clip_range).float().mean().item()
                if stop_kl is not None and kl > stop_kl:
                    stopped_early = True
                    break
                pg1 = -adv[idx] * ratio
                pg2 = -adv[idx] * ratio.clamp(1 - s.clip_range, 1 + s.clip_range)
                policy_loss = (weights[idx] * torch.max(pg1, pg2)).mean()
                value_loss = (values - targets[idx]).pow(2).mean()
                entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
                loss = policy_loss + s.vf_coef * value_loss - s.ent_coef * entropy
                if not torch.isfinite(loss):
                    raise NonFiniteTrainingError(f"the loss is {loss.item()}")
                self.optimizer.zero_grad()
                loss.backward()
                grad_norm = nn.utils.clip_grad_norm_(
                    self.net.parameters(), s.max_grad_norm, foreach=True
                )
                if not torch.isfinite(grad_norm):
                    raise NonFiniteTrainingError(f"the gradient norm is {grad_norm.item()}")
                self.optimizer.step()
                totals += [
                    loss.item(),
                    policy_loss.item(),
                    value_loss.item(),
                    entropy.item(),
                    kl,
                    clipped,
                ]
                n_updates += 1
            if stopped_early:
                break
        with torch.no_grad():
            _, values = self.net(obs)
        # Population variances, as SB3's explained_variance (np.var) takes them.
        var_y = targets.var(correction=0).item()
        explained = (
            float("nan") if var_y == 0 else 1 - (targets - values).var(correction=0).item() / var_y
        )
        means = totals / max(n_updates, 1)
        return TrainMetrics(
            loss=float(means[0]),
            policy_loss=float(means[1]),
            value_loss=float(means[2]),
            entropy=float(means[3]),
            approx_kl=float(means[4]),
            clip_fraction=float(means[5]),
            explained_variance=explained,
            ratio_mean=ratio_mean,
            n_samples=n - n_replayed,
            n_episodes=len(episodes),
            n_replayed_samples=n_replayed,
            n_updates=n_updates,
            train_time_s=time.perf_counter() - started,
        )

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
        s = self.settings
        pieces = []
        for ep in episodes:
            for lo in range(0, ep.length, s.max_piece_steps):
                if should_stop is not None and should_stop():
                    raise TrainingStopped("training stopped: the batch goes back to buffer/")
                pieces.append(self._prepare_piece(ep, lo, min(lo + s.max_piece_steps, ep.length)))
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
        if hi < ep.length:  # cut here: bootstrap from the next state's value
            bootstrap = float(self.net.vf(self.normalize(ep.states[hi : hi + 1]))[0, 0])
        elif ep.terminated:
            bootstrap = 0.0
        elif ep.last_state is not None:
            bootstrap = float(self.net.vf(self.normalize(ep.last_state[None]))[0, 0])
        else:  # cut short with no last state: the last value is the best guess we have
            bootstrap = float(values[-1])
        targets, advantages = vtrace(
            ep.rewards[lo:hi].astype(np.float64),
            values,
            bootstrap,
            current_logp.astype(np.float64) - mu,
            s.gamma,
            s.gae_lambda,
            s.rho_bar,
        )
        return obs.numpy(), actions.numpy(), current_logp, mu, targets, advantages
