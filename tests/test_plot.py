"""``bgtrain plot``: learning curves of a real run as a PNG, or an HTML page around one."""

from __future__ import annotations

import base64
import json
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from bgtrain import TrainingRoot
from bgtrain.monitor.history import RUN_PAUSE_MIN_S, load
from bgtrain.monitor.plot import return_panels, win_rate

from .helpers import bgtrain_cli

#: Events of real runs (tools/prove_learning.py keeps them).
RUNS = Path(__file__).resolve().parent.parent / "docs" / "runs"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert data[:8] == PNG_SIGNATURE, data[:16]
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_a_real_picture(path: Path) -> None:
    """Big enough to read, and not blank: ink in many colours."""
    import matplotlib.image

    width, height = png_size(path.read_bytes())
    assert width >= 800 and height >= 500, (width, height)
    pixels = matplotlib.image.imread(path)  # floats in [0, 1]
    assert pixels.shape[:2] == (height, width)
    rgb = pixels[..., :3]
    ink = np.any(rgb < 0.95, axis=-1)
    assert ink.mean() > 0.01, f"only {ink.mean():.2%} of the pixels are not white"
    colours = np.unique((rgb[ink] * 255).round().astype(np.uint8), axis=0)
    assert len(colours) > 50, f"only {len(colours)} colours"


