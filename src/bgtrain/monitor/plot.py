"""Learning curves from ``logs/metrics.jsonl``, as a picture or an HTML report.

Two groups of panels, each answering a question:

- *Is it learning?* The return of each game and its rolling mean against game steps and
  against time since the run started, with the greedy evaluations (mean, std, min-max)
  and the game's reward threshold; the win rate on a panel of its own when the games'
  outcomes vary; the mean return of each model version.
- *Is the training healthy?* The value loss (log scale when positive), the
  policy-gradient loss, the policy's entropy, and the policy lag (versions behind) with
  its min-max band.

A dotted line marks where each run starts (:mod:`bgtrain.monitor.history` says how
starts are found).
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bgtrain.errors import BgtrainError
from bgtrain.monitor.history import (
    RECENT_GAMES,
    NothingToPlotError,
    RunHistory,
    finite,
    load,
    rolling_mean,
    time_unit,
)
from bgtrain.store.fs import atomic_write
from bgtrain.store.root import TrainingRoot

__all__ = ["TRAINING_PANELS", "NothingToPlotError", "figure", "return_panels", "write"]

Panel = Callable[[Any, RunHistory], None]

GAME_COLOUR = "tab:blue"
MEAN_COLOUR = "tab:orange"
EVAL_COLOUR = "tab:red"
THRESHOLD_COLOUR = "tab:green"
START_COLOUR = "0.45"
DPI = 100


# --------------------------------------------------------------------------- returns


def _run_starts(ax: Any, xs: Sequence[float]) -> None:
    """A dotted line where each run starts, labelled once in the legend."""
    for i, x in enumerate(xs):
        ax.axvline(x, color=START_COLOUR, ls=":", lw=1.2, label="a run starts" if i == 0 else None)


def _threshold(ax: Any, h: RunHistory) -> None:
    if h.threshold is not None:
        ax.axhline(
            h.threshold, color=THRESHOLD_COLOUR, ls="--", lw=1.2,
            label=f"solved at {h.threshold:g} (reward threshold)",
        )  # fmt: skip


def _evaluations(ax: Any, x: np.ndarray, h: RunHistory) -> None:
    """Each greedy evaluation: mean +- std as a bar with caps, min-max as a thin line."""
    if not h.evals:
        return
    mean = np.array([e.mean for e in h.evals])
    ax.vlines(
        x, [e.min for e in h.evals], [e.max for e in h.evals], color=EVAL_COLOUR, lw=0.8, alpha=0.6
    )
    ax.errorbar(
        x, mean, yerr=[e.std for e in h.evals], fmt="D", color=EVAL_COLOUR, markersize=5,
        capsize=4, lw=1.8, zorder=5, label="greedy evaluation: mean ± std, min-max",
    )  # fmt: skip


def _returns(ax: Any, h: RunHistory, x: np.ndarray, eval_x: np.ndarray) -> None:
    if len(h.games):
        ax.plot(x, h.returns, ".", color=GAME_COLOUR, alpha=0.3, ms=3, label="return of a game")
        ax.plot(
            x, h.rolling_returns(), color=MEAN_COLOUR, lw=2,
            label=f"mean of the last {RECENT_GAMES} games",
        )  # fmt: skip
    _evaluations(ax, eval_x, h)
    _threshold(ax, h)
    ax.set_ylabel("return")


def returns_by_steps(ax: Any, h: RunHistory) -> None:
    _returns(ax, h, h.game_steps, h.eval_steps())
    _run_starts(ax, [float(h.steps_at(s.after)) for s in h.starts])
    ax.set_title("Return by game steps")
    ax.set_xlabel("game steps played (all runs)")
    ax.legend(loc="best", fontsize=8)


def returns_by_time(ax: Any, h: RunHistory) -> None:
    span = float(h.elapsed(max(h.game_t.max(initial=h.t0), h.t0)))
    div, unit = time_unit(span)
    eval_t = np.array([e.t or h.t0 for e in h.evals], dtype=float)
    _returns(ax, h, h.elapsed(h.game_t) / div, h.elapsed(eval_t) / div)
    _run_starts(ax, [float(h.elapsed(s.t)) / div for s in h.starts])
    ax.set_title("Return by wall-clock time")
    paused = ", pauses between runs left out" if h.starts else ""
    ax.set_xlabel(f"time since the run started ({unit}{paused})")
    ax.legend(loc="best", fontsize=8)


def win_rate(ax: Any, h: RunHistory) -> None:
    """The share of Victory among the last games, on an axis of its own (0-1)."""
    ax.plot(h.game_steps, rolling_mean(h.wins, RECENT_GAMES), color="tab:purple", lw=1.8)
    if h.evals:
        ax.plot(h.eval_steps(), [e.win_rate for e in h.evals], "D", color=EVAL_COLOUR, ms=5)
    _run_starts(ax, [float(h.steps_at(s.after)) for s in h.starts])
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"Win rate (last {RECENT_GAMES} games; diamonds: greedy evaluations)")
    ax.set_xlabel("game steps played (all runs)")
    ax.set_ylabel("share of Victory")


def returns_by_version(ax: Any, h: RunHistory) -> None:
    """Mean return (+- std) of the games each model version played; v0 is the start."""
    by_version: dict[int, list[float]] = defaultdict(list)
    for g in h.games:
        by_version[g.policy_version or 0].append(g.return_ or 0.0)
    versions = sorted(by_version)
    mean = np.array([np.mean(by_version[v]) for v in versions])
    std = np.array([np.std(by_version[v]) for v in versions])
    ax.plot(versions, mean, "o-", color=GAME_COLOUR, ms=3, lw=1.2, label="mean return of its games")
    ax.fill_between(versions, mean - std, mean + std, color=GAME_COLOUR, alpha=0.2, label="± std")
    if h.evals:
        ax.plot(
            [e.version for e in h.evals], [e.mean for e in h.evals], "D", color=EVAL_COLOUR,
            ms=5, label="greedy evaluation (mean)",
        )  # fmt: skip
    _threshold(ax, h)
    _run_starts(ax, h.start_versions())
    ax.set_title("Return per model version")
    ax.set_xlabel("model version that played")
    ax.set_ylabel("return")
    ax.legend(loc="best", fontsize=8)


# --------------------------------------------------------------------------- training


def _versions(h: RunHistory) -> list[int]:
    return [b.version for b in h.batches]


def value_loss(ax: Any, h: RunHistory) -> None:
    """Value and total loss; log scale when every value is positive (they span decades)."""
    series = {
        "value loss": finite([b.value_loss for b in h.batches]),
        "total loss": finite([b.loss for b in h.batches]),
    }
    for label, values in series.items():
        ax.plot(_versions(h), values, lw=1.2, label=label)
    known = np.concatenate([v[~np.isnan(v)] for v in series.values()])
    log = len(known) > 0 and bool(np.all(known > 0))
    if log:
        ax.set_yscale("log")
    _run_starts(ax, h.start_versions())
    ax.set_title("Losses per batch" + (" (log scale)" if log else ""))
    ax.set_xlabel("published version")
    ax.legend(loc="best", fontsize=8)


def policy_loss(ax: Any, h: RunHistory) -> None:
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.plot(
        _versions(h), finite([b.policy_gradient_loss for b in h.batches]), color="tab:brown", lw=1.2
    )
    _run_starts(ax, h.start_versions())
    ax.set_title("Policy-gradient loss per batch")
    ax.set_xlabel("published version")


def entropy(ax: Any, h: RunHistory) -> None:
    """The policy's entropy (SB3's entropy_loss is its negative); it falls as the policy
    grows sure, and the uniform policy's entropy is its ceiling."""
    values = -finite([b.entropy_loss for b in h.batches])
    ax.plot(_versions(h), values, color="tab:cyan", lw=1.4, label="entropy")
    if h.meta is not None and h.meta.n_actions > 1:
        ax.axhline(
            math.log(h.meta.n_actions), color="0.5", ls="--", lw=1,
            label=f"uniform over {h.meta.n_actions} actions",
        )  # fmt: skip
    _run_starts(ax, h.start_versions())
    ax.set_title("Policy entropy per batch (nats)")
    ax.set_xlabel("published version")
    ax.legend(loc="best", fontsize=8)


