"""The torch learning step: actor-critic from whole episodes, off-policy corrected.

Episodes may have been played by a policy a few versions old. Each recorded step carries
the behaviour log-probability ``logp`` (seed files without it are taken as on-policy):

* value targets and advantages are V-trace with lambda: each TD error is weighted by the
  truncated importance weight ``min(rho_bar, pi/mu)`` and the traces are cut by
  ``lambda * min(1, pi/mu)``; on-policy (``pi == mu``) this is exactly GAE(lambda);
* the policy loss is PPO's clipped surrogate ("decoupled" PPO, Hilton et al. 2021): the
  behaviour correction is the importance weight inside the advantages, and the clipped
  ratio is taken against the policy as it was when this batch arrived. So a batch from a
  much older policy moves the policy by a bounded amount, while batches that keep coming
  from one old policy (a slow game) still make progress: clipping against the behaviour
  policy itself would freeze learning once the policy moved ``clip_range`` away from it;
* entropy bonus, Adam, gradient-norm clipping, advantages normalised over the batch,
  several epochs of shuffled minibatches; a cut-short episode bootstraps from the value
  of its ``last_state``; observations are normalised with running statistics that are
  saved into the model, so the numpy :class:`~bgtrain.policy.Policy` sees the same inputs.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .config import TrainerSettings
from .episode import Episode
from .models import LoadedModel, ModelMeta
from .policy import OBS_CLIP, OBS_EPS

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
    n_samples: int
    n_episodes: int
    n_updates: int
    train_time_s: float


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
        self.net = ActorCritic(obs_dim, n_actions, settings.hidden_sizes, settings.activation)
        self.optimizer = torch.optim.Adam(
            self.net.parameters(), lr=settings.learning_rate, eps=1e-5
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
        trainer.net.load_arrays(model.arrays)
        trainer.obs_rms.mean = np.asarray(model.arrays["obs_mean"], dtype=np.float64)
        trainer.obs_rms.var = np.asarray(model.arrays["obs_var"], dtype=np.float64)
        trainer.obs_rms.count = float(model.arrays.get("obs_count", np.array(0.0)))
        return trainer

    # ------------------------------------------------------------------ export

    def export(self) -> dict[str, np.ndarray]:
        arrays = self.net.export()
        arrays["obs_mean"] = self.obs_rms.mean.astype(np.float32)
        arrays["obs_var"] = self.obs_rms.var.astype(np.float32)
        arrays["obs_count"] = np.array(self.obs_rms.count)
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

    def train(self, episodes: Sequence[Episode]) -> TrainMetrics:
        """Several epochs of clipped, off-policy-corrected actor-critic on ``episodes``."""
        started = time.perf_counter()
        s = self.settings
        if s.normalize_obs:
            self.obs_rms.update(np.concatenate([ep.states for ep in episodes]).astype(np.float64))
        obs, actions, start_logp, targets, advantages, ratio_mean = self._prepare(episodes)
        n = obs.shape[0]
        adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        totals = np.zeros(6)  # loss, pg, vf, entropy, kl, clipfrac
        n_updates = 0
        # Like Stable-Baselines3: stop the batch's epochs once a minibatch's KL to the
        # starting policy passes 1.5 x target_kl (that minibatch is not applied).
        stop_kl = None if s.target_kl is None else 1.5 * s.target_kl
        stopped_early = False
        for _ in range(s.n_epochs):
            order = torch.from_numpy(self._rng.permutation(n))
            for start in range(0, n, s.minibatch_size):
                idx = order[start : start + s.minibatch_size]
                logits, values = self.net(obs[idx])
                dist = torch.distributions.Categorical(logits=logits)
                logp = dist.log_prob(actions[idx])
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
                policy_loss = torch.max(pg1, pg2).mean()
                value_loss = (values - targets[idx]).pow(2).mean()
                entropy = dist.entropy().mean()
                loss = policy_loss + s.vf_coef * value_loss - s.ent_coef * entropy
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), s.max_grad_norm)
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
        var_y = targets.var().item()
        explained = float("nan") if var_y == 0 else 1 - (targets - values).var().item() / var_y
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
            n_samples=n,
            n_episodes=len(episodes),
            n_updates=n_updates,
            train_time_s=time.perf_counter() - started,
        )

    @torch.no_grad()
    def _prepare(self, episodes: Sequence[Episode]):
        """Tensors of the batch: observations, actions, log pi(a|s) of the current net, and
        V-trace targets and advantages (importance-weighted against the behaviour logp)."""
        s = self.settings
        all_obs = self.normalize(np.concatenate([ep.states for ep in episodes]))
        all_actions = torch.from_numpy(np.concatenate([ep.actions for ep in episodes]))
        logits, values = self.net(all_obs)
        current_logp = torch.distributions.Categorical(logits=logits).log_prob(all_actions).numpy()
        values = values.numpy().astype(np.float64)
        behaviour = np.empty_like(current_logp)
        targets = np.empty(len(current_logp))
        advantages = np.empty(len(current_logp))
        start = 0
        for ep in episodes:
            end = start + ep.length
            # Seed files have no logp: on-policy, ratio 1.
            mu = ep.logp if ep.logp is not None else current_logp[start:end]
            behaviour[start:end] = mu
            if ep.terminated:
                bootstrap = 0.0
            elif ep.last_state is not None:
                bootstrap = float(self.net.vf(self.normalize(ep.last_state[None]))[0, 0])
            else:  # cut short with no last state: the last value is the best guess we have
                bootstrap = float(values[end - 1])
            targets[start:end], advantages[start:end] = vtrace(
                ep.rewards.astype(np.float64),
                values[start:end],
                bootstrap,
                current_logp[start:end].astype(np.float64) - mu,
                s.gamma,
                s.gae_lambda,
                s.rho_bar,
            )
            start = end
        ratio_mean = float(np.exp(current_logp - behaviour).mean())
        return (
            all_obs,
            all_actions,
            torch.from_numpy(current_logp.astype(np.float32)),
            torch.from_numpy(targets.astype(np.float32)),
            torch.from_numpy(advantages.astype(np.float32)),
            ratio_mean,
        )
