"""The live terminal dashboard (rich): the seed monitor's sections plus LEARNING and LEARNER,
laid out for the terminal it is drawn in.

The figures that change from one refresh to the next and answer "is it learning?"
(LEARNING, LEARNER) come first; the slow-moving panels (MODEL STATUS, BUFFER, ARCHIVE) are
compacted as far as the terminal's height asks; the TRAINING LOG takes the rows left, so a
frame fills the terminal exactly and nothing that matters falls below its bottom edge.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bgtrain.monitor.snapshot import (
    LOG_LINES,
    MACHINE_WINDOW_S,
    RECENT_FILES,
    FolderView,
    LearnerView,
    LearningView,
    ModelView,
    Snapshot,
    Watcher,
)
from bgtrain.store.safe_npz import human_bytes

SPARKS = "▁▂▃▄▅▆▇█"
#: The TRAINING LOG is shown when at least its borders and this many lines fit.
MIN_LOG_LINES = 2
#: From this width BUFFER and ARCHIVE stand side by side with their file lists (narrower,
#: the lists' names would be cut to nothing; the compact layout puts their counts side by
#: side at any width).
SIDE_BY_SIDE_WIDTH = 110
#: Log lines a live screen may show (a tall terminal gets more than ``--once``'s ten).
SCREEN_LOG_LINES = 200


def sparkline(values: list[float], low: float | None = None, high: float | None = None) -> str:
    """One bar per value on the scale ``[low, high]`` (the values' own range unless a
    wider one, such as the game's reward range, is given).

    With no variation to show (every value equal and no range given) each value is the
    highest of its scale: full bars, not a flat line at mid-height that reads as "half".
    """
    if not values:
        return ""
    low = min(values) if low is None else min(low, *values)
    high = max(values) if high is None else max(high, *values)
    if high == low:
        return SPARKS[-1] * len(values)
    top = len(SPARKS) - 1
    return "".join(SPARKS[int((v - low) / (high - low) * top)] for v in values)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m"


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


def _line(*parts: str | tuple[str, str]) -> Text:
    """Text cut with an ellipsis at the panel's edge, never wrapped onto a second line."""
    text = Text.assemble(*parts)
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


def _lines(lines: Iterable[Text]) -> Text:
    text = Text("\n").join(lines)
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


@dataclass(frozen=True)
class Plan:
    """How much of the slow-moving panels (MODEL STATUS, BUFFER, ARCHIVE) a frame shows."""

    #: Recent files listed in BUFFER and ARCHIVE (0: their counts only).
    files: int
    #: Their path line, their "new files" line and MODEL STATUS' second line.
    detail: bool
    #: BUFFER and ARCHIVE on one row.
    side_by_side: bool


def plans(width: int) -> list[Plan]:
    """The layouts to try, richest first; the last one is the compact one."""
    wide = width >= SIDE_BY_SIDE_WIDTH
    return [*(Plan(n, True, wide) for n in (RECENT_FILES, 3, 1)), Plan(0, False, True)]


class Dashboard:
    """One frame, sized when rich draws it: to the console's width always, and to its
    height when ``fit`` (a live screen, or ``--once`` in a terminal)."""

    def __init__(self, s: Snapshot, refresh: float | None = None, fit: bool = False) -> None:
        self.s, self.refresh, self.fit = s, refresh, fit

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        s = self.s
        head = [_header(s, live=self.refresh is not None)]
        foot = [] if self.refresh is None else [_footer(self.refresh)]
        if not s.exists:
            yield Group(*head, _no_root_hint(s.root), *foot)
            return
        assert s.learning and s.learner
        top = [*head, _learning_panel(s.learning), _learner_panel(s.learner)]
        # --once leaves the last row to the shell prompt that follows it.
        spare = 0 if self.refresh is not None else 1
        height = (options.height or console.height) - spare if self.fit else None
        middle: list[RenderableType] = []
        left = None
        # The panels above and below are the same whatever the plan: measured once.
        fixed = len(console.render_lines(Group(*top, *foot), options, pad=False)) if height else 0
        for plan in plans(options.max_width):
            middle = _middle(s, plan)
            if height is None:
                break
            left = height - fixed - len(console.render_lines(Group(*middle), options, pad=False))
            if left >= MIN_LOG_LINES + 2:
                break
        log = _log_panel(s.log_tail, left)
        yield Group(*top, *middle, *([] if log is None else [log]), *foot)


def render(s: Snapshot, refresh: float | None = None, fit: bool = False) -> Dashboard:
    """One frame of the dashboard. ``refresh``: the live screen's period (its footer and
    uptime); ``None`` for ``--once``, which prints neither."""
    return Dashboard(s, refresh, fit)


def _header(s: Snapshot, live: bool) -> Text:
    uptime = [f"   uptime {_ago(s.time - s.monitor_started)}"] if live else []
    return _line(
        ("BACKGROUND TRAINING MONITOR", "bold"),
        f"   {datetime.fromtimestamp(s.time):%Y-%m-%d %H:%M:%S}",
        *uptime,
    )


def _footer(refresh: float) -> Text:
    return _line((f"Refreshing every {refresh:g}s | Press Ctrl+C to stop monitoring", "dim"))


def _no_root_hint(root: str) -> Text:
    return Text(
        f"No training root at {root} yet. Start one with 'bgtrain run' "
        "(or pass --root DIR); this screen fills in when it appears.",
        style="yellow",
    )


def _middle(s: Snapshot, plan: Plan) -> list[RenderableType]:
    assert s.model and s.buffer and s.archive
    # The seed's words for what arrived since the last refresh; short ones in half a row.
    buffer_news, archive_news = (
        ("new files detected", "files archived (training completed)")
        if plan.detail
        else ("new", "archived")
    )
    buffer = _folder_panel("BUFFER (pending training)", s.buffer, buffer_news, plan)
    archive = _folder_panel("ARCHIVE (processed)", s.archive, archive_news, plan)
    model = _model_panel(s.model, plan.detail)
    if not plan.side_by_side:
        return [model, buffer, archive]
    rows = max(_panel_lines(s.buffer, plan), _panel_lines(s.archive, plan)) + 2
    buffer.height = archive.height = rows  # one row: both as tall as the taller
    pair = Table.grid(expand=True)
    pair.add_column(ratio=1)
    pair.add_column(ratio=1)
    pair.add_row(buffer, archive)
    return [model, pair]


def _panel_lines(view: FolderView, plan: Plan) -> int:
    news = 1 if view.new_since_last else 0
    return int(plan.detail) + 1 + news + min(plan.files, len(view.recent))


def _folder_panel(title: str, view: FolderView, news: str, plan: Plan) -> Panel:
    head = [
        *([_line(("Path: ", "dim"), view.path)] if plan.detail else []),
        _line(
            ("Files: ", "dim"),
            (f"{view.count}", "bold"),
            ("   Total size: ", "dim"),
            human_bytes(view.total_bytes),
        ),
    ]
    if view.new_since_last:
        head.append(_line((f"+{view.new_since_last} {news}", "green")))
    parts: list[RenderableType] = [_lines(head)]
    if plan.files:
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        for f in view.recent[: plan.files]:
            when = datetime.fromtimestamp(f.time).strftime("%H:%M:%S")
            table.add_row(f.name, human_bytes(f.size), when)
        parts.append(table)
    return Panel(Group(*parts), title=title, title_align="left")


def _model_panel(m: ModelView, detail: bool) -> Panel:
    if not m.exists:
        text = _line(("Exists: ", "dim"), ("no", "yellow"), f"  ({m.path})")
        return Panel(text, title="MODEL STATUS", title_align="left")
    version = [("Version: ", "dim"), (str(m.version), "bold")]
    size = [("   Size: ", "dim"), human_bytes(m.size or 0)]
    updated = [("   updated ", "dim"), f"{_ago(m.age_s)} ago"]
    if detail:
        modified = datetime.fromtimestamp(m.modified or 0).strftime("%Y-%m-%d %H:%M:%S")
        lines = [
            _line(("Exists: ", "dim"), ("yes", "green"), "   ", *version, *size),
            _line(("Modified: ", "dim"), modified, *updated),
        ]
    else:
        lines = [_line(*version, *size, *updated)]
    return Panel(_lines(lines), title="MODEL STATUS", title_align="left")


def _return_line(g: LearningView) -> Text:
    """The sparkline of the return by model version, with its scale in numbers."""
    values = [r for _, r in g.return_by_version]
    if not values:
        return _line(("Return by version ", "dim"), "-")
    low, high = min(values), max(values)
    scale = f"all {low:.1f}" if low == high else f"{low:.1f} to {high:.1f}"
    first, last = g.return_by_version[0][0], g.return_by_version[-1][0]
    return _line(
        ("Return by version ", "dim"),
        f"v{first}-v{last} ",
        (sparkline(values), "cyan"),
        (f"  {scale}", "dim"),
    )


def _learning_panel(g: LearningView) -> Panel:
    lag = g.policy_lag or {}
    lines = [
        _line(
            ("Model version: ", "dim"),
            (str(g.model_version or 0), "bold"),
            ("   Games/min: ", "dim"),
            _num(g.games_per_minute),
            ("   Samples/s: ", "dim"),
            _num(g.samples_per_second, ".0f"),
        ),
        _line(
            ("Mean return (last games): ", "dim"),
            (_num(g.mean_return), "bold"),
            ("   Win rate: ", "dim"),
            "-" if g.win_rate is None else f"{g.win_rate:.0%}",
        ),
        _return_line(g),
        _line(
            ("Policy lag: ", "dim"),
            f"min {lag.get('min', '-')} / mean {_num(lag.get('mean'))} / max {lag.get('max', '-')}",
            ("   Stale: ", "dim"),
            str(g.stale),
            ("   Quarantined: ", "dim"),
            (str(g.quarantined), "red" if g.quarantined else ""),
        ),
    ]
    if g.engine not in (None, "local") or g.games_by_machine:
        lines.append(_machines_line(g))
    if g.latest_quarantine_reason:
        lines.append(_line((f"Latest quarantine: {g.latest_quarantine_reason}", "red")))
    return Panel(_lines(lines), title="LEARNING", title_align="left")


def _machines_line(g: LearningView) -> Text:
    """The engine, and the games of the last minutes by machine (a cluster's run)."""
    minutes = MACHINE_WINDOW_S // 60
    by_machine = ", ".join(f"{machine} {n}" for machine, n in g.games_by_machine) or "-"
    return _line(
        ("Engine: ", "dim"),
        g.engine or "-",
        (f"   Games by machine ({minutes} min): ", "dim"),
        by_machine,
    )


def _learner_panel(lr: LearnerView) -> Panel:
    text = _line(
        ("Running: ", "dim"),
        ("yes", "green") if lr.running else ("no", "yellow"),
        ("   PID: ", "dim"),
        str(lr.pid) if lr.pid is not None else "-",
        ("   State: ", "dim"),
        (lr.state or "-") if lr.running else "-",
        ("   Heartbeat: ", "dim"),
        f"{_ago(lr.heartbeat_age_s)} ago" if lr.heartbeat_age_s else "-",
        ("   Errors: ", "dim"),
        (str(lr.errors), "red" if lr.errors else ""),
    )
    return Panel(text, title="LEARNER", title_align="left")


def _log_panel(log_tail: list[str], rows: int | None) -> Panel | None:
    """The training log's last lines: ten in a frame of any height, else as many as fill
    the ``rows`` left (folded away when fewer than ``MIN_LOG_LINES`` fit)."""
    if rows is None:
        shown = log_tail[-LOG_LINES:]
    elif rows - 2 < MIN_LOG_LINES:
        return None
    else:
        shown = log_tail[-(rows - 2) :]
    body = _lines(Text(line) for line in shown) if shown else _line("(no training log yet)")
    title = f"TRAINING LOG (last {len(shown)} line{'' if len(shown) == 1 else 's'})"
    return Panel(body, title=title, title_align="left", height=rows)


def frame(watcher: Watcher, refresh: float) -> RenderableType:
    """A live frame: the newest snapshot, sized to the console when drawn."""
    return render(watcher.take(), refresh, fit=True)


def run_live(watcher: Watcher, refresh: float, console: Console | None = None) -> None:
    """Refresh every ``refresh`` seconds until Ctrl+C (KeyboardInterrupt) ends it. Each
    frame reads the console's size when drawn, so a resized terminal is followed."""
    console = console or Console()
    with Live(
        frame(watcher, refresh), console=console, auto_refresh=False, vertical_overflow="crop"
    ) as live:
        while True:
            time.sleep(refresh)
            live.update(frame(watcher, refresh), refresh=True)
