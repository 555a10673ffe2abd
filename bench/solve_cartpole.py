"""1. Time to solve CartPole-v1: ``bgtrain run`` defaults vs Stable-Baselines3 PPO (zoo)."""

from __future__ import annotations

from .harness import Row
from .solving import Race, race

NAME = "cartpole"
TITLE = "1. Time to solve CartPole-v1"
TARGET = (
    "bgtrain / SB3 PPO <= 1.0 in wall-clock seconds to a greedy mean >= 475 over 10 games "
    "(start-up and evaluations counted; evaluated every 5,000 game steps on both sides)"
)


def run(quick: bool) -> list[Row]:
    if quick:
        return race(Race("CartPole-v1", "CartPole-v1", (1,), 1_000, 8.0), 1.0, "<= 1.0")
    return race(Race("CartPole-v1", "CartPole-v1", (1, 2, 3, 4, 5), 5_000, 300.0), 1.0, "<= 1.0")
