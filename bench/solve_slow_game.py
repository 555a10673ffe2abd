"""2. Slow game: benchmark 1 with every game step costing 2 ms of CPU (a busy-wait)."""

from __future__ import annotations

from .harness import Row
from .solving import Race, run_race

NAME = "slow_game"
TITLE = "2. Slow game: CartPole-v1 at 2 ms of CPU per step"
TARGET = (
    "bgtrain / SB3 PPO <= 0.6 in wall-clock seconds "
    "(and <= 1.0 in game steps) to a greedy mean >= 475 over 10 games "
    "(evaluation games are slow too; evaluated every 5,000 game steps on both sides)"
)
ENV = "bench.busy_games:slow_cartpole"


RACE = Race(ENV, "CartPole-v1", (1, 2, 3, 4, 5), 5_000, 600.0, target=0.6)


def run(quick: bool) -> list[Row]:
    return run_race(RACE, quick)
