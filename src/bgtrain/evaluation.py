"""Play games with a published model and measure it (numpy only, no recording)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .games import describe, flat, make_env, outcome_of
from .policy import Policy


class EvalResult(NamedTuple):
    version: int
    greedy: bool
    returns: list[float]
    outcomes: list[str]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    @property
    def min(self) -> float:
        return float(np.min(self.returns))

    @property
    def max(self) -> float:
        return float(np.max(self.returns))

    @property
    def win_rate(self) -> float:
        return self.outcomes.count("Victory") / len(self.outcomes)

    def as_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "episodes": len(self.returns),
            "greedy": self.greedy,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "win_rate": self.win_rate,
            "returns": self.returns,
        }


def evaluate(
    policy: Policy, env_id: str, episodes: int = 10, greedy: bool = True, seed: int | None = None
) -> EvalResult:
    """Play ``episodes`` whole games with ``policy`` (argmax actions when ``greedy``)."""
    env = make_env(env_id)
    info = describe(env, env_id)
    returns, outcomes = [], []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=None if seed is None else seed + i)
            total, step_info = 0.0, {}
            while True:
                state = flat(obs)
                action = policy.act_greedy(state) if greedy else policy.act(state)[0]
                obs, reward, terminated, truncated, step_info = env.step(action)
                total += float(reward)
                if terminated or truncated:
                    break
            returns.append(total)
            outcomes.append(outcome_of(total, step_info, info.reward_threshold))
    finally:
        env.close()
    return EvalResult(policy.version, greedy, returns, outcomes)
