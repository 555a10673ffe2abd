"""The benchmarks' smoke mode (CI runs them only this way): they run and report."""

from __future__ import annotations

import json
import subprocess
import sys
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
    for title in ("4. Spool ingest", "5. Cost to the game", "6. Freshness", "7. Scale"):
        assert f"### {title}" in report
    for name in ("ingest", "game_cost", "freshness", "scale"):
        data = json.loads((results / f"{name}-quick.json").read_text())
        assert data["quick"] is True and data["machine"]["cores"]
        assert all(row["median"] >= 0 for row in data["rows"]) and data["rows"]
