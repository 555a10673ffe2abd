"""Learning curves from ``logs/metrics.jsonl``, as a PNG (or an HTML page around one)."""

from __future__ import annotations

import base64
import html
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bgtrain.errors import BgtrainError
from bgtrain.store.fs import atomic_write
from bgtrain.store.root import TrainingRoot

ROLLING = 20


class NothingToPlotError(BgtrainError):
    """The root has no training metrics yet."""


def read_events(root: TrainingRoot) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(games, batches). Games come from the run's game events, else from the batches."""
    games, batches = [], []
    try:
        lines = root.metrics.read_text("utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "game":
            games.append(event)
        elif event.get("event") == "batch":
            batches.append(event)
    if not games:
        games = [{**ep, "t": b.get("t")} for b in batches for ep in b.get("episodes", [])]
    return games, batches


def _rolling(values: np.ndarray, n: int) -> np.ndarray:
    if len(values) < 1:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty(len(values))
    for i in range(len(values)):
        lo = max(0, i + 1 - n)
        out[i] = (cumsum[i + 1] - cumsum[lo]) / (i + 1 - lo)
    return out


def figure(root: TrainingRoot):  # -> matplotlib.figure.Figure
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games, batches = read_events(root)
    if not games and not batches:
        raise NothingToPlotError(
            f"no training metrics in {root.metrics} yet: run 'bgtrain run' or 'bgtrain learn' first"
        )
    fig, axes = plt.subplots(2, 2, figsize=(13, 8), constrained_layout=True)
    fig.suptitle(f"bgtrain learning curves - {root.path}", fontsize=13)

    ax = axes[0, 0]
    returns = np.array([g.get("return") or 0.0 for g in games], dtype=float)
    if len(returns):
        x = np.arange(1, len(returns) + 1)
        ax.plot(x, returns, ".", alpha=0.25, markersize=3, label="return of each game")
        ax.plot(x, _rolling(returns, ROLLING), lw=2, label=f"mean of the last {ROLLING}")
        wins = np.array([1.0 if g.get("outcome") == "Victory" else 0.0 for g in games])
        if wins.any():
            twin = ax.twinx()
            twin.plot(x, _rolling(wins, ROLLING), color="tab:green", lw=1, alpha=0.7)
            twin.set_ylabel(f"win rate (last {ROLLING})", color="tab:green")
            twin.set_ylim(-0.05, 1.05)
    ax.set_title("Return per game")
    ax.set_xlabel("game")
    ax.set_ylabel("return")
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[0, 1]
    by_version: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for g in games:
        if g.get("policy_version") is not None:
            by_version[int(g["policy_version"])].append(g)
    versions = sorted(by_version)
    if versions:
        means = [np.mean([g.get("return") or 0.0 for g in by_version[v]]) for v in versions]
        win = [np.mean([g.get("outcome") == "Victory" for g in by_version[v]]) for v in versions]
        ax.plot(versions, means, "o-", markersize=3, label="mean return of its games")
        twin = ax.twinx()
        twin.plot(versions, win, color="tab:green", lw=1, alpha=0.7)
        twin.set_ylabel("win rate", color="tab:green")
        twin.set_ylim(-0.05, 1.05)
        ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Return per model version")
    ax.set_xlabel("model version that played")
    ax.set_ylabel("mean return")

    ax = axes[1, 0]
    if batches:
        v = [b["version"] for b in batches]
        for key, label in (
            ("train/loss", "loss"),
            ("train/value_loss", "value loss"),
            ("train/policy_gradient_loss", "policy loss"),
        ):
            ax.plot(v, [b.get(key) for b in batches], lw=1, label=label)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.legend(fontsize=8)
    ax.set_title("Loss per batch")
    ax.set_xlabel("published version")

    ax = axes[1, 1]
    if batches:
        v = [b["version"] for b in batches]
        ax.plot(v, [b.get("train/version_diff_avg") for b in batches], lw=1.5, label="mean")
        ax.fill_between(
            v,
            [b.get("train/version_diff_min") or 0 for b in batches],
            [b.get("train/version_diff_max") or 0 for b in batches],
            alpha=0.25,
            label="min-max",
        )
        ax.legend(fontsize=8)
    ax.set_title("Policy lag (versions behind, per batch)")
    ax.set_xlabel("published version")
    ax.set_ylabel("versions")
    return fig


def _render(root: TrainingRoot, out: Path) -> bytes:
    """The output file's bytes: the picture, or an HTML page around it."""
    import matplotlib.pyplot as plt

    fig = figure(root)
    try:
        buf = io.BytesIO()
        if out.suffix.lower() not in (".html", ".htm"):
            kind = out.suffix.lstrip(".").lower() or "png"
            try:
                fig.savefig(buf, format=kind, dpi=110)
            except ValueError as exc:  # matplotlib: "Format 'x' is not supported"
                raise BgtrainError(
                    f"cannot draw {out}: {exc}; use .png, .svg, .pdf or .html"
                ) from None
            return buf.getvalue()
        fig.savefig(buf, format="png", dpi=110)
    finally:
        plt.close(fig)
    games, batches = read_events(root)
    img = base64.b64encode(buf.getvalue()).decode("ascii")
    last = batches[-1] if batches else {}
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in last.items()
        if k != "episodes"
    )
    return (
        "<!doctype html><meta charset='utf-8'><title>bgtrain report</title>"
        f"<h1>bgtrain: {html.escape(str(root.path))}</h1>"
        f"<p>{len(games)} games, {len(batches)} batches.</p>"
        f"<img alt='learning curves' src='data:image/png;base64,{img}'>"
        f"<h2>Last batch</h2><table>{rows}</table>"
    ).encode()


def write(root: str | Path | TrainingRoot, out: Path) -> Path:
    """Write the curves to ``out``: ``.png`` (or ``.svg``/``.pdf``), or ``.html``.

    Drawn in memory first, then written whole or not at all: a full disk or a read-only
    folder leaves no empty or half-written file behind, and the error names ``out``.
    """
    root = TrainingRoot.at(root)
    data = _render(root, out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda f: f.write(data), fsync=False)
    except OSError as exc:  # name the output, not the temp file beside it (or nothing)
        raise OSError(exc.errno, exc.strerror, str(out)) from exc
    return out
