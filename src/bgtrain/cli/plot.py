"""``bgtrain plot --out curves.png``: learning curves from logs/metrics.jsonl."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from bgtrain.cli._common import add_root_argument


@dataclass(frozen=True)
class PlotConfig:
    #: The training root whose logs/metrics.jsonl is drawn.
    root: Path
    #: Output file: .png (or .svg, .pdf) for the picture, .html for the report.
    out: Path = Path("curves.png")
    #: The game whose reward threshold is drawn (None: the latest model's game).
    env: str | None = None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="learning curves as a picture", description=__doc__)
    add_root_argument(p)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("curves.png"),
        help="the picture (.png, .svg, .pdf) or a report page (.html)",
    )
    p.add_argument(
        "--env",
        metavar="ID",
        help="game whose reward threshold is drawn (default: the latest model's game)",
    )
    p.set_defaults(run=lambda a: run(PlotConfig(a.root, a.out, a.env)))


def run(config: PlotConfig) -> int:
    from bgtrain.monitor.plot import write

    out = write(config.root, config.out, config.env)
    print(f"wrote {out}")
    return 0
