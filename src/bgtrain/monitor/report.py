"""``bgtrain plot --out report.html``: one self-contained page to send to a colleague.

The run's summary (games, steps, versions, best greedy evaluation, solved or not), the
figures of :mod:`bgtrain.monitor.plot` as inline PNGs, every greedy evaluation as a
table, the settings the latest model was trained with (from its meta) and where the runs
start. No script, no link to fetch: the page opens the same offline, mailed or archived.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from bgtrain.monitor.history import RECENT_GAMES, RunHistory, span_text
from bgtrain.monitor.plot import TRAINING_PANELS, Panel, picture, return_panels, title_of
from bgtrain.store.events import EvalEvent

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; color: #222; max-width: 1180px;
       margin: 1.5em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 3px 9px; text-align: right; }
th { background: #f0f0f0; } td.k, th.k { text-align: left; }
tr.solved td { background: #e6f4e6; }
.verdict { font-size: 1.15em; padding: 0.5em 0.8em; border-left: 5px solid #999;
           background: #f6f6f6; }
.verdict.yes { border-color: #2a8a2a; } .verdict.no { border-color: #c77b00; }
figure { margin: 1em 0; } figure img { width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.92em; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _num(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def _table(
    head: Sequence[str],
    rows: Iterable[Sequence[object]],
    table_id: str,
    row_class: Callable[[Sequence[object]], str] | None = None,
) -> str:
    """A table; the first column is a label (left-aligned), the others figures."""
    ths = "".join(f"<th{' class=k' if i == 0 else ''}>{_e(h)}</th>" for i, h in enumerate(head))
    body = []
    for row in rows:
        cls = f" class='{row_class(row)}'" if row_class and row_class(row) else ""
        tds = "".join(f"<td{' class=k' if i == 0 else ''}>{_e(v)}</td>" for i, v in enumerate(row))
        body.append(f"<tr{cls}>{tds}</tr>")
    thead = f"<thead><tr>{ths}</tr></thead>" if any(head) else ""
    return f"<table id='{table_id}'>{thead}<tbody>{''.join(body)}</tbody></table>"


def _verdict(h: RunHistory) -> str:
    best = h.best_eval()
    solved = h.solved()
    if solved is None:
        text, cls = "No reward threshold is known for this game: solved cannot be decided.", "no"
    elif solved:
        text = f"Solved: a greedy evaluation reached the reward threshold {h.threshold:g}."
        cls = "yes"
    else:
        reached = f" (best: {_num(best.mean)})" if best else " (no greedy evaluation yet)"
        text, cls = f"Not solved: the threshold is {h.threshold:g}{reached}.", "no"
    return f"<p class='verdict {cls}'>{_e(text)}</p>"


def summary_rows(h: RunHistory) -> list[tuple[str, str]]:
    """The figures a reader asks first, as (label, value)."""
    versions = [b.version for b in h.batches]
    best = h.best_eval()
    rolling = h.rolling_returns()
    end = max(h.game_t.max(initial=h.t0), max((b.t or h.t0 for b in h.batches), default=h.t0))
    rows = [
        ("game", h.env or "unknown (no model yet; bgtrain plot --env ID names it)"),
        ("runs on this root", str(len(h.starts) + 1)),
        ("time training", span_text(float(h.elapsed(end)))),
        ("games", f"{len(h.games):,}"),
        ("game steps", f"{h.total_steps:,}"),
        ("batches trained", f"{len(h.batches):,}"),
        ("model versions", f"{min(versions)} to {max(versions)}" if versions else "none yet"),
        (
            f"mean return of the last {RECENT_GAMES} games",
            _num(rolling[-1]) if len(rolling) else "-",
        ),
        (
            f"best mean of {RECENT_GAMES} games in a row",
            _num(rolling.max()) if len(rolling) else "-",
        ),
        ("greedy evaluations", str(len(h.evals))),
        ("best greedy evaluation", _best_text(best)),
        ("reward threshold", "unknown" if h.threshold is None else f"{h.threshold:g}"),
        ("solved", {True: "yes", False: "no", None: "cannot tell"}[h.solved()]),
    ]
    if h.guards:
        rows.append(("collapse guard restores", str(len(h.guards))))
    return rows


def _best_text(best: EvalEvent | None) -> str:
    if best is None:
        return "none yet"
    return f"{_num(best.mean)} ± {_num(best.std)} (version {best.version}, {best.episodes} games)"


def eval_rows(h: RunHistory) -> list[list[str]]:
    """One row per evaluation, oldest first, figures as the event holds them."""
    steps = h.eval_steps()
    rows = []
    for i, e in enumerate(h.evals):
        when = span_text(float(h.elapsed(e.t))) if e.t is not None else "-"
        rows.append([
            str(i + 1), str(e.version), f"{int(steps[i]):,}", when, str(e.episodes),
            "greedy" if e.greedy else "sampled", _num(e.mean), _num(e.std), _num(e.min),
            _num(e.max), f"{e.win_rate:.0%}", str(e.cut_short),
            "yes" if h.threshold is not None and e.mean >= h.threshold else "",
        ])  # fmt: skip
    return rows


EVAL_HEAD = (
    "#", "version", "game steps", "time", "games", "policy", "mean", "std", "min", "max",
    "win rate", "cut short", "solved",
)  # fmt: skip


def _evaluations(h: RunHistory) -> str:
    if not h.evals:
        return (
            "<p>No greedy evaluation yet: <code>bgtrain run</code> evaluates as the recent "
            "games near the threshold, or every N steps with <code>--eval-every-steps N</code>; "
            "<code>bgtrain eval</code> plays the saved model.</p>"
        )
    solved = lambda row: "solved" if row[-1] == "yes" else ""  # noqa: E731
    return _table(EVAL_HEAD, eval_rows(h), "evaluations", solved)


def _settings(h: RunHistory) -> str:
    m = h.meta
    if m is None:
        return "<p>No model published yet: the settings are read from the latest model.</p>"
    model = [
        ("version", m.version), ("created", m.created_at), ("game", m.extra.get("env", "-")),
        ("algorithm", m.algorithm or "-"), ("observation size", m.obs_dim),
        ("actions", m.n_actions), ("hidden layers", " x ".join(map(str, m.layer_sizes)) or "-"),
        ("activation", m.activation or "-"),
    ]  # fmt: skip
    hyper = sorted((k, v) for k, v in m.hyperparameters.items())
    return (
        "<p>From the latest model's self-description (its <code>meta</code>).</p>"
        + _table(("model", ""), model, "model")
        + _table(("hyperparameter", "value"), hyper, "hyperparameters")
    )


def _starts(h: RunHistory) -> str:
    if not h.starts:
        return "<p>One run: no pause, restart or later learner start found in the events.</p>"
    rows = [
        (str(i + 2), datetime.fromtimestamp(s.t).astimezone().isoformat(timespec="seconds"),
         f"{int(h.steps_at(s.after)):,}", s.reason)
        for i, s in enumerate(h.starts)
    ]  # fmt: skip
    return _table(("run", "started", "after game steps", "found by"), rows, "runs")


def _figure(h: RunHistory, panels: Sequence[Panel], title: str, caption: str) -> str:
    data = base64.b64encode(picture(h, panels, title)).decode("ascii")
    return (
        f"<figure><img alt='{_e(title)}' src='data:image/png;base64,{data}'>"
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


LEARNING_CAPTION = (
    "Dots: the return of each game; orange: the mean of the last {n}; red diamonds: greedy "
    "evaluations (bar: ± std, thin line: min to max); green dashes: the reward threshold; "
    "grey dots: where a run starts."
)
TRAINING_CAPTION = (
    "Per published batch. The value loss should fall and settle; the entropy falls as the "
    "policy grows sure (a drop to 0 early is a collapse); the policy lag is how many "
    "versions behind the model that played the batch's games was."
)


def report_html(h: RunHistory) -> str:
    """The whole page."""
    made = datetime.now().astimezone().isoformat(timespec="seconds")
    title = title_of(h)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="sub">Made by <code>bgtrain plot</code> on {_e(made)} from
<code>{_e(h.root.metrics)}</code>.</p>
{_verdict(h)}
<h2>Summary</h2>
{_table(("", ""), summary_rows(h), "summary")}
<h2>Is it learning?</h2>
{_figure(h, return_panels(h), "Returns", LEARNING_CAPTION.format(n=RECENT_GAMES))}
<h2>Greedy evaluations</h2>
{_evaluations(h)}
<h2>Is the training healthy?</h2>
{_figure(h, TRAINING_PANELS, "Training", TRAINING_CAPTION)}
<h2>Settings</h2>
{_settings(h)}
<h2>Runs</h2>
{_starts(h)}
</body></html>
"""
