"""The ``bgtrain`` command: one subcommand per module, each with a typed config."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import BgtrainError
from . import check, eval, learn, monitor, plot, requeue, rollback, run

COMMANDS = (run, learn, monitor, plot, eval, check, requeue, rollback)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bgtrain",
        description="Background training for game bots: games record, a learner trains "
        "beside them, the bot plays its next game with the better model.",
    )
    parser.add_argument("--version", action="version", version=f"bgtrain {__version__}")
    parser.add_argument(
        "-v", "--log-details", action="store_true", help="log library details to stderr"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bgtrain`` and ``python -m bgtrain``; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.log_details else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args))
    except BgtrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
