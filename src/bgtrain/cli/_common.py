"""What several subcommands share: the ``--root`` flag, a count type, and one help style
for every command (:class:`HelpFormatter`, :func:`plain_description`)."""

from __future__ import annotations

import argparse
import re
import textwrap
from pathlib import Path

from bgtrain.common.settings import shown_default
from bgtrain.store.root import DEFAULT_ROOT

#: ````bgtrain learn``: `` at the start of a module's docstring: the usage line says it.
_COMMAND_PREFIX = re.compile(r"^``[^`]*``:\s*")
#: Flags whose default is not worth a ``(default: ...)``: they print and exit.
_NO_DEFAULT = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


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


def plain_description(doc: str | None) -> str | None:
    """A module docstring as a command's ``--help`` description: without the leading
    ````bgtrain X``:`` (the usage line above it names the command) and without reST
    literal quotes, first letter capitalised."""
    if not doc:
        return doc
    text = _COMMAND_PREFIX.sub("", textwrap.dedent(doc).strip()).replace("``", "")
    return text[:1].upper() + text[1:]


def _shown(action: argparse.Action) -> str | None:
    """The default ``--help`` shows for a hand-written flag, or ``None`` for none: a
    switch is ``on`` when its default is what the flag sets (``--greedy``), and says
    nothing when off; an unset optional value says nothing (its help says what unset
    means, as ``(default: latest)``)."""
    if isinstance(action, _NO_DEFAULT) or not action.option_strings:
        return None
    default = action.default
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return "on" if default == action.const else None
    if default is None or default is argparse.SUPPRESS or default in ((), []):
        return None
    return shown_default(default)


class HelpFormatter(argparse.HelpFormatter):
    """The help style of every ``bgtrain`` command: each flag's default said once as
    ``(default: X)`` (a help text that says its own is kept), the description's
    paragraphs kept apart (argparse's own formatter runs them together), and lines
    broken between words only."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = _shown(action)
        if shown is None or "(default" in text or "%(default)" in text:
            return text
        return f"{text} (default: {shown.replace('%', '%%')})"

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        # Not at hyphens either: "off-policy", "--max-file-mb" stay whole.
        paragraphs = re.split(r"\n\s*\n", text.strip())
        return "\n\n".join(
            textwrap.fill(
                " ".join(p.split()),
                width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_on_hyphens=False,
            )
            for p in paragraphs
        )


def help_style(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` the common help style (called on every command's parser, so a
    new command gets it without asking)."""
    parser.formatter_class = HelpFormatter
    parser.description = plain_description(parser.description)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """``{name: parser}`` of every subcommand of ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}
