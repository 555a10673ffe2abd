"""tools/compare_settings.py on a tiny budget: it runs bgtrain for real and reports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_compare_settings_runs_each_setting_and_prints_a_row_for_it():
    done = subprocess.run(
        [
            sys.executable,
            "tools/compare_settings.py",
            "--budget",
            "4",
            "--seeds",
            "1",
            "--eval-every",
            "500",
            "--",
            "",
            "--max-waiting 0 --n-epochs 1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| `")]
    assert len(rows) == 2, done.stdout
    for row, flags in zip(rows, ("(defaults)", "--max-waiting 0 --n-epochs 1"), strict=True):
        pattern = rf"\| `{re.escape(flags)}` \| ([01])/1 \| ([\d.]+) \(([\d.]+)\) \| ([\d,]+) \|"
        match = re.fullmatch(pattern, row)
        assert match, row
        assert float(match[2]) >= 1.0 and int(match[4].replace(",", "")) > 0


def test_compare_settings_stops_with_the_error_of_a_run_that_fails():
    done = subprocess.run(
        [sys.executable, "tools/compare_settings.py", "--budget", "4", "--seeds", "1", "--",
         "--no-such-flag"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip

    assert done.returncode == 1
    assert "bgtrain run --no-such-flag (seed 1) failed:" in done.stderr
    assert "unrecognized arguments: --no-such-flag" in done.stderr
