"""3. LunarLander-v3 time to 200: ``bgtrain run`` defaults vs Stable-Baselines3 PPO (zoo)."""

from __future__ import annotations

from .harness import Row
from .solving import Race, race

NAME = "lunarlander"
TITLE = "3. LunarLander-v3 time to 200"
#: About one SB3 rollout (16 games x 1,024 steps): SB3 never evaluates one policy twice.
EVAL_EVERY = 20_000
TARGET = (
    "bgtrain / SB3 PPO <= 1.0 in wall-clock seconds to a greedy mean >= 200 over 10 games "
    f"(evaluated every {EVAL_EVERY:,} game steps on both sides; cap 20 minutes a run)"
)


def run(quick: bool) -> list[Row]:
    if quick:
        return race(Race("LunarLander-v3", "LunarLander-v3", (1,), 2_000, 8.0), 1.0, "<= 1.0")
    return race(Race("LunarLander-v3", "LunarLander-v3", (1, 2, 3), EVAL_EVERY, 1200.0), 1.0,
                "<= 1.0")  # fmt: skip
