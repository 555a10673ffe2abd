"""5. Stability: ``bgtrain run --no-until-solved`` on CartPole-v1 for 10 minutes, 3 seeds,
a greedy evaluation (10 games) every 20,000 game steps. Once an evaluation has reached
475, do the later ones stay there? Also counted from each run's metrics.jsonl: the
collapse guard's restores, and the games set aside as stale (played, never learned from).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bgtrain.store.events import EvalEvent, GameEvent, GuardEvent, StaleEvent

from .harness import Row
from .solving import Attempt, BgtrainRun, run_bgtrain, stale_row

NAME = "stability"
TITLE = "5. Stability: CartPole-v1 for 10 minutes"
ENV = "CartPole-v1"
SOLVED = 475.0
#: Least share (%) of the evaluations after the first >= 475 that are >= 475 too.
HELD_TARGET_PCT = 95.0
#: Least evaluation mean after the first >= 475.
LOWEST_TARGET = 400.0
TARGET = (
    f"in every run, after the first greedy evaluation >= {SOLVED:g}: >= {HELD_TARGET_PCT:g}% "
    f"of the evaluations >= {SOLVED:g}, none below {LOWEST_TARGET:g}; <= 5% of the games "
    "set aside as stale (never learned from). `bgtrain run --no-until-solved --minutes 10 "
    "--eval-every-steps 20000`, seeds 1-3"
)


@dataclass(frozen=True)
class Plan:
    seeds: tuple[int, ...]
    seconds: float
    eval_every: int


FULL = Plan((1, 2, 3), 600.0, 20_000)
QUICK = Plan((1,), 20.0, 2_000)


@dataclass(frozen=True)
class Stability:
    """One run's figures, from its events."""

    #: Evaluation means in order, and the index of the first >= SOLVED (None: never).
    means: list[float]
    first: int | None
    guard_restores: int
    games: int
    stale: int
    steps: int
    seconds: float

    @classmethod
    def of(cls, run: BgtrainRun) -> Stability:
        means = [float(e.mean) for e in run.of(EvalEvent)]
        first = next((i for i, mean in enumerate(means) if mean >= SOLVED), None)
        games = run.of(GameEvent)
        return cls(
            means,
            first,
            len(run.of(GuardEvent)),
            len(games),
            len(run.of(StaleEvent)),
            sum(int(e.length) for e in games),
            run.seconds,
        )

    @property
    def after(self) -> list[float]:
        """The evaluation means after the first one >= SOLVED."""
        return [] if self.first is None else self.means[self.first + 1 :]

    @property
    def held_pct(self) -> float:
        """Share of the evaluations after the first >= SOLVED that are >= SOLVED too; 0
        when none reached it or none came after (nothing shows that it held)."""
        after = self.after
        return 100.0 * sum(m >= SOLVED for m in after) / len(after) if after else 0.0

    @property
    def lowest(self) -> float:
        """The lowest evaluation mean from the first >= SOLVED on (of every evaluation
        when none reached it: the run never held anything)."""
        held = self.means if self.first is None else self.means[self.first :]
        return min(held, default=0.0)


def measure(plan: Plan, seed: int) -> Stability:
    run = run_bgtrain(ENV, seed, plan.eval_every, plan.seconds, ["--no-until-solved"])
    found = Stability.of(run)
    reached = "never" if found.first is None else f"at evaluation {found.first + 1}"
    print(
        f"[bench]   {ENV} seed {seed}: {len(found.means)} evaluations, {SOLVED:g} reached "
        f"{reached}, {found.held_pct:.0f}% held after it, lowest {found.lowest:.1f}; "
        f"guard restores {found.guard_restores}, stale {found.stale} of {found.games} games",
        flush=True,
    )
    return found


def rows_for(runs: list[Stability]) -> list[Row]:
    """The table's rows from the runs' figures (every seed must meet a target)."""
    reached = sum(r.first is not None for r in runs)
    later = sum(len(r.after) for r in runs)
    of = f"{reached}/{len(runs)} runs reached {SOLVED:g}; {later} evaluations after it"
    everyone = reached == len(runs)
    held = [r.held_pct for r in runs]
    lowest = [r.lowest for r in runs]
    restores = [float(r.guard_restores) for r in runs]
    attempts = [Attempt(r.first is not None, r.seconds, r.steps, r.games, r.stale) for r in runs]
    return [
        _row(
            f"evaluations >= {SOLVED:g} after the first that reached it ({of})",
            "%",
            held,
            f">= {HELD_TARGET_PCT:g}% in every run",
            everyone and min(held) >= HELD_TARGET_PCT,
        ),
        _row(
            f"lowest evaluation mean from the first >= {SOLVED:g} on",
            "return",
            lowest,
            f">= {LOWEST_TARGET:g} in every run",
            everyone and min(lowest) >= LOWEST_TARGET,
        ),
        _row(
            f"collapse-guard restores (all runs: {sum(r.guard_restores for r in runs)})",
            "restores",
            restores,
            None,
            None,
        ),
        stale_row(attempts),
    ]


def _row(label: str, unit: str, values: list[float], target: str | None, met: bool | None) -> Row:
    return Row(
        label,
        unit,
        statistics.median(values),
        min(values),
        max(values),
        target=target,
        met=met,
        values=values,
    )


def run(quick: bool) -> list[Row]:
    plan = QUICK if quick else FULL
    return rows_for([measure(plan, seed) for seed in plan.seeds])
