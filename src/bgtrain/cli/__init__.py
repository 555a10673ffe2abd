"""The ``bgtrain`` command: one subcommand per module, each with a typed config.

Every failure a user can cause or meet ends in one ``error:`` line and a non-zero exit
code, never a traceback: a bad setting (exit 2, as argparse's usage errors), a root that
cannot be used, or an OS error such as a full disk (exit 1, naming the path and what to
do).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bgtrain import __version__
from bgtrain.cli import check, evaluate, learn, monitor, plot, requeue, rollback, run
from bgtrain.common.settings import did_you_mean
from bgtrain.errors import BgtrainError, SettingsError
from bgtrain.store.root import check_root, describe_os_error

#: One module a subcommand; ``evaluate`` is ``bgtrain eval`` (a module named ``eval`` would
#: shadow the builtin wherever it is imported).
COMMANDS = (run, learn, monitor, plot, evaluate, check, requeue, rollback)
#: Commands that only read their ``--root``; every other command with one writes in it.
READ_ONLY_COMMANDS = frozenset({"monitor", "plot", "eval"})
#: argparse's exit code for a usage error; a bad setting from a file is one too.
USAGE_ERROR = 2


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


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    return parser  # pragma: no cover - every bgtrain parser has subcommands


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, refusing an unknown flag with a did-you-mean from the command's own flags
    (argparse alone names the flag but not the near miss)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        command = _subparser(parser, args.command)
        flags = [s for a in command._actions for s in a.option_strings if s.startswith("--")]
        hints = [did_you_mean(x.split("=")[0], flags, quote=str) for x in extra if x[:2] == "--"]
        command.error(f"unrecognized arguments: {' '.join(extra)}{''.join(hints)}")
    return args


def _check_root(args: argparse.Namespace) -> None:
    """A root that is a file, or that this process cannot write in, is refused before the
    command starts anything (nothing half-done to undo)."""
    root = getattr(args, "root", None)
    if isinstance(root, Path):
        check_root(root, write=args.command not in READ_ONLY_COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bgtrain`` and ``python -m bgtrain``; returns the exit code."""
    args = _parse(argv)
    logging.basicConfig(
        level=logging.INFO if args.log_details else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        _check_root(args)
        return int(args.run(args))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except BgtrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # a closed stdout (``| head``) is not a disk error: issue 17 handles it
    except OSError as exc:
        # A full disk or a read-only root met while running: the path and what to do.
        # Files already in the root stay where they are (every move is a rename).
        print(f"error: {describe_os_error(exc, getattr(args, 'root', None))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