def policy_lag(ax: Any, h: RunHistory) -> None:
    """Versions behind the trained model, per batch: the mean and the min-max band as
    steps, so a lag of exactly 0 or a band one version wide still shows."""
    v = _versions(h)
    low = [b.version_diff_min for b in h.batches]
    high = [b.version_diff_max for b in h.batches]
    ax.fill_between(
        v, low, high, step="mid", color="tab:olive", alpha=0.45, lw=0, label="min-max of the batch"
    )
    ax.step(v, high, where="mid", color="tab:olive", lw=0.8)
    ax.plot(v, [b.version_diff_avg for b in h.batches], color="black", lw=1.4, label="mean")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(-0.4, max(high, default=0) + 1)
    _run_starts(ax, h.start_versions())
    ax.set_title("Policy lag (versions behind, per batch)")
    ax.set_xlabel("published version")
    ax.set_ylabel("versions")
    ax.legend(loc="upper left", fontsize=8)


def return_panels(h: RunHistory) -> list[Panel]:
    """The panels of "is it learning?": a win rate only when outcomes vary."""
    win: list[Panel] = [win_rate] if h.outcomes_vary else []
    return [returns_by_steps, returns_by_time, *win, returns_by_version]


TRAINING_PANELS: list[Panel] = [value_loss, policy_loss, entropy, policy_lag]


