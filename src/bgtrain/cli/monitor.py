"""``bgtrain monitor``: the live dashboard of a training root (read-only; Ctrl+C stops it)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from bgtrain.cli._common import add_root_argument
from bgtrain.common.settings import at_least, check_settings, checked, flag_type


@dataclass(frozen=True)
class MonitorConfig:
    #: The training root to watch.
    root: Path
    #: Seconds between refreshes (the seed monitor's 2; a tenth of a second at least, so
    #: that the monitor stays cheap beside the games).
    refresh: float = checked(2.0, at_least(0.1))
    #: Print one frame and exit.
    once: bool = False
    #: Print the figures as one JSON object and exit.
    json: bool = False

    def __post_init__(self) -> None:
        check_settings(self)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("monitor", help="live dashboard of a training root", description=__doc__)
    add_root_argument(p)
    p.add_argument(
        "--refresh",
        type=flag_type(MonitorConfig, "refresh"),
        default=2.0,
        help="seconds between refreshes",
    )
    p.add_argument("--once", action="store_true", help="print one frame and exit")
    p.add_argument("--json", action="store_true", help="print the figures as JSON and exit")
    p.set_defaults(run=lambda a: run(MonitorConfig(a.root, a.refresh, a.once, a.json)))


def run(config: MonitorConfig) -> int:
    from rich.console import Console

    from bgtrain.monitor.dashboard import SCREEN_LOG_LINES, render, run_live
    from bgtrain.monitor.snapshot import LOG_LINES, Watcher

    # --json keeps its ten log lines; a tall screen shows as many as fit.
    watcher = Watcher(config.root, log_lines=LOG_LINES if config.json else SCREEN_LOG_LINES)
    watcher.root.check(write=False)  # a file given as --root: one error line, not "no root yet"
    if config.json:
        print(json.dumps(watcher.take().to_json()))
        return 0
    console = Console()
    if config.once and not watcher.root.path.is_dir():
        print(
            f"No training root at {watcher.root.path} yet: start one with 'bgtrain run' "
            "(or pass --root DIR)."
        )
        return 0
    if config.once:
        # In a terminal the frame fits its height as the live one does; into a pipe or a
        # file it is drawn whole.
        console.print(render(watcher.take(), fit=console.is_terminal))
        return 0
    try:
        run_live(watcher, config.refresh, console)
    except KeyboardInterrupt:
        console.print("Monitoring stopped.")
    return 0
