"""The live terminal dashboard (rich): the seed monitor's sections, plus LEARNING and LEARNER."""

from __future__ import annotations

import time
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bgtrain.monitor.snapshot import (
    FolderView,
    LearnerView,
    LearningView,
    ModelView,
    Snapshot,
    Watcher,
)
from bgtrain.store.safe_npz import human_bytes

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return SPARKS[len(SPARKS) // 2] * len(values)
    return "".join(SPARKS[int((v - low) / (high - low) * (len(SPARKS) - 1))] for v in values)


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


def _folder_panel(title: str, view: FolderView, news: str) -> Panel:
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    for f in view.recent:
        table.add_row(
            f.name, human_bytes(f.size), datetime.fromtimestamp(f.time).strftime("%H:%M:%S")
        )
    head = Text.assemble(
        ("Path: ", "dim"),
        view.path,
        "\n",
        ("Files: ", "dim"),
        (f"{view.count}", "bold"),
        ("   Total size: ", "dim"),
        human_bytes(view.total_bytes),
    )
    if view.new_since_last:
        head.append(f"\n+{view.new_since_last} {news}", style="green")
    return Panel(Group(head, table), title=title, title_align="left")


def render(s: Snapshot, refresh: float = 2.0) -> RenderableType:
    """One frame of the dashboard: the seed monitor's sections in its order, plus
    LEARNING and LEARNER; a one-line hint while the root does not exist yet."""
    header, footer = _header(s), _footer(refresh)
    if not s.exists:
        return Group(header, _no_root_hint(s.root), footer)
    assert s.buffer and s.archive and s.model and s.learning and s.learner
    return Group(
        header,
        _folder_panel("BUFFER (pending training)", s.buffer, "new files detected"),
        _folder_panel("ARCHIVE (processed)", s.archive, "files archived (training completed)"),
        _model_panel(s.model),
        _learning_panel(s.learning),
        _learner_panel(s.learner),
        _log_panel(s.log_tail),
        footer,
    )


def _header(s: Snapshot) -> Text:
    return Text.assemble(
        ("BACKGROUND TRAINING MONITOR", "bold"),
        f"   started {datetime.fromtimestamp(s.monitor_started):%H:%M:%S}",
        f"   now {datetime.fromtimestamp(s.time):%Y-%m-%d %H:%M:%S}",
        f"   uptime {_ago(s.time - s.monitor_started)}",
    )


def _footer(refresh: float) -> Text:
    return Text(f"Refreshing every {refresh:g}s | Press Ctrl+C to stop monitoring", style="dim")


def _no_root_hint(root: str) -> Text:
    return Text(
        f"No training root at {root} yet. Start one with 'bgtrain run' "
        "(or pass --root DIR); this screen fills in when it appears.",
        style="yellow",
    )


def _model_panel(m: ModelView) -> Panel:
    if m.exists:
        text = Text.assemble(
            ("Exists: ", "dim"),
            ("yes", "green"),
            ("   Version: ", "dim"),
            (str(m.version), "bold"),
            ("   Size: ", "dim"),
            human_bytes(m.size or 0),
            "\n",
            ("Modified: ", "dim"),
            datetime.fromtimestamp(m.modified or 0).strftime("%Y-%m-%d %H:%M:%S"),
            ("   updated ", "dim"),
            f"{_ago(m.age_s)} ago",
        )
    else:
        text = Text.assemble(("Exists: ", "dim"), ("no", "yellow"), f"  ({m.path})")
    return Panel(text, title="MODEL STATUS", title_align="left")


def _learning_panel(g: LearningView) -> Panel:
    spark = sparkline([r for _, r in g.return_by_version])
    first_v = g.return_by_version[0][0] if g.return_by_version else None
    last_v = g.return_by_version[-1][0] if g.return_by_version else None
    lag = g.policy_lag or {}
    text = Text.assemble(
        ("Model version: ", "dim"),
        (str(g.model_version or 0), "bold"),
        ("   Games/min: ", "dim"),
        _num(g.games_per_minute),
        ("   Samples/s: ", "dim"),
        _num(g.samples_per_second, ".0f"),
        "\n",
        ("Mean return (last games): ", "dim"),
        (_num(g.mean_return), "bold"),
        ("   Win rate: ", "dim"),
        "-" if g.win_rate is None else f"{g.win_rate:.0%}",
        "\n",
        ("Return by version ", "dim"),
        f"v{first_v}-v{last_v} " if first_v is not None else "",
        (spark, "cyan"),
        "\n",
        ("Policy lag: ", "dim"),
        f"min {lag.get('min', '-')} / mean {_num(lag.get('mean'))} / max {lag.get('max', '-')}",
        ("   Stale: ", "dim"),
        str(g.stale),
        ("   Quarantined: ", "dim"),
        (str(g.quarantined), "red" if g.quarantined else ""),
    )
    if g.latest_quarantine_reason:
        text.append(f"\nLatest quarantine: {g.latest_quarantine_reason}", style="red")
    return Panel(text, title="LEARNING", title_align="left")


def _learner_panel(lr: LearnerView) -> Panel:
    text = Text.assemble(
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


def _log_panel(log_tail: list[str]) -> Panel:
    log = Text("\n".join(log_tail) if log_tail else "(no training log yet)")
    return Panel(log, title="TRAINING LOG (last 10 lines)", title_align="left")


def frame(watcher: Watcher, refresh: float) -> RenderableType:
    return render(watcher.take(), refresh)


def run_live(watcher: Watcher, refresh: float, console: Console | None = None) -> None:
    """Refresh every ``refresh`` seconds until Ctrl+C (KeyboardInterrupt) ends it."""
    console = console or Console()
    with Live(
        frame(watcher, refresh), console=console, auto_refresh=False, vertical_overflow="crop"
    ) as live:
        while True:
            time.sleep(refresh)
            live.update(frame(watcher, refresh), refresh=True)
