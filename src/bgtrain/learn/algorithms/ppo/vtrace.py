"""V-trace value targets and advantages of one episode (numpy, float64)."""

from __future__ import annotations

import numpy as np


def vtrace(
    rewards: np.ndarray,
    values: np.ndarray,
    bootstrap: float,
    log_rhos: np.ndarray,
    gamma: float,
    lam: float,
    rho_bar: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Value targets and advantages of one episode (V-trace with lambda), each ``[T]``.

    ``log_rhos`` = log pi(a|s) - log mu(a|s). With all ``log_rhos`` 0 this is GAE(lambda):
    advantages ``A_t = sum_k (gamma*lam)^k delta_{t+k}`` and targets ``A_t + V_t``.
    ``bootstrap`` is the value after the last step (0 once the game ended).
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
