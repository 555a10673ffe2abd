"""What several subcommands share."""

from __future__ import annotations

import argparse
from pathlib import Path

from bgtrain.store.root import DEFAULT_ROOT


def add_root_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        metavar="DIR",
        help=f"training root (default: ./{DEFAULT_ROOT})",
    )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
