"""``bgtrain run``: play games and train in the background until solved (or Ctrl+C).

The learner runs in its own process beside the game processes; games load the newest
model between games. Ctrl+C (or SIGTERM) stops cleanly: games in progress are saved as
cut short and the learner finishes or returns its batch. A second Ctrl+C quits at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from bgtrain.cli._common import add_root_argument
from bgtrain.common.settings import (
    add_settings_arguments,
    build_settings,
    flag_type,
    read_toml,
    settings_from_args,
)
from bgtrain.errors import BgtrainError, SettingsError
from bgtrain.game.defaults import DEFAULT_ENV
from bgtrain.integrations.sc2.settings import Sc2RunConfig
from bgtrain.learn.settings import LearnerSettings
from bgtrain.presets import known_presets, preset_settings
from bgtrain.runner.settings import NESTED, SHARED, RunConfig
from bgtrain.store.root import DEFAULT_ROOT

#: What the learner does differently under ``bgtrain run`` (flags and --config still win):
#: its per-batch lines would drown the run's own progress line.
RUN_LEARNER_DEFAULTS: dict[str, Any] = {"verbose": False}
SC2_TITLE = "StarCraft II (--game sc2; needs the [sc2] extra and the game)"
#: The defaults --help shows are the settings' own: a game with a preset starts from its.
PRESETS_NOTE = (
    f"These games start from a preset of their own instead: {', '.join(known_presets())} "
    "(printed at start; --config and flags override it)."
)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag of ``bgtrain run``: the run's settings and the StarCraft II ones from
    their dataclasses (:mod:`bgtrain.runner.settings`, :mod:`bgtrain.integrations.sc2.settings`),
    the learner's, and a few more."""
    add_root_argument(p)  # shared by every command; [run] root in a file works too
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML settings: a [run] table and a [learner] table (default: none)",
    )
    add_settings_arguments(p, RunConfig, exclude=("root", *NESTED))
    sc2 = add_settings_arguments(p, Sc2RunConfig, exclude=(*SHARED, *NESTED), title=SC2_TITLE)
    sc2.add_argument(
        "--game",
        choices=("gym", "sc2"),
        default="gym",
        help="gym: a Gymnasium game (--env); sc2: StarCraft II (default: gym)",
    )
    learner = add_settings_arguments(
        p, LearnerSettings, exclude=("seed",), defaults=RUN_LEARNER_DEFAULTS
    )
    learner.description = PRESETS_NOTE
    # The seed system's spellings (run_with_training.py): the same settings.
    seed_flags = p.add_argument_group("seed system flags")
    seed_flags.add_argument(
        "--max_games", dest="games", type=flag_type(RunConfig, "games"), help="= --games"
    )
    seed_flags.add_argument(
        "--learning_rate", "--lr", dest="learning_rate", type=float, help="= --learning-rate"
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="play games and train in the background (the main job)",
        description=__doc__,
        allow_abbrev=False,  # --game is not --games
    )
    add_run_arguments(p)
    p.set_defaults(run=run_from_args)


def _given(cls: type, a: argparse.Namespace) -> dict[str, Any]:
    """The settings of ``cls`` given as flags (``--root`` aside: it always has a value)."""
    skip = ("root", *NESTED)
    return {
        f.name: getattr(a, f.name)
        for f in dataclasses.fields(cls)
        if f.name not in skip and getattr(a, f.name, None) is not None
    }


def _with_root(a: argparse.Namespace, values: dict[str, Any]) -> dict[str, Any]:
    # --root wins over the file's [run] root only when given: its default (argparse keeps
    # the DEFAULT_ROOT object itself when the flag is absent) must not hide the file's.
    if a.root is not DEFAULT_ROOT or "root" not in values:
        return {**values, "root": a.root}
    return values


def _refuse_the_other_games_flags(a: argparse.Namespace, game: str) -> None:
    """A flag of the other kind of run (``game``: this one's, gym or sc2) would be ignored
    without a word: refuse it.

    Raises:
        SettingsError: which flags, and what to do.
    """
    gym, sc2 = _given(RunConfig, a), _given(Sc2RunConfig, a)
    mine, theirs = (sc2, gym) if game == "sc2" else (gym, sc2)
    others = [name for name in theirs if name not in mine]
    if not others:
        return
    flags = ", ".join("--" + name.replace("_", "-") for name in others)
    one = len(others) == 1
    them = "it" if one else "them"
    if game == "sc2":
        what = "is not a setting" if one else "are not settings"
        raise SettingsError(f"{flags} {what} of --game sc2; leave {them} out")
    verb = "is" if one else "are"
    raise SettingsError(f"{flags} {verb} for --game sc2 only; add --game sc2 or leave {them} out")


def config_from_args(a: argparse.Namespace) -> RunConfig:
    """Defaults, then the game's preset (learner), then ``--config``, then flags."""
    _refuse_the_other_games_flags(a, "gym")
    values = {**(read_toml(a.config, "run") if a.config else {}), **_given(RunConfig, a)}
    env = values.get("env") or DEFAULT_ENV
    learner = settings_from_args(
        LearnerSettings, a, a.config, "learner", {**RUN_LEARNER_DEFAULTS, **preset_settings(env)}
    )
    return build_settings(RunConfig, {**_with_root(a, values), "learner": learner})


def sc2_config_from_args(a: argparse.Namespace) -> Sc2RunConfig:
    """Defaults, then flags (the learner's also from ``--config``)."""
    _refuse_the_other_games_flags(a, "sc2")
    learner = settings_from_args(LearnerSettings, a, a.config, "learner", RUN_LEARNER_DEFAULTS)
    values = {**_given(Sc2RunConfig, a), "root": a.root, "learner": learner}
    return build_settings(Sc2RunConfig, values)


def run_from_args(a: argparse.Namespace) -> int:
    if a.game == "sc2":
        return run_sc2_from_args(a)
    from bgtrain.runner.session import run

    terminal = sys.stdout if sys.stdout.isatty() else None
    summary = run(config_from_args(a), print, terminal=terminal, statistics=_statistics(a))
    if summary.error is not None:
        print(f"error: {summary.error}", file=sys.stderr)
    return summary.exit_code


def _statistics(a: argparse.Namespace) -> bool:
    """The run's STATISTICS blocks, unless ``verbose`` is turned off on purpose (the flag
    --no-verbose, or ``verbose = false`` in --config's [learner] table): the learner's
    own lines are off by default under ``bgtrain run`` (RUN_LEARNER_DEFAULTS)."""
    given = a.verbose
    if given is None and a.config:
        given = read_toml(a.config, "learner").get("verbose")
    return given is not False


def run_sc2_from_args(a: argparse.Namespace) -> int:
    config = sc2_config_from_args(a)
    try:
        from bgtrain.integrations.sc2.game import run_sc2
    except ImportError as exc:
        raise BgtrainError(str(exc)) from None
    return run_sc2(config, print)
