"""4. Time to solve Acrobot-v1: ``bgtrain run`` defaults vs Stable-Baselines3 PPO (zoo)."""

from __future__ import annotations

from .harness import Row
from .solving import Race, run_race

NAME = "acrobot"
TITLE = "4. Time to solve Acrobot-v1"
#: About one SB3 rollout (16 games x 256 steps), so SB3 rarely evaluates one policy twice;
#: an Acrobot game lasts up to 500 steps, an evaluation up to 5,000.
EVAL_EVERY = 5_000
#: Most bgtrain / SB3 wall time to solve that meets the target (issue 12's table).
TARGET_RATIO = 0.8
TARGET = (
    f"bgtrain / SB3 PPO <= {TARGET_RATIO} in wall-clock seconds "
    "(and <= 1.0 in game steps) to a greedy mean >= -100 "
    "over 10 games (Gymnasium's reward threshold; start-up and evaluations counted; "
    f"evaluated every {EVAL_EVERY:,} game steps on both sides; cap 5 minutes a run)"
)

RACE = Race("Acrobot-v1", "Acrobot-v1", (1, 2, 3, 4, 5), EVAL_EVERY, 300.0, TARGET_RATIO)


def run(quick: bool) -> list[Row]:
    return run_race(RACE, quick)