def events(root: TrainingRoot, kind: str) -> list[dict]:
    lines = root.metrics.read_text("utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e.get("event") == kind]


class _Tables(HTMLParser):
    """Each table's rows (lists of cell texts), by the table's id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._rows = self.tables.setdefault(dict(attrs).get("id") or "", [])
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._rows:
            self._rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._rows = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table_rows(page: str, table_id: str) -> list[list[str]]:
    """The rows of the page's table ``table_id`` (the header row first, if it has one)."""
    parser = _Tables()
    parser.feed(page)
    assert table_id in parser.tables, sorted(parser.tables)
    return parser.tables[table_id]


def table(page: str, table_id: str) -> dict[str, str]:
    """A two-column table as {first cell: second cell}."""
    return {row[0]: row[1] for row in table_rows(page, table_id) if len(row) == 2}


def root_of_runs(where: Path, *runs: tuple[str, float]) -> TrainingRoot:
    """A root whose metrics.jsonl holds the events of real runs (docs/runs/NAME), one
    after the other, each with its ``t`` moved by the seconds given: several runs on one
    root, as a user who ran again gets."""
    root = TrainingRoot(where / "root").ensure()
    lines = []
    for name, shift in runs:
        for line in (RUNS / name).read_text("utf-8").splitlines():
            record = json.loads(line)
            record["t"] += shift
            lines.append(json.dumps(record))
    root.metrics.write_text("\n".join(lines) + "\n", "utf-8")
    return root


def test_plot_writes_a_png_of_the_learning_curves(short_run, tmp_path):
    result = bgtrain_cli("plot", "--root", short_run.path, "--out", "curves.png", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "wrote curves.png\n"
    assert_a_real_picture(tmp_path / "curves.png")


def test_plot_writes_an_html_report_with_the_figures_inside(short_run, tmp_path):
    out = tmp_path / "reports" / "report.html"

    result = bgtrain_cli("plot", "--root", short_run.path, "--out", out, cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"wrote {out}\n"
    page = out.read_text("utf-8")
    assert page.lstrip().lower().startswith("<!doctype html>")
    pictures = re.findall(r"<img [^>]*src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(pictures) == 2, page[:500]
    for i, data in enumerate(pictures):
        picture = tmp_path / f"from_the_page_{i}.png"
        picture.write_bytes(base64.b64decode(data, validate=True))
        assert_a_real_picture(picture)
    # Self-contained: nothing to fetch, no script.
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page) and "<script" not in page
    games, batches = len(events(short_run, "game")), len(events(short_run, "batch"))
    assert games == 30 and batches >= 1
    summary = table(page, "summary")
    assert summary["games"] == "30" and summary["batches trained"] == str(batches)
    assert summary["game"] == "CartPole-v1" and summary["reward threshold"] == "475"
    settings = table(page, "hyperparameters")
    assert settings["n_epochs"] == "2" and settings["seed"] == "1"
    assert table(page, "model")["algorithm"] == "ppo-vtrace"


def test_plot_without_metrics_fails_with_one_clear_line_and_writes_nothing(tmp_path):
    root = TrainingRoot(tmp_path / "root").ensure()
    before = sorted(tmp_path.rglob("*"))

    result = bgtrain_cli("plot", "--root", root.path, "--out", "plots/curves.png", cwd=tmp_path)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: no training metrics in {root.metrics} yet: "
        "run 'bgtrain run' or 'bgtrain learn' first\n"
    )
    assert sorted(tmp_path.rglob("*")) == before


CARTPOLE_1 = "CartPole-v1-seed1.metrics.jsonl"
CARTPOLE_2 = "CartPole-v1-seed2.metrics.jsonl"


def test_one_run_has_no_start_marker_and_its_evaluations_sit_at_their_steps(tmp_path):
    h = load(root_of_runs(tmp_path, (CARTPOLE_1, 0.0)), env="CartPole-v1")

    # Its longest pause is 5.1 s (the learner importing torch): no run starts there.
    assert h.starts == []
    assert list(h.eval_steps()) == [14949, 28737]
    assert h.threshold == 475.0 and h.solved() is True
    assert h.best_eval().mean == 491.4 and h.best_eval().version == 95
    assert len(h.games) == 289 and h.total_steps == sum(g.length for g in h.games)


def test_a_pause_between_two_runs_marks_a_start_and_is_left_out_of_the_time_axis(tmp_path):
    three_hours = 3 * 3600.0
    h = load(root_of_runs(tmp_path, (CARTPOLE_1, 0.0), (CARTPOLE_1, three_hours)))

    assert len(h.starts) == 1
    start = h.starts[0]
    assert start.reason == "a pause of 3.0 h"
    first_of_second = min(json.loads(x)["t"] for x in (RUNS / CARTPOLE_1).open()) + three_hours
    assert start.t == first_of_second
    # Time since the run started counts both runs' 12 s, not the 3 hours between them.
    assert 20 < h.elapsed(h.game_t[-1]) < 30
    # The second run's evaluations sit after the first run's steps (they count per run).
    first_total = h.total_steps // 2
    assert list(h.eval_steps()) == [14949, 28737, first_total + 14949, first_total + 28737]


def test_model_versions_counting_again_mark_a_start_after_a_short_pause(tmp_path):
    # A run started 60 s after another (under the pause rule's 5 minutes) on a root whose
    # models were removed: versions count from 1 again.
    assert RUN_PAUSE_MIN_S > 60
    first_end = max(json.loads(x)["t"] for x in (RUNS / CARTPOLE_1).open())
    second_start = min(json.loads(x)["t"] for x in (RUNS / CARTPOLE_2).open())
    shift = first_end + 60 - second_start
    h = load(root_of_runs(tmp_path, (CARTPOLE_1, 0.0), (CARTPOLE_2, shift)))

    assert [(s.t, s.after, s.reason) for s in h.starts] == [
        (second_start + shift, first_end, "model versions restart at 1")
    ]


def test_a_win_rate_panel_only_when_outcomes_vary(short_run, tmp_path):
    # The short CartPole run: 30 games, every one a Defeat: a win rate would be a flat 0.
    assert {e["outcome"] for e in events(short_run, "game")} == {"Defeat"}
    assert win_rate not in return_panels(load(short_run))
    lunar = load(root_of_runs(tmp_path, ("LunarLander-v3-seed1.metrics.jsonl", 0.0)))
    assert win_rate in return_panels(lunar)


def test_the_report_lists_every_evaluation_and_says_solved(tmp_path):
    root = root_of_runs(tmp_path, (CARTPOLE_1, 0.0))
    out = tmp_path / "report.html"

    result = bgtrain_cli(
        "plot", "--root", root.path, "--env", "CartPole-v1", "--out", out, cwd=tmp_path
    )

    assert result.returncode == 0, result.stdout + result.stderr
    page = out.read_text("utf-8")
    head, *rows = table_rows(page, "evaluations")
    assert head[:10] == [
        "#",
        "version",
        "game steps",
        "time",
        "games",
        "policy",
        "mean",
        "std",
        "min",
        "max",
    ]
    assert [r[1:3] + r[6:10] for r in rows] == [
        ["61", "14,949", "232.2", "14.7", "216.0", "267.0"],
        ["95", "28,737", "491.4", "13.5", "463.0", "500.0"],
    ]
    assert [r[-1] for r in rows] == ["", "yes"]
    assert "Solved: a greedy evaluation reached the reward threshold 475." in page
    summary = table(page, "summary")
    assert summary["solved"] == "yes" and summary["runs on this root"] == "1"
    assert "No model published yet" in page  # events only: no settings to show
