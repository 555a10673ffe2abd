"""1. Time to solve CartPole-v1: ``bgtrain run`` defaults vs Stable-Baselines3 PPO (zoo)."""

from __future__ import annotations

from .harness import Row
from .solving import Race, run_race

NAME = "cartpole"
TITLE = "1. Time to solve CartPole-v1"
TARGET = (
    "bgtrain / SB3 PPO <= 0.8 in wall-clock seconds "
    "(and <= 1.0 in game steps) to a greedy mean >= 475 over 10 games "
    "(start-up and evaluations counted; evaluated every 5,000 game steps on both sides); "
    "<= 5% of bgtrain's games set aside as stale (never learned from)"
)


RACE = Race("CartPole-v1", "CartPole-v1", (1, 2, 3, 4, 5), 5_000, 300.0, target=0.8, stale_row=True)


def run(quick: bool) -> list[Row]:
    return run_race(RACE, quick)
