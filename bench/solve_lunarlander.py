"""3. LunarLander-v3 time to 200: ``bgtrain run`` defaults vs Stable-Baselines3 PPO (zoo)."""

from __future__ import annotations

from .harness import Row
from .solving import Race, run_race

NAME = "lunarlander"
TITLE = "3. LunarLander-v3 time to 200"
#: About one SB3 rollout (16 games x 1,024 steps): SB3 never evaluates one policy twice.
EVAL_EVERY = 20_000
TARGET = (
    "bgtrain / SB3 PPO <= 0.8 in wall-clock seconds "
    "(and <= 1.0 in game steps) to a greedy mean >= 200 over 10 games "
    f"(evaluated every {EVAL_EVERY:,} game steps on both sides; cap 20 minutes a run)"
)


RACE = Race("LunarLander-v3", "LunarLander-v3", (1, 2, 3), EVAL_EVERY, 1200.0, target=0.8)


def run(quick: bool) -> list[Row]:
    return run_race(RACE, quick)
