"""The torch actor-critic and the running observation statistics saved beside it."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from bgtrain.store import model_layout as layout

#: The torch module of each of the layout's activation names (the numpy policy has its own).
TORCH_ACTIVATIONS: dict[str, type[nn.Module]] = {layout.TANH: nn.Tanh, layout.RELU: nn.ReLU}


class RunningMeanStd:
    """Running mean and variance (parallel-merge form), in float64."""

    def __init__(self, obs_dim: int) -> None:
        self.mean = np.zeros(obs_dim)
        self.var = np.ones(obs_dim)
        self.count = 0.0

    def update(self, x: np.ndarray) -> None:
        """Merge the states ``x`` (``[n, obs_dim]``) into the statistics."""
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
    act = TORCH_ACTIVATIONS[activation]
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


def _linears(net: nn.Sequential) -> list[nn.Linear]:
    return [m for m in net if isinstance(m, nn.Linear)]


class ActorCritic(nn.Module):
    """Separate policy (``pi``: logits) and value (``vf``: one value) MLPs."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int], activation: str):
        super().__init__()
        if activation not in TORCH_ACTIVATIONS:
            known = " or ".join(layout.ACTIVATIONS)
            raise ValueError(f"activation must be {known}, got {activation!r}")
        self.obs_dim, self.n_actions = obs_dim, n_actions
        self.hidden, self.activation = tuple(hidden), activation
        self.pi = _mlp([obs_dim, *hidden, n_actions], activation, out_gain=0.01)
        self.vf = _mlp([obs_dim, *hidden, 1], activation, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``[B, n_actions]`` and values ``[B]`` of normalised states ``[B, obs_dim]``."""
        return self.pi(obs), self.vf(obs).squeeze(-1)

    def _networks(self) -> tuple[tuple[str, nn.Sequential, int], ...]:
        return ((layout.POLICY, self.pi, self.n_actions), (layout.VALUE, self.vf, 1))

    def export(self) -> dict[str, np.ndarray]:
        """Weights as format-1 arrays (float32, weights ``[in, out]``), for the numpy policy."""
        arrays = {}
        for prefix, net, _ in self._networks():
            found = [
                (
                    linear.weight.detach().cpu().numpy().T.copy(),
                    linear.bias.detach().cpu().numpy().copy(),
                )
                for linear in _linears(net)
            ]
            arrays.update(layout.network_arrays(prefix, found))
        return arrays

    def load_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Take the weights of format-1 arrays of this network's shape; else
        :class:`~bgtrain.errors.InvalidModelError` naming the array that does not fit."""
        loaded = []
        for prefix, net, n_out in self._networks():
            found = layout.layers(arrays, prefix)
            layout.check_layers(found, prefix, self.obs_dim, n_out, hidden=self.hidden)
            loaded.append((_linears(net), found))
        with torch.no_grad():
            for linears, found in loaded:
                for linear, (w, b) in zip(linears, found, strict=True):
                    linear.weight.copy_(torch.from_numpy(w.T))
                    linear.bias.copy_(torch.from_numpy(b))
