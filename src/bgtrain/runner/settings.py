"""The settings of a run, declared once: each field is a flag of ``bgtrain run`` (its name
with dashes), a key of the ``[run]`` table of a ``--config`` file, a keyword argument,
and a row of the README's table (:func:`bgtrain.common.settings.markdown_table`), with
its help text and allowed values beside it.

:class:`RunConfig` is ``bgtrain run`` on a Gymnasium game. ``bgtrain run --game sc2``
(:class:`bgtrain.integrations.sc2.settings.Sc2RunConfig`) declares its own settings but
shares ``root``, ``games`` and ``seed`` with it (:func:`shared_setting`): one flag, one
help text each.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bgtrain.common.settings import (
    Allowed,
    at_least,
    check_settings,
    greater_than,
    markdown_table,
    non_empty,
    one_of,
    setting,
)
from bgtrain.errors import SettingsError
from bgtrain.game.defaults import DEFAULT_ENV, DEFAULT_STEP_LIMIT
from bgtrain.learn.settings import SEED_RANGE, LearnerSettings
from bgtrain.store.root import DEFAULT_ROOT

#: Games waiting in the buffer before a game process pauses (``--max-waiting``). A game
#: played on a model a few versions old teaches more than one played long ago: with 20
#: waiting (and no step limit per batch) CartPole took 1.6 times the game steps to solve
#: (docs/LEARNING.md).
DEFAULT_MAX_WAITING = 4

#: Fields that are not settings of their own: the learner's have their own flags and table.
NESTED = ("learner",)

#: The settings every game of ``bgtrain run`` has (``--game sc2`` too): default, help text
#: and allowed values, declared once here for both (see :func:`shared_setting`).
SHARED_SETTINGS: dict[str, tuple[Any, str, Allowed | None]] = {
    "root": (DEFAULT_ROOT, "the training root: games, models and logs", None),
    "games": (None, "stop after this many games (none: no limit)", at_least(1)),
    "seed": (None, "seed of the games and of the network (none: random)", SEED_RANGE),
    "actors": (
        None,
        "game processes (none: the cores minus one, for the learner; StarCraft II: one, "
        "more only with --engine ray)",
        at_least(1),
    ),
    "engine": (
        "local",
        "where the games run: local (processes on this machine) or ray (a Ray cluster, "
        "the learner staying here; needs the [ray] extra)",
        one_of("local", "ray"),
    ),
    "address": (
        None,
        "--engine ray: the cluster to join (auto: the one `ray start` runs on this machine, "
        "or HOST:PORT; none: a Ray instance of the run's own, on this machine)",
        non_empty(),
    ),
    "game_cpus": (
        1.0,
        "--engine ray: CPUs each game process takes on its machine",
        greater_than(0),
    ),
    "game_resource": (
        None,
        "--engine ray: a custom Ray resource each game process needs one of, to keep games "
        "on the machines that have it (e.g. sc2, given by ray start --resources)",
        non_empty(),
    ),
}
#: Their names: the settings tables and flags of a game other than Gymnasium leave them out.
SHARED = tuple(SHARED_SETTINGS)


def shared_setting(name: str) -> Any:
    """A new dataclass field for the shared run setting ``name`` (a key of
    :data:`SHARED_SETTINGS`): each settings class needs a field object of its own."""
    default, help_text, allowed = SHARED_SETTINGS[name]
    return setting(default, help_text, allowed)


def check_engine_settings(config: Any) -> None:
    """The Ray engine's own settings need ``engine = "ray"``: without it they would be
    ignored without a word.

    Raises:
        SettingsError: which settings, and what to add.
    """
    ray_only = {"address": config.address, "game_resource": config.game_resource}
    given = [name for name, value in ray_only.items() if value is not None]
    if config.engine != "ray" and given:
        raise SettingsError(
            f"{' and '.join(given)} set the Ray engine's games: add --engine ray "
            '(or engine = "ray" in [run])'
        )


def seeded(learner: LearnerSettings, seed: int | None) -> LearnerSettings:
    """The learner's settings with the run's ``seed`` when they have no seed of their own."""
    if seed is None or learner.seed is not None:
        return learner
    return dataclasses.replace(learner, seed=seed)


def default_actors() -> int:
    """One core for the learner, the rest for games (at least one)."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class RunConfig:
    """``bgtrain run`` on a Gymnasium game (or ``package.module:factory``)."""

    env: str = setting(
        DEFAULT_ENV, "Gymnasium id, or package.module:factory for your own game", non_empty()
    )
    actors: int | None = shared_setting("actors")
    root: Path = shared_setting("root")  # noqa: RUF009 (a dataclasses.field)
    games: int | None = shared_setting("games")
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
    seed: int | None = shared_setting("seed")
    max_waiting: int | None = setting(
        None,
        "a game process pauses between games while this many games wait for the learner "
        f"(none: {DEFAULT_MAX_WAITING}; 0: never pause)",
        at_least(0),
    )
    max_game_steps: int | None = setting(
        None,
        "a game still going after this many steps is saved as cut short, and an evaluation "
        "game stops there too (none: the game's own limit, else "
        f"{DEFAULT_STEP_LIMIT}): a game that never ends never becomes one huge file",
        at_least(1),
    )
    spare_actor: bool = setting(
        True,
        "one game process more, playing only while the learner idles with nothing to train "
        "on (a slow game): every core busy, and a fast game's learner keeps its core",
    )
    engine: str = shared_setting("engine")
    address: str | None = shared_setting("address")
    game_cpus: float = shared_setting("game_cpus")
    game_resource: str | None = shared_setting("game_resource")
    #: The learner's settings (flags of their own, the ``[learner]`` table).
    learner: LearnerSettings = field(default_factory=LearnerSettings)

    def __post_init__(self) -> None:
        check_settings(self)  # every range as declared above: refused before anything starts
        check_engine_settings(self)

    @property
    def waiting_limit(self) -> int | None:
        """Games waiting before a game process pauses (``None``: it never pauses)."""
        waiting = DEFAULT_MAX_WAITING if self.max_waiting is None else self.max_waiting
        return waiting or None


def run_settings_table() -> str:
    """The README's table of the run's settings (a test keeps it equal to this)."""
    return markdown_table(RunConfig, exclude=NESTED)
