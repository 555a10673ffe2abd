#!/usr/bin/env python
"""Show that ``bgtrain run`` really learns: solve a game from scratch, several seeds.

    python tools/prove_learning.py                                  # CartPole-v1, 5 seeds, 60 s
    python tools/prove_learning.py --env LunarLander-v3 --target 200 --budget 900 \\
        --eval-episodes 20 --seeds 1

Each seed runs ``bgtrain run`` with its defaults on a fresh root (wall clock counted from
the command's launch, start-up included). A seed passes when the run's own greedy
evaluation of a published model reaches ``--target`` over ``--eval-episodes`` games
within ``--budget`` seconds. The learning curves (``metrics.jsonl``) are kept under
``--keep`` and the table is written to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bgtrain.store.events import EvalEvent, GameEvent, of_kind, read_events

REPO = Path(__file__).resolve().parent.parent


def run_seed(
    env: str, seed: int, budget: float, target: float, episodes: int, keep: Path, extra: list[str]
):
    root = Path(tempfile.mkdtemp(prefix=f"bgtrain-prove-{seed}-")) / "local_training"
    command = [
        sys.executable,
        "-m",
        "bgtrain",
        "run",
        "--env",
        env,
        "--root",
        str(root),
        "--seed",
        str(seed),
        "--minutes",
        f"{budget / 60:.4f}",
        "--eval-episodes",
        str(episodes),
        *extra,
    ]
    started = time.time()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    wall = time.time() - started
    metrics = root / "logs" / "metrics.jsonl"
    events = read_events(root)
    evals = of_kind(events, EvalEvent)
    solved = next((e for e in evals if e.mean >= target), None)
    games = len(of_kind(events, GameEvent))
    keep.mkdir(parents=True, exist_ok=True)
    if metrics.exists():
        shutil.copy(metrics, keep / f"{env}-seed{seed}.metrics.jsonl")
    shutil.rmtree(root.parent, ignore_errors=True)
    solved_at = None if solved is None or solved.t is None else solved.t - started
    return {
        "seed": seed,
        "exit": proc.returncode,
        "wall_s": wall,
        "solved_at_s": solved_at,
        "solved_eval_mean": None if solved is None else solved.mean,
        "solved_version": None if solved is None else solved.version,
        "best_eval_mean": max((e.mean for e in evals), default=None),
        "games": games,
        "passed": solved is not None and solved_at is not None and solved_at <= budget,
        "stdout_tail": proc.stdout.splitlines()[-12:],
    }


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--budget", type=float, default=60.0, help="seconds of wall clock")
    p.add_argument("--target", type=float, default=475.0, help="greedy mean return to reach")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--need", type=int, help="seeds that must pass (default: all but one)")
    p.add_argument("--keep", type=Path, default=REPO / "docs" / "runs")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "LEARNING.md")
    p.add_argument("extra", nargs="*", help="after --: more flags for bgtrain run")
    a = p.parse_args()
    need = a.need if a.need is not None else max(1, len(a.seeds) - 1)
    results = []
    for seed in a.seeds:
        r = run_seed(a.env, seed, a.budget, a.target, a.eval_episodes, a.keep, a.extra)
        results.append(r)
        at = "-" if r["solved_at_s"] is None else f"{r['solved_at_s']:.1f}s"
        print(
            f"seed {seed}: {'PASS' if r['passed'] else 'FAIL'} solved at {at}, "
            f"wall {r['wall_s']:.1f}s, {r['games']} games, best greedy {r['best_eval_mean']}"
        )
        if not r["passed"]:
            print("   " + "\n   ".join(r["stdout_tail"]))
    passed = sum(r["passed"] for r in results)
    write_report(a, results, passed, need)
    print(f"{passed}/{len(results)} seeds solved {a.env} (need {need}); report: {a.out}")
    return 0 if passed >= need else 1


def write_report(a: argparse.Namespace, results: list[dict], passed: int, need: int) -> None:
    lines = [
        f"## {a.env}: greedy mean >= {a.target:g} over {a.eval_episodes} games within "
        f"{a.budget:g} s",
        "",
        f"Measured {datetime.now():%Y-%m-%d %H:%M} on {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.machine()}. Command:",
        "",
        "```",
        "python tools/prove_learning.py " + " ".join(sys.argv[1:]),
        "```",
        "",
        "| seed | result | solved at (s, from launch) | greedy mean then | model version "
        "| games | run wall (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        at = "-" if r["solved_at_s"] is None else f"{r['solved_at_s']:.1f}"
        mean = "-" if r["solved_eval_mean"] is None else f"{r['solved_eval_mean']:.1f}"
        lines.append(
            f"| {r['seed']} | {'pass' if r['passed'] else 'FAIL'} | {at} | {mean} | "
            f"{r['solved_version'] or '-'} | {r['games']} | {r['wall_s']:.1f} |"
        )
    lines += [
        "",
        f"**{passed} of {len(results)} seeds passed** (needed: {need}). Learning "
        f"curves: `docs/runs/{a.env}-seed*.metrics.jsonl`.",
        "",
    ]
    section = "\n".join(lines)
    old = a.out.read_text() if a.out.exists() else "# Learning results\n\n"
    marker = f"## {a.env}:"
    if marker in old:  # replace this game's section, keep the others
        head, _, rest = old.partition(marker)
        tail = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""
        old = head + tail
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(old.rstrip() + "\n\n" + section)


if __name__ == "__main__":
    sys.exit(main())
