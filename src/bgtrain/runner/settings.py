"""The settings of a run, declared once: each field is a flag of ``bgtrain run`` (its name
with dashes), a key of the ``[run]`` table of a ``--config`` file, a keyword argument,
and a row of the README's table (:func:`bgtrain.common.settings.markdown_table`), with
its help text and allowed values beside it.

:class:`RunConfig` is ``bgtrain run`` on a Gymnasium game; :class:`Sc2RunConfig` is
``bgtrain run --game sc2``. Both are declared here, without burnysc2, so that the CLI
builds every flag whether or not the ``[sc2]`` extra is installed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bgtrain.common.settings import (
    at_least,
    check_settings,
    greater_than,
    markdown_table,
    non_empty,
    one_of,
    setting,
)
from bgtrain.game.gymnasium_games import DEFAULT_ENV
from bgtrain.learn.settings import SEED_RANGE, LearnerSettings
from bgtrain.store.root import DEFAULT_ROOT

#: Games waiting in the buffer before a game process pauses (``--max-waiting``). A game
#: played on a model a few versions old teaches more than one played long ago: with 20
#: waiting (and no step limit per batch) CartPole took 1.6 times the game steps to solve
#: (docs/LEARNING.md).
DEFAULT_MAX_WAITING = 4

#: Fields that are not settings of their own: the learner's have their own flags and table.
NESTED = ("learner",)

#: The example Zerg bot, shipped inside the package (an installed wheel has no examples/).
DEFAULT_BOT = "bgtrain.integrations.sc2.zerg_bot:ZergBot"
#: burnysc2's Difficulty and Race names (checked before the game starts, without it).
ALL_DIFFICULTIES = (
    "VeryEasy", "Easy", "Medium", "MediumHard", "Hard", "Harder", "VeryHard",
    "CheatVision", "CheatMoney", "CheatInsane",
)  # fmt: skip
RACES = ("Random", "Terran", "Zerg", "Protoss")
#: Run settings that ``--game sc2`` shares with a Gymnasium run (one flag each).
SC2_SHARED = ("root", "games", "seed")
ROOT_HELP = "the training root: games, models and logs"


def default_actors() -> int:
    """One core for the learner, the rest for games (at least one)."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class RunConfig:
    """``bgtrain run`` on a Gymnasium game (or ``package.module:factory``)."""

    env: str = setting(
        DEFAULT_ENV, "Gymnasium id, or package.module:factory for your own game", non_empty()
    )
    actors: int | None = setting(
        None, "game processes (none: the cores minus one, for the learner)", at_least(1)
    )
    root: Path = setting(DEFAULT_ROOT, ROOT_HELP)  # noqa: RUF009 (a dataclasses.field)
    games: int | None = setting(None, "stop after this many games (none: no limit)", at_least(1))
    minutes: float | None = setting(
        None, "stop after this many minutes (none: no limit)", greater_than(0)
    )
    until_solved: bool = setting(
        True,
        "stop when solved: a greedy evaluation of the newest model reaches the game's "
        "reward threshold (tried as the mean of the recent games nears it)",
    )
    eval_episodes: int = setting(10, "games of each greedy evaluation", at_least(1))
    eval_every_steps: int | None = setting(
        None,
        "evaluate the newest model every this many game steps instead, on a fixed schedule "
        "like Stable-Baselines3's EvalCallback (none: as the recent games near the threshold)",
        at_least(1),
    )
    seed: int | None = setting(
        None, "seed of the games and of the network (none: random)", SEED_RANGE
    )
    max_waiting: int | None = setting(
        None,
        "a game process pauses between games while this many games wait for the learner "
        f"(none: {DEFAULT_MAX_WAITING}; 0: never pause)",
        at_least(0),
    )
    max_game_steps: int | None = setting(
        None,
        "a game still going after this many steps is saved as cut short, and an evaluation "
        "game stops there too (none: the game's own limit, else 100000): a game that never "
        "ends never becomes one huge file",
        at_least(1),
    )
    spare_actor: bool = setting(
        True,
        "one game process more, playing only while the learner idles with nothing to train "
        "on (a slow game): every core busy, and a fast game's learner keeps its core",
    )
    #: The learner's settings (flags of their own, the ``[learner]`` table).
    learner: LearnerSettings = field(default_factory=LearnerSettings)

    def __post_init__(self) -> None:
        check_settings(self)  # every range as declared above: refused before anything starts

    @property
    def waiting_limit(self) -> int | None:
        """Games waiting before a game process pauses (``None``: it never pauses)."""
        waiting = DEFAULT_MAX_WAITING if self.max_waiting is None else self.max_waiting
        return waiting or None


@dataclass(frozen=True)
class Sc2RunConfig:
    """``bgtrain run --game sc2``: StarCraft II games against the built-in AI."""

    root: Path = setting(DEFAULT_ROOT, ROOT_HELP)  # noqa: RUF009 (a dataclasses.field)
    bot: str = setting(
        DEFAULT_BOT,
        "the bot: FILE.py:Class or package.module:Class, a LearningBot subclass (the "
        "default is the example Zerg bot)",
        non_empty(),
    )
    games: int | None = setting(None, "games to play (none: until Ctrl+C)", at_least(1))
    map: str | None = setting(None, "a map name (none: a random ladder map each game)", non_empty())
    difficulty: str | None = setting(
        None,
        "the built-in AI's difficulty (none: Easy or Medium at random each game)",
        one_of(*ALL_DIFFICULTIES),
    )
    race: str = setting("Random", "the built-in AI's race", one_of(*RACES))
    seed: int | None = setting(
        None, "seed of the random map and difficulty picks (none: random)", SEED_RANGE
    )
    #: The learner's settings (flags of their own, the ``[learner]`` table).
    learner: LearnerSettings = field(default_factory=LearnerSettings)

    def __post_init__(self) -> None:
        check_settings(self)


def run_settings_table() -> str:
    """The README's table of the run's settings (a test keeps it equal to this)."""
    return markdown_table(RunConfig, exclude=NESTED)


def sc2_settings_table() -> str:
    """The README's table of the StarCraft II settings (those not shared with a run)."""
    return markdown_table(Sc2RunConfig, exclude=(*SC2_SHARED, *NESTED))
