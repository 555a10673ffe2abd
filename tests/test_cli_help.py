"""Every command's ``--help`` in one style (issue 17): a plain description, each flag's
default said once and one way (``(default: 20)``), the values a flag allows listed,
every argument described. The commands are found in the parser, so a new one is walked
too; each help is the one ``bgtrain COMMAND --help`` prints."""

from __future__ import annotations

import argparse
import re

import pytest

from bgtrain.cli import build_parser, main
from bgtrain.cli._common import subcommands

COMMANDS = sorted(subcommands(build_parser()))
#: A default said another way than ``(default: X)``: ``(2)``, ``(default)``, Python reprs.
BAD_DEFAULTS = [
    re.compile(r"\(\d[\d.]*\)"),  # "(2)"
    re.compile(r"\(default(?!: )"),  # "(default)", "(default=2)"
    re.compile(r"\(default: (None|True|False|\(|\[)"),  # reprs
]


def help_text(command: str | None, capsys, monkeypatch) -> str:
    """What ``bgtrain [COMMAND] --help`` prints, at a fixed width."""
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"] if command else ["--help"])
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def parser_of(command: str | None) -> argparse.ArgumentParser:
    parser = build_parser()
    return subcommands(parser)[command] if command else parser


def shown_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help of ``action`` as ``--help`` prints it, unwrapped."""
    return parser._get_formatter()._expand_help(action) if action.help else ""


def flat(text: str) -> str:
    return " ".join(text.split())


def allowed_words(action: argparse.Action) -> list[str]:
    """The words a flag allows, if it allows only some: argparse's ``choices``, or the
    words its type function lists when it refuses one."""
    if not action.option_strings:
        return []  # the commands themselves: listed one a line
    if action.choices:
        return list(action.choices)
    if action.type is None:
        return []
    try:
        action.type("no-such-word")
    except argparse.ArgumentTypeError as exc:
        found = re.search(r"must be one of (.*?)(?: \(or none\))?, got", str(exc))
        return found[1].split(", ") if found else []
    except ValueError:
        pass
    return []


def test_the_walk_finds_every_command():
    assert set(COMMANDS) >= {"run", "learn", "monitor", "plot", "eval", "check", "requeue"}
    assert "rollback" in COMMANDS


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_has_a_plain_description(command, capsys, monkeypatch):
    text = help_text(command, capsys, monkeypatch)
    description = text.split("\n\n")[1]
    assert "``" not in text
    assert not description.startswith("bgtrain"), description
    assert description[:1].isupper(), description


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_argument_is_described_and_its_help_is_what_is_shown(command, capsys, monkeypatch):
    text = flat(help_text(command, capsys, monkeypatch))
    parser = parser_of(command)
    for action in parser._actions:
        shown = shown_help(parser, action)
        name = "/".join(action.option_strings) or action.metavar or action.dest
        assert shown.strip(), f"bgtrain {command} {name} has no help text"
        assert flat(shown) in text, name


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_defaults_are_said_once_and_one_way(command, capsys, monkeypatch):
    text = help_text(command, capsys, monkeypatch)
    for bad in BAD_DEFAULTS:
        assert not bad.search(flat(text)), (command, bad.search(flat(text)))
    parser = parser_of(command)
    for action in parser._actions:
        shown = shown_help(parser, action)
        assert len(re.findall(r"\bdefault\b", shown)) <= 1, shown
        takes_a_value = action.option_strings and action.nargs != 0
        if takes_a_value and not action.required and not shown.startswith("= --"):
            # A flag that takes a value says what it is when not given ("= --games": the
            # seed system's spelling of a flag that does).
            assert "default" in shown, f"bgtrain {command} {action.option_strings}: {shown}"


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_the_values_a_flag_allows_are_listed(command, capsys, monkeypatch):
    text = flat(help_text(command, capsys, monkeypatch))
    parser = parser_of(command)
    for action in parser._actions:
        words = allowed_words(action)
        if not words:
            continue
        entry = f"{action.option_strings[0]} {{{','.join(words)}}}"
        listed = f"one of: {', '.join(words)}"
        assert entry in text or listed in flat(shown_help(parser, action)), action.option_strings


def test_the_examples_of_the_issue_read_as_a_person_expects(capsys, monkeypatch):
    """The lines issue 17 quoted, as they read now."""
    learn = flat(help_text("learn", capsys, monkeypatch))
    assert learn.split("[--verbose | --no-verbose] ")[1].startswith(
        "The learner as its own process, for games that run elsewhere."
    )
    assert "--n-actions N_ACTIONS number of actions (default: from the games' files) " in learn
    assert "--hidden-sizes N [N ...] hidden layer sizes of both networks (default: 64 64)" in learn
    assert "--activation {tanh,relu} hidden activation: tanh or relu (default: tanh)" in learn
    assert "--batch-steps BATCH_STEPS most steps in one batch" in learn
    assert "(none: no limit) (default: 512)" in learn
    run = flat(help_text("run", capsys, monkeypatch))
    assert "--games GAMES stop after this many games (default: no limit)" in run
    assert (
        "--verbose, --no-verbose print the seed's STATUS REPORT and batch lines (default: off)"
        in run
    )
    monitor = flat(help_text("monitor", capsys, monkeypatch))
    assert "--refresh REFRESH seconds between refreshes (default: 2)" in monitor
    check = flat(help_text("check", capsys, monkeypatch))
    assert "positional arguments: FILE episode files (.npz)" in check
    rollback = flat(help_text("rollback", capsys, monkeypatch))
    assert "VERSION the model version to make the newest again" in rollback
    requeue = flat(help_text("requeue", capsys, monkeypatch))
    assert "--from {quarantine,stale} the folder to take files from" in requeue
