"""The ``bgtrain`` command: one subcommand per module, each with a typed config.

Every failure a user can cause or meet ends in one ``error:`` line and a non-zero exit
code, never a traceback: a bad setting (exit 2, as argparse's usage errors), a root that
cannot be used, or an OS error such as a full disk (exit 1, naming the path and what to
do).

A misspelled flag is refused with the command's own usage line and a did-you-mean,
before any other usage error can hide it. When stdout's reader goes away early
(``bgtrain check ... | head``) the command ends quietly with exit code 141, as a shell
reports a command ended by SIGPIPE (128 + 13): no traceback, and a script running with
``set -o pipefail`` still sees that the output was cut.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from bgtrain import __version__
from bgtrain.cli import check, evaluate, learn, monitor, plot, requeue, rollback, run, sc2
from bgtrain.cli._common import HelpFormatter, help_style, subcommands
from bgtrain.common.settings import did_you_mean
from bgtrain.errors import BgtrainError, SettingsError
from bgtrain.store.root import check_root, describe_os_error

#: One module a subcommand; ``evaluate`` is ``bgtrain eval`` (a module named ``eval`` would
#: shadow the builtin wherever it is imported).
COMMANDS = (run, learn, monitor, plot, evaluate, check, requeue, rollback, sc2)
#: Commands that only read their ``--root``; every other command with one writes in it.
READ_ONLY_COMMANDS = frozenset({"monitor", "plot", "eval"})
#: argparse's exit code for a usage error; a bad setting from a file is one too.
USAGE_ERROR = 2
#: The exit code when stdout's reader went away early: 128 + SIGPIPE, as a shell says.
STDOUT_CLOSED = 141
#: A word that is a value even though it starts with ``-``: a negative number.
_NUMBER = re.compile(r"-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$", re.IGNORECASE)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bgtrain",
        description="Background training for game bots: games record, a learner trains "
        "beside them, the bot plays its next game with the better model.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bgtrain {__version__}")
    parser.add_argument(
        "-v", "--log-details", action="store_true", help="log library details to stderr"
    )
    sub = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        required=True,
        help="one of these (bgtrain COMMAND --help for its own flags):",
    )
    for command in COMMANDS:
        command.add_parser(sub)
    for command_parser in subcommands(parser).values():
        help_style(command_parser)
    return parser


def _unknown_flags(command: argparse.ArgumentParser, words: Sequence[str]) -> list[str]:
    """The words of ``words`` (what follows the command's name) that look like flags the
    command does not have: neither one of its flags nor, where it allows them, an
    abbreviation of one; a negative number is a value, and ``--`` ends the flags."""
    known = command._option_string_actions
    unknown = []
    for word in words:
        if word == "--":
            break
        name = word.split("=", 1)[0]
        if not word.startswith("-") or word == "-" or _NUMBER.match(word) or name in known:
            continue
        if (
            command.allow_abbrev
            and name.startswith("--")
            and any(k.startswith(name) for k in known)
        ):
            continue  # argparse takes it (or says it is ambiguous)
        unknown.append(word)
    return unknown


def _flag_hint(
    flag: str, name: str, command: argparse.ArgumentParser, top: argparse.ArgumentParser
) -> str:
    if flag in top._option_string_actions:
        return f" ({flag} is an option of bgtrain itself: put it first, bgtrain {flag} {name} ...)"
    flags = [s for a in command._actions for s in a.option_strings if s.startswith("--")]
    return did_you_mean(flag, flags, quote=str)


def _refuse_unknown_flags(parser: argparse.ArgumentParser, words: Sequence[str]) -> None:
    """Refuse a misspelled flag of a command with that command's usage line and a
    did-you-mean, before argparse parses: its own errors come first otherwise and hide
    the misspelling (``requeue --frm stale``: "the following arguments are required:
    --from"). A misspelled command gets a did-you-mean too."""
    name_at = next((i for i, word in enumerate(words) if not word.startswith("-")), None)
    if name_at is None:
        return  # no command: argparse says so (or prints --help, --version)
    name, commands = words[name_at], subcommands(parser)
    if name not in commands:
        parser.error(
            f"argument COMMAND: invalid choice: {name!r} (choose from "
            f"{', '.join(commands)}){did_you_mean(name, commands)}"
        )
    command, rest = commands[name], words[name_at + 1 :]
    nested = subcommands(command)  # a command of subcommands (bgtrain sc2 replays): theirs
    sub_at = next((i for i, word in enumerate(rest) if not word.startswith("-")), None)
    if nested and sub_at is not None and rest[sub_at] in nested:
        command, rest = nested[rest[sub_at]], rest[sub_at + 1 :]
    unknown = _unknown_flags(command, rest)
    if unknown:
        hints = [_flag_hint(w.split("=", 1)[0], name, command, parser) for w in unknown]
        command.error(f"unrecognized arguments: {' '.join(unknown)}{''.join(hints)}")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, refusing an unknown flag or a stray word with a did-you-mean from the
    command's own flags (argparse alone names the flag but not the near miss)."""
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    _refuse_unknown_flags(parser, words)
    args, extra = parser.parse_known_args(words)
    if extra:
        command = subcommands(parser)[args.command]
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


def _stdout_closed() -> int:
    """stdout's reader is gone (``| head``): end quietly, as Python's documentation of
    SIGPIPE advises. stdout is pointed at devnull, as Python flushes it once more at exit
    and that flush would fail again, with an "Exception ignored" message."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - a stdout with no file behind it
        pass
    return STDOUT_CLOSED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bgtrain`` and ``python -m bgtrain``; returns the exit code."""
    try:
        try:
            return _main(argv)
        finally:
            # Flushed here rather than at exit (piped, stdout is block-buffered), so that
            # a reader gone early is met below, after --help and usage errors too.
            sys.stdout.flush()
    except BrokenPipeError:
        return _stdout_closed()


def _main(argv: Sequence[str] | None) -> int:
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
        raise  # a closed stdout (``| head``) is not a disk error: main ends quietly
    except OSError as exc:
        # A full disk or a read-only root met while running: the path and what to do.
        # Files already in the root stay where they are (every move is a rename).
        print(f"error: {describe_os_error(exc, getattr(args, 'root', None))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
