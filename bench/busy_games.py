"""Games for the benchmarks: CartPole whose every step costs 2 ms of CPU (benchmark 2).

A busy-wait, not a sleep: a real game (a simulator, StarCraft II) spends that time on the
CPU the learner shares, which is the case training in the background is for.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym

STEP_COST_S = 0.002


class BusyStep(gym.Wrapper):
    """Each ``step()`` spins the CPU for ``seconds`` before the game's own step."""

    def __init__(self, env: gym.Env, seconds: float = STEP_COST_S) -> None:
        super().__init__(env)
        self.seconds = seconds

    def step(self, action: Any) -> Any:
        deadline = time.perf_counter() + self.seconds
        while time.perf_counter() < deadline:
            pass
        return self.env.step(action)


def slow_cartpole() -> gym.Env:
    """CartPole-v1 at 2 ms of CPU per step (``--env bench.busy_games:slow_cartpole``)."""
    return BusyStep(gym.make("CartPole-v1"))
