"""``bgtrain plot --out report.html`` opened in a real headless browser (Debian's
Chromium): the page renders its figures and tables from a real root of two runs.

Chromium is needed only here (README's set-up installs it). Without it the browser tests
are skipped, saying why, unless ``CI`` is set: in CI they must run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bgtrain import TrainingRoot

from .helpers import bgtrain_cli
from .test_plot import events, png_size, table, table_rows

WIDTH, HEIGHT = 1280, 2000
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def chromium() -> str:
    """The browser's path; a skip (or, in CI, a failure) when there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    why = "no chromium on PATH: `apt-get install -y chromium` (README's set-up) to run it"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and the HTML report must be checked in a browser, but {why}")
    pytest.skip(why)


@pytest.fixture
def browser() -> str:
    """Chromium's path, looked for before the runs are made (a skip costs nothing)."""
    return chromium()


def browse(page: Path, tmp_path: Path, *what: str) -> subprocess.CompletedProcess[str]:
    """Open ``page`` in headless Chromium with a new profile, doing ``what``."""
    argv = [
        chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={WIDTH},{HEIGHT}", *what, page.resolve().as_uri(),
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _rgb(png: Path) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(png)[..., :3]


def share_of_one_colour(png: Path) -> float:
    """The share of the pixels that have the commonest colour (a blank page: 1.0)."""
    pixels = (_rgb(png) * 255).round().astype(np.uint8).reshape(-1, 3)
    _, counts = np.unique(pixels, axis=0, return_counts=True)
    return float(counts.max() / counts.sum())


def coloured_share(png: Path) -> float:
    """The share of clearly coloured pixels (text and tables are black and grey)."""
    rgb = _rgb(png)
    return float(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.3).mean())


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[TrainingRoot, Path]:
    """A root of two short real runs (the second with greedy evaluations every 200
    steps), and its report."""
    where = tmp_path_factory.mktemp("two_runs")
    root = TrainingRoot(where / "root")
    common = ("--root", root.path, "--actors", "1", "--n-epochs", "2", "--no-until-solved")
    for seed, games, more in (("1", "15", ()), ("2", "30", ("--eval-every-steps", "200"))):
        result = bgtrain_cli(
            "run", *common, "--seed", seed, "--games", games, "--eval-episodes", "3", *more,
            cwd=where, timeout=180,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    report = where / "report.html"
    result = bgtrain_cli("plot", "--root", root.path, "--out", report, cwd=where)
    assert result.returncode == 0, result.stdout + result.stderr
    return root, report


def test_the_second_run_on_a_root_is_marked_where_its_learner_started(two_runs):
    _root, report = two_runs
    page = report.read_text("utf-8")

    (head, *rows) = table_rows(page, "runs")
    assert head == ["run", "started", "after game steps", "found by"]
    assert len(rows) == 1 and rows[0][0] == "2", rows
    assert rows[0][3] == "the learner started (state/learner.json)"
    assert table(page, "summary")["runs on this root"] == "2"


def test_the_report_renders_in_a_browser_with_its_figures_and_tables(browser, two_runs, tmp_path):
    root, report = two_runs
    shot = tmp_path / "report.png"

    browse(report, tmp_path, f"--screenshot={shot}")
    dom = browse(report, tmp_path, "--dump-dom").stdout

    # The screenshot: the page's size, not blank, and the figures drawn in colour: the
    # same page without its pictures (the control) has next to no coloured pixels.
    assert png_size(shot.read_bytes()) == (WIDTH, HEIGHT)
    assert share_of_one_colour(shot) < 0.9, "the page is mostly one colour"
    no_pictures = tmp_path / "no_pictures.html"
    page = report.read_text("utf-8")
    no_pictures.write_text(re.sub(r"data:image/png;base64,[^'\"]+", "", page), "utf-8")
    control = tmp_path / "control.png"
    browse(no_pictures, tmp_path, f"--screenshot={control}")
    assert coloured_share(control) < 0.0005, coloured_share(control)
    assert coloured_share(shot) > 0.001, coloured_share(shot)
    # The DOM the browser built: one row per greedy evaluation, with the event's figures.
    evals = events(root, "eval")
    assert evals, "the second run made no greedy evaluation"
    rows = table_rows(dom, "evaluations")[1:]
    assert [[r[1], r[6], r[7], r[8], r[9]] for r in rows] == [
        [str(e["version"]), *(f"{e[k]:,.1f}" for k in ("mean", "std", "min", "max"))] for e in evals
    ]
    summary = table(dom, "summary")
    assert summary["games"] == str(len(events(root, "game"))) == "45"
    assert summary["greedy evaluations"] == str(len(evals))
    assert dom.count("<img ") == 2 and "data:image/png;base64," in dom
