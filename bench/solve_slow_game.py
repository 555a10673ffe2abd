"""2. Slow game: benchmark 1 with every game step costing 2 ms of CPU (a busy-wait)."""

from __future__ import annotations

from .harness import Row
from .solving import Race, run_race

NAME = "slow_game"
TITLE = "2. Slow game: CartPole-v1 at 2 ms of CPU per step"
TARGET = (
    "bgtrain / SB3 PPO <= 0.6 in wall-clock seconds to a greedy mean >= 475 over 10 games "
    "(evaluation games are slow too; evaluated every 5,000 game steps on both sides)"
)
ENV = "bench.busy_games:slow_cartpole"

NOTES = (
    "Missed. Profiled from one run's metrics.jsonl (seed 1, 108.7 s): the one game process "
    "is the bottleneck (50,000 steps x 2 ms = 100 s of its CPU); the learner is busy only "
    "13.8 s (13%), and the evaluations' 20,000 slow steps (40 s of CPU) run beside the "
    "games on the second core. bgtrain needs three times SB3's game steps (45,000 vs "
    "15,000): with games this slow the learner trains on each game as it lands (a median "
    "batch of 139 steps), small noisy batches. Next steps: play on every core when the "
    "learner is mostly idle (in a 3-seed trial with --max-waiting 2, --actors 2 took the "
    "median from 90 s to 60 s), and let batches grow to --batch-steps while the learner "
    "has nothing else to do."
)


RACE = Race(ENV, "CartPole-v1", (1, 2, 3, 4, 5), 5_000, 600.0, target=0.6)


def run(quick: bool) -> list[Row]:
    return run_race(RACE, quick)
