"""1. Time to solve CartPole-v1: ``bgtrain run`` defaults vs Stable-Baselines3 PPO (zoo)."""

from __future__ import annotations

from .harness import Row
from .solving import Race, run_race

NAME = "cartpole"
TITLE = "1. Time to solve CartPole-v1"
TARGET = (
    "bgtrain / SB3 PPO <= 1.0 in wall-clock seconds to a greedy mean >= 475 over 10 games "
    "(start-up and evaluations counted; evaluated every 5,000 game steps on both sides)"
)

NOTES = (
    "Missed by 0.4% (a tie within the seeds' spread: bgtrain 8.7-21.3 s, SB3 7.4-9.9 s). "
    "Profiled from one run's metrics.jsonl (seed 1, 10.0 s): the first model is published "
    "2.9 s after launch (the learner process starts and imports torch); from then the "
    "learner is busy all the time (7.0 s), 4.6 s of it training and 2.4 s claiming, "
    "loading and publishing 112 versions; games play on a model 1.7 versions old on "
    "average. bgtrain needs twice SB3's game steps (30,000 vs 15,000) and plays them about "
    "twice as fast. Next step: cut the learner's per-batch cost outside training (a third "
    "of its time) and its start-up."
)


RACE = Race("CartPole-v1", "CartPole-v1", (1, 2, 3, 4, 5), 5_000, 300.0, target=1.0)


def run(quick: bool) -> list[Row]:
    return run_race(RACE, quick)
