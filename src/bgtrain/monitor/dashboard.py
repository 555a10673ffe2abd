"""The live terminal dashboard (rich): the seed monitor's sections, plus LEARNING and LEARNER."""

from __future__ import annotations

import time
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bgtrain.monitor.snapshot import FolderView, Snapshot, Watcher
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
    uptime = _ago(s.time - s.monitor_started)
    header = Text.assemble(
        ("BACKGROUND TRAINING MONITOR", "bold"),
        f"   started {datetime.fromtimestamp(s.monitor_started):%H:%M:%S}",
        f"   now {datetime.fromtimestamp(s.time):%Y-%m-%d %H:%M:%S}",
        f"   uptime {uptime}",
    )
    footer = Text(f"Refreshing every {refresh:g}s | Press Ctrl+C to stop monitoring", style="dim")
    if not s.exists:
        hint = Text(
            f"No training root at {s.root} yet. Start one with 'bgtrain run' "
            "(or pass --root DIR); this screen fills in when it appears.",
            style="yellow",
        )
        return Group(header, hint, footer)
    assert s.buffer and s.archive and s.model and s.learning and s.learner
    parts: list[RenderableType] = [header]
    parts.append(_folder_panel("BUFFER (pending training)", s.buffer, "new files detected"))
    parts.append(
        _folder_panel("ARCHIVE (processed)", s.archive, "files archived (training completed)")
    )
    m = s.model
    if m.exists:
        model_text = Text.assemble(
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
        model_text = Text.assemble(("Exists: ", "dim"), ("no", "yellow"), f"  ({m.path})")
    parts.append(Panel(model_text, title="MODEL STATUS", title_align="left"))
    g = s.learning
    spark = sparkline([r for _, r in g.return_by_version])
    first_v = g.return_by_version[0][0] if g.return_by_version else None
    last_v = g.return_by_version[-1][0] if g.return_by_version else None
    lag = g.policy_lag or {}
    learning = Text.assemble(
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
        learning.append(f"\nLatest quarantine: {g.latest_quarantine_reason}", style="red")
    parts.append(Panel(learning, title="LEARNING", title_align="left"))
    lr = s.learner
    learner = Text.assemble(
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
    parts.append(Panel(learner, title="LEARNER", title_align="left"))
    log = Text("\n".join(s.log_tail) if s.log_tail else "(no training log yet)")
    parts.append(Panel(log, title="TRAINING LOG (last 10 lines)", title_align="left"))
    parts.append(footer)
    return Group(*parts)


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
