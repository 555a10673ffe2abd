"""The benchmarks' smoke mode (CI runs them only this way): they run and report."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_benchmarks_run_and_write_their_report(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out), "--results", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = out.read_text("utf-8")
    titles = [line[4:] for line in report.splitlines() if line.startswith("### ")]
    assert [title.split(".")[0] for title in titles] == ["1", "2", "3", "4", "5", "6", "7"]
    assert "Command: `python -m bench --quick`" in report
    names = ("cartpole", "slow_game", "lunarlander", "ingest", "game_cost", "freshness", "scale")
    for name in names:
        data = json.loads((results / f"{name}-quick.json").read_text())
        assert data["quick"] is True and data["machine"]["cores"]
        assert all(row["median"] >= 0 for row in data["rows"]) and data["rows"]
    # The races ran both sides for real: a process each, timed, with the steps it played.
    for name in ("cartpole", "slow_game", "lunarlander"):
        seconds, steps = json.loads((results / f"{name}-quick.json").read_text())["rows"]
        assert seconds["peer"] == "SB3 PPO" and seconds["unit"] == "s"
        assert len(seconds["values"]) == len(seconds["peer_values"]) == 1
        assert min(seconds["values"] + seconds["peer_values"]) > 1.0  # start-up alone
        assert min(steps["values"] + steps["peer_values"]) > 0
        assert seconds["ratio"] == seconds["median"] / seconds["peer_median"]

    # The report can be written again from the saved results alone, the same.
    again = tmp_path / "again.md"
    report_only = [sys.executable, "-m", "bench", "--quick", "--report", "--results", str(results)]
    done = subprocess.run(
        [*report_only, "--out", str(again)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert again.read_text("utf-8") == report

    # ... but never from the results of two runs mixed together.
    scale = results / "scale-quick.json"
    data = json.loads(scale.read_text())
    data["machine"]["date"] = "2020-01-01T00:00:00+00:00"
    scale.write_text(json.dumps(data))
    done = subprocess.run(report_only, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("python -m bench --report: the results are from 2 runs (")


def test_the_slow_game_spends_2_ms_of_cpu_on_every_step():
    from bench.busy_games import slow_cartpole

    env = slow_cartpole()
    env.reset(seed=0)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(50):
        _, _, terminated, truncated, _ = env.step(0)
        if terminated or truncated:
            env.reset()
    # CPU, not a sleep: the game competes with the learner for the cores, as a real one
    # does (half of it at least: other processes may take the core while it spins)
    assert time.process_time() - cpu >= 50 * 0.002 * 0.5
    assert time.perf_counter() - wall >= 50 * 0.002
    assert env.spec is not None and env.spec.reward_threshold == 475
