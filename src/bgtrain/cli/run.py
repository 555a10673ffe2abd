"""``bgtrain run``: play games and train in the background until solved (or Ctrl+C).

The learner runs in its own process beside the game processes; games load the newest
model between games. Ctrl+C (or SIGTERM) stops cleanly: games in progress are saved as
cut short and the learner finishes or returns its batch. A second Ctrl+C quits at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bgtrain.cli._common import add_root_argument, positive_int
from bgtrain.common.settings import (
    add_settings_arguments,
    build_settings,
    read_toml,
    settings_from_args,
)
from bgtrain.errors import BgtrainError
from bgtrain.game.gymnasium_games import DEFAULT_ENV
from bgtrain.learn.settings import LearnerSettings
from bgtrain.presets import preset_settings
from bgtrain.store.root import DEFAULT_ROOT

#: What the learner does differently under ``bgtrain run`` (flags and --config still win):
#: its per-batch lines would drown the run's own progress line.
RUN_LEARNER_DEFAULTS: dict[str, Any] = {"verbose": False}


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    add_root_argument(p)
    p.add_argument(
        "--env", default=None, help=f"Gymnasium id or module:factory (default: {DEFAULT_ENV})"
    )
    p.add_argument("--actors", type=positive_int, help="game processes (default: cores - 1)")
    p.add_argument("--games", type=positive_int, help="stop after N games")
    p.add_argument("--minutes", type=float, help="stop after M minutes")
    p.add_argument(
        "--until-solved",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="stop when the env's reward threshold is reached (default: on)",
    )
    p.add_argument("--eval-episodes", type=positive_int, help="games per greedy evaluation (10)")
    p.add_argument(
        "--eval-every-steps",
        type=positive_int,
        metavar="N",
        help="evaluate every N game steps (default: as the recent games near the threshold)",
    )
    p.add_argument("--seed", type=int, help="seed of games and network (default: random)")
    p.add_argument(
        "--max-waiting",
        type=int,
        metavar="N",
        help="pause games while N wait in the buffer (default: 4; 0: never)",
    )
    p.add_argument(
        "--max-game-steps",
        type=int,
        metavar="N",
        help="save a game still going after N steps as cut short, and cut evaluation "
        "games there too (default: the game's own limit, else 100000)",
    )
    p.add_argument(
        "--spare-actor",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one game process more, playing only while the learner idles with nothing to "
        "train on (default: on)",
    )
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML settings: a [run] table and a [learner] table",
    )
    sc2 = p.add_argument_group("StarCraft II (--game sc2; needs the [sc2] extra and the game)")
    sc2.add_argument(
        "--game",
        choices=("gym", "sc2"),
        default="gym",
        help="gym: a Gymnasium game (--env); sc2: StarCraft II (default: gym)",
    )
    sc2.add_argument("--map", help="map name (default: a random ladder map each game)")
    sc2.add_argument("--difficulty", help="built-in AI difficulty (default: Easy or Medium)")
    sc2.add_argument("--race", default="Random", help="built-in AI race (default: Random)")
    sc2.add_argument("--bot", help="FILE.py:Class or module:Class (default: the example Zerg bot)")
    add_settings_arguments(p, LearnerSettings, exclude=("seed",))
    # The seed system's spellings (run_with_training.py): the same settings.
    seed_flags = p.add_argument_group("seed system flags")
    seed_flags.add_argument("--max_games", dest="games", type=positive_int, help="= --games")
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


def config_from_args(a: argparse.Namespace) -> Any:
    from bgtrain.runner.session import RunConfig

    values: dict[str, Any] = read_toml(a.config, "run") if a.config else {}
    env = a.env or values.get("env") or DEFAULT_ENV
    learner = settings_from_args(
        LearnerSettings, a, a.config, "learner", {**RUN_LEARNER_DEFAULTS, **preset_settings(env)}
    )
    names = (
        "env",
        "actors",
        "games",
        "minutes",
        "until_solved",
        "eval_episodes",
        "eval_every_steps",
        "seed",
        "max_waiting",
        "max_game_steps",
        "spare_actor",
    )
    for name in names:
        if getattr(a, name, None) is not None:
            values[name] = getattr(a, name)
    # --root wins over the file's [run] root only when given: its default (argparse keeps
    # the DEFAULT_ROOT object itself when the flag is absent) must not hide the file's.
    if a.root is not DEFAULT_ROOT or "root" not in values:
        values["root"] = a.root
    config = build_settings(RunConfig, values)
    return config.__class__(**{**config.__dict__, "learner": learner})


def run_from_args(a: argparse.Namespace) -> int:
    if a.game == "sc2":
        return run_sc2_from_args(a)
    from bgtrain.runner.session import run

    summary = run(config_from_args(a))
    if summary.error is not None:
        print(f"error: {summary.error}", file=sys.stderr)
    return summary.exit_code


def run_sc2_from_args(a: argparse.Namespace) -> int:
    try:
        from bgtrain.integrations.sc2.game import DEFAULT_BOT, Sc2RunConfig, run_sc2
    except ImportError as exc:
        raise BgtrainError(str(exc)) from None
    learner = settings_from_args(LearnerSettings, a, a.config, "learner", RUN_LEARNER_DEFAULTS)
    config = Sc2RunConfig(
        root=a.root,
        bot=a.bot or DEFAULT_BOT,
        games=a.games,
        map=a.map,
        difficulty=a.difficulty,
        race=a.race,
        seed=a.seed,
        learner=learner,
    )
    return run_sc2(config)
