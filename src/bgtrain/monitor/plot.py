"""Learning curves from ``logs/metrics.jsonl``, as a PNG (or an HTML page around one)."""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bgtrain.errors import BgtrainError
from bgtrain.store.events import (
    RECENT_GAMES,
    BatchEvent,
    GameEvent,
    GameLog,
    of_kind,
    read_events,
)
from bgtrain.store.fs import atomic_write
from bgtrain.store.root import TrainingRoot


class NothingToPlotError(BgtrainError):
    """The root has no training metrics yet."""


def games_and_batches(root: TrainingRoot) -> tuple[list[GameEvent], list[BatchEvent]]:
    """The games played (by :class:`~bgtrain.store.events.GameLog`'s rule) and the
    published batches, in order."""
    events = read_events(root)
    return list(GameLog().extend(events)), of_kind(events, BatchEvent)


def _rolling(values: np.ndarray, n: int) -> np.ndarray:
    if len(values) < 1:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty(len(values))
    for i in range(len(values)):
        lo = max(0, i + 1 - n)
        out[i] = (cumsum[i + 1] - cumsum[lo]) / (i + 1 - lo)
    return out


def _win_rate_axis(ax: Any, x: Any, rate: Any, label: str) -> None:
    twin = ax.twinx()
    twin.plot(x, rate, color="tab:green", lw=1, alpha=0.7)
    twin.set_ylabel(label, color="tab:green")
    twin.set_ylim(-0.05, 1.05)


def _returns_per_game(ax: Any, games: list[GameEvent]) -> None:
    returns = np.array([g.return_ or 0.0 for g in games], dtype=float)
    if len(returns):
        x = np.arange(1, len(returns) + 1)
        n = RECENT_GAMES
        ax.plot(x, returns, ".", alpha=0.25, markersize=3, label="return of each game")
        ax.plot(x, _rolling(returns, n), lw=2, label=f"mean of the last {n}")
        wins = np.array([1.0 if g.outcome == "Victory" else 0.0 for g in games])
        if wins.any():
            _win_rate_axis(ax, x, _rolling(wins, n), f"win rate (last {n})")
    ax.set_title("Return per game")
    ax.set_xlabel("game")
    ax.set_ylabel("return")
    ax.legend(loc="upper left", fontsize=8)


def _returns_per_version(ax: Any, games: list[GameEvent]) -> None:
    by_version: dict[int, list[GameEvent]] = defaultdict(list)
    for g in games:
        if g.policy_version is not None:
            by_version[int(g.policy_version)].append(g)
    versions = sorted(by_version)
    if versions:
        means = [np.mean([g.return_ or 0.0 for g in by_version[v]]) for v in versions]
        win = [np.mean([g.outcome == "Victory" for g in by_version[v]]) for v in versions]
        ax.plot(versions, means, "o-", markersize=3, label="mean return of its games")
        _win_rate_axis(ax, versions, win, "win rate")
        ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Return per model version")
    ax.set_xlabel("model version that played")
    ax.set_ylabel("mean return")


def _loss_per_batch(ax: Any, batches: list[BatchEvent]) -> None:
    if batches:
        v = [b.version for b in batches]
        ax.plot(v, [b.loss for b in batches], lw=1, label="loss")
        ax.plot(v, [b.value_loss for b in batches], lw=1, label="value loss")
        ax.plot(v, [b.policy_gradient_loss for b in batches], lw=1, label="policy loss")
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.legend(fontsize=8)
    ax.set_title("Loss per batch")
    ax.set_xlabel("published version")


def _policy_lag(ax: Any, batches: list[BatchEvent]) -> None:
    if batches:
        v = [b.version for b in batches]
        ax.plot(v, [b.version_diff_avg for b in batches], lw=1.5, label="mean")
        ax.fill_between(
            v,
            [b.version_diff_min or 0 for b in batches],
            [b.version_diff_max or 0 for b in batches],
            alpha=0.25,
            label="min-max",
        )
        ax.legend(fontsize=8)
    ax.set_title("Policy lag (versions behind, per batch)")
    ax.set_xlabel("published version")
    ax.set_ylabel("versions")


def figure(root: TrainingRoot):  # -> matplotlib.figure.Figure
    """The four panels: return per game, per model version, loss and policy lag per batch.

    Raises:
        NothingToPlotError: the root has no game or batch event yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games, batches = games_and_batches(root)
    if not games and not batches:
        raise NothingToPlotError(
            f"no training metrics in {root.metrics} yet: run 'bgtrain run' or 'bgtrain learn' first"
        )
    fig, axes = plt.subplots(2, 2, figsize=(13, 8), constrained_layout=True)
    fig.suptitle(f"bgtrain learning curves - {root.path}", fontsize=13)
    _returns_per_game(axes[0, 0], games)
    _returns_per_version(axes[0, 1], games)
    _loss_per_batch(axes[1, 0], batches)
    _policy_lag(axes[1, 1], batches)
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
    games, batches = games_and_batches(root)
    img = base64.b64encode(buf.getvalue()).decode("ascii")
    last = batches[-1].to_json() if batches else {}
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