def _no_data(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def figure(h: RunHistory, panels: Sequence[Panel], title: str):  # -> matplotlib Figure
    """The panels two by two, each with a grid; a panel with nothing to draw says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = math.ceil(len(panels) / 2)
    fig, axes = plt.subplots(rows, 2, figsize=(14, 4.3 * rows), constrained_layout=True)
    axes = np.atleast_2d(axes).ravel()
    fig.suptitle(title, fontsize=13)
    for ax, panel in zip(axes, panels, strict=False):
        ax.grid(True, alpha=0.3)
        needs_batches = panel in TRAINING_PANELS
        if (needs_batches and not h.batches) or (not needs_batches and not h.games):
            ax.set_title(panel.__name__.replace("_", " ").capitalize())
            _no_data(ax, "no batch trained yet" if needs_batches else "no game played yet")
            continue
        panel(ax, h)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return fig


def title_of(h: RunHistory) -> str:
    game = h.env or "a game"
    return f"bgtrain: {game} - {h.root.path}"


def picture(h: RunHistory, panels: Sequence[Panel], title: str, kind: str = "png") -> bytes:
    """The figure's bytes in ``kind`` (png, svg, pdf)."""
    import matplotlib.pyplot as plt

    fig = figure(h, panels, title)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format=kind, dpi=DPI)
        return buf.getvalue()
    finally:
        plt.close(fig)


def _render(h: RunHistory, out: Path) -> bytes:
    """The output file's bytes: the picture of every panel, or the HTML report."""
    kind = out.suffix.lstrip(".").lower() or "png"
    if kind in ("html", "htm"):
        from bgtrain.monitor.report import report_html

        return report_html(h).encode("utf-8")
    try:
        return picture(h, [*return_panels(h), *TRAINING_PANELS], title_of(h), kind)
    except ValueError as exc:  # matplotlib: "Format 'x' is not supported"
        raise BgtrainError(f"cannot draw {out}: {exc}; use .png, .svg, .pdf or .html") from None


def write(root: str | Path | TrainingRoot, out: Path, env: str | None = None) -> Path:
    """Write the curves to ``out``: ``.png`` (or ``.svg``/``.pdf``), or ``.html``.

    ``env``: the game whose reward threshold is drawn (default: the latest model's).
    Drawn in memory first, then written whole or not at all: a full disk or a read-only
    folder leaves no empty or half-written file behind, and the error names ``out``.

    Raises:
        NothingToPlotError: the root has no game or batch event yet.
    """
    data = _render(load(root, env), out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda f: f.write(data), fsync=False)
    except OSError as exc:  # name the output, not the temp file beside it (or nothing)
        raise OSError(exc.errno, exc.strerror, str(out)) from exc
    return out
