#!/usr/bin/env python
"""Compare ``bgtrain run`` settings: time and game steps to solve, several seeds each.

    python tools/compare_settings.py -- "" "--batch-steps none --max-waiting 20"
    python tools/compare_settings.py --env LunarLander-v3 --target 200 --eval-every 20000 \\
        --seeds 1 2 3 --budget 600 -- "" "--max-waiting 4"

Each quoted argument after ``--`` is one set of extra flags for ``bgtrain run`` ("" = the
defaults). Every run is a fresh process on a fresh root, evaluated greedily over 10 games every
``--eval-every`` game steps; seconds count from launch to exit (start-up included), and
steps are the game steps played when the first evaluation reached ``--target``. A run that
does not solve within ``--budget`` seconds counts as the budget. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the benchmarks' runner: python tools/compare_settings.py

from bench.solving import Attempt, time_bgtrain_run  # noqa: E402


def attempt(a: argparse.Namespace, seed: int, flags: list[str]) -> Attempt:
    """One ``bgtrain run``; a run that fails stops the comparison with its output."""
    try:
        return time_bgtrain_run(a.env, seed, a.eval_every, a.budget, a.target, flags)
    except RuntimeError as exc:
        sys.exit(f"bgtrain run {' '.join(flags)} (seed {seed}) failed:\n{exc}")


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("settings", nargs="+", help='extra flags for bgtrain run, quoted ("": none)')
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--target", type=float, default=475.0, help="greedy mean return to reach")
    p.add_argument("--eval-every", type=int, default=5000, help="game steps between evals")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--budget", type=float, default=120.0, help="seconds per run")
    a = p.parse_args()
    print(f"{a.env}, greedy mean >= {a.target:g}, evaluated every {a.eval_every:,} steps; ")
    print(f"seeds {', '.join(map(str, a.seeds))}; budget {a.budget:g} s a run\n")
    print("| extra flags | solved | seconds: median (each seed) | game steps: median |")
    print("| --- | --- | --- | --- |")
    for text in a.settings:
        runs = [attempt(a, seed, shlex.split(text)) for seed in a.seeds]
        seconds = ", ".join(f"{r.seconds:.1f}" for r in runs)
        print(
            f"| `{text or '(defaults)'}` | {sum(r.solved for r in runs)}/{len(runs)} | "
            f"{statistics.median(r.seconds for r in runs):.1f} ({seconds}) | "
            f"{statistics.median(r.steps for r in runs):,.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
