"""``bgtrain plot``: learning curves of a real run as a PNG, or an HTML page around one."""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path

import numpy as np

from bgtrain import TrainingRoot

from .helpers import bgtrain_cli

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


def test_plot_writes_a_png_of_the_learning_curves(short_run, tmp_path):
    result = bgtrain_cli("plot", "--root", short_run.path, "--out", "curves.png", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "wrote curves.png\n"
    assert_a_real_picture(tmp_path / "curves.png")


def test_plot_writes_an_html_report_with_the_picture_inside(short_run, tmp_path):
    out = tmp_path / "reports" / "report.html"

    result = bgtrain_cli("plot", "--root", short_run.path, "--out", out, cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"wrote {out}\n"
    page = out.read_text("utf-8")
    assert page.lstrip().lower().startswith("<!doctype html>")
    match = re.search(r"<img [^>]*src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert match, page[:500]
    picture = tmp_path / "from_the_page.png"
    picture.write_bytes(base64.b64decode(match.group(1), validate=True))
    assert_a_real_picture(picture)
    games, batches = len(events(short_run, "game")), len(events(short_run, "batch"))
    assert f"<p>{games} games, {batches} batches.</p>" in page
    assert games == 30 and batches >= 1


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
