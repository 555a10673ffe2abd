"""Play games with a published model and measure it (numpy only, no recording)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from bgtrain.game.gymnasium_games import (
    check_model_fits,
    checked_observation,
    checked_reward,
    info_of_env,
    make_env,
    outcome_of,
)
from bgtrain.game.policy import Policy
from bgtrain.store.events import EvalEvent


class EvalResult(NamedTuple):
    version: int
    greedy: bool
    returns: list[float]
    outcomes: list[str]
    #: Games stopped at the step cap (``step_limit``) before they ended.
    cut_short: int = 0
    step_limit: int | None = None

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

    def to_event(self, steps: int) -> EvalEvent:
        """Its line of ``metrics.jsonl``, for a run that had played ``steps`` game steps."""
        return EvalEvent.from_json({**self.as_dict(), "steps": steps})

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
            "cut_short": self.cut_short,
            "step_limit": self.step_limit,
        }


def evaluate(
    policy: Policy,
    env_id: str,
    episodes: int = 10,
    greedy: bool = True,
    seed: int | None = None,
    *,
    max_steps: int | None = None,
    root: str | Path | None = None,
) -> EvalResult:
    """Play ``episodes`` games with ``policy`` (argmax actions when ``greedy``).

    A game still going after ``max_steps`` steps (default: the game's own limit, else
    ``gymnasium_games.DEFAULT_STEP_LIMIT``) is stopped and counted as cut short, so evaluating a
    game that never ends returns. Raises :class:`ModelMismatchError` (naming ``root``)
    before any game if the model does not fit the game, and :class:`GameStepError` if
    the game returns what no model can act on (NaN, wrong size).
    """
    env = make_env(env_id)
    info = info_of_env(env, env_id)
    check_model_fits(policy.meta, info, root)
    limit = info.step_limit(max_steps)
    returns, outcomes, cut_short = [], [], 0
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=None if seed is None else seed + i)
            state = checked_observation(obs, info, 0)
            total, step_info, ended, step = 0.0, {}, False, 0
            while step < limit:
                action = policy.act_greedy(state) if greedy else policy.act(state)[0]
                obs, reward, terminated, truncated, step_info = env.step(info.action_start + action)
                step += 1
                total += checked_reward(reward, info, step)
                state = checked_observation(obs, info, step)
                if terminated or truncated:
                    ended = True
                    break
            cut_short += not ended
            returns.append(total)
            outcomes.append(outcome_of(total, step_info, info.reward_threshold))
    finally:
        env.close()
    return EvalResult(policy.version, greedy, returns, outcomes, cut_short, limit)
