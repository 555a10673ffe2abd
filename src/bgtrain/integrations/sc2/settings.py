"""The settings of ``bgtrain run --game sc2``, declared once (see
:mod:`bgtrain.runner.settings`: each field is a flag, a keyword argument and a row of the
README's StarCraft II table).

No burnysc2 here: the CLI builds every flag whether or not the ``[sc2]`` extra is
installed, and a misspelt difficulty or race is refused before the game starts.
"""

from __future__ import annotations

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
from bgtrain.errors import SettingsError
from bgtrain.learn.settings import LearnerSettings
from bgtrain.runner.settings import NESTED, SHARED, check_engine_settings, shared_setting

__all__ = [
    "ALL_DIFFICULTIES",
    "DEFAULT_BOT",
    "LADDER_PLAY",
    "RACES",
    "LadderSettings",
    "Sc2RunConfig",
    "ladder_settings_table",
    "sc2_settings_table",
]

#: The example Zerg bot, shipped inside the package (an installed wheel has no examples/).
DEFAULT_BOT = "bgtrain.integrations.sc2.zerg_bot:ZergBot"
#: burnysc2's Difficulty and Race names (checked before the game starts, without it).
ALL_DIFFICULTIES = (
    "VeryEasy", "Easy", "Medium", "MediumHard", "Hard", "Harder", "VeryHard",
    "CheatVision", "CheatMoney", "CheatInsane",
)  # fmt: skip
RACES = ("Random", "Terran", "Zerg", "Protoss")
#: How the model's strategy is picked on the ladder (see :class:`LadderSettings`).
LADDER_PLAY = ("sampled", "greedy")
#: The strategies a ladder opening may be (``bot.Strategy``'s names, checked without burnysc2).
STRATEGY_NAMES = ("ECONOMY", "AGGRESSIVE", "DEFENSIVE", "TECH", "ALL_IN")


@dataclass(frozen=True)
class Sc2RunConfig:
    """``bgtrain run --game sc2``: StarCraft II games against the built-in AI."""

    root: Path = shared_setting("root")  # noqa: RUF009 (a dataclasses.field)
    bot: str = setting(
        DEFAULT_BOT,
        "the bot: FILE.py:Class or package.module:Class, a LearningBot subclass (the "
        "default is the example Zerg bot)",
        non_empty(),
    )
    games: int | None = shared_setting("games")
    map: str | None = setting(None, "a map name (none: a random ladder map each game)", non_empty())
    difficulty: str | None = setting(
        None,
        "the built-in AI's difficulty (none: Easy or Medium at random each game)",
        one_of(*ALL_DIFFICULTIES),
    )
    race: str = setting("Random", "the built-in AI's race", one_of(*RACES))
    max_game_minutes: float | None = setting(
        30.0,
        "game minutes after which the bot leaves a game still going (a stalemate), saved "
        "as cut short (none: no limit)",
        greater_than(0),
    )
    #: Here the games' seed picks the maps and difficulties not given.
    seed: int | None = shared_setting("seed")
    engine: str = shared_setting("engine")
    address: str | None = shared_setting("address")
    game_cpus: float = shared_setting("game_cpus")
    game_resource: str | None = shared_setting("game_resource")
    actors: int | None = shared_setting("actors")
    #: The learner's settings (flags of their own, the ``[learner]`` table).
    learner: LearnerSettings = field(default_factory=LearnerSettings)

    def __post_init__(self) -> None:
        check_settings(self)
        check_engine_settings(self)
        if self.engine != "ray" and (self.actors or 1) > 1:
            raise SettingsError(
                f"actors {self.actors}: StarCraft II plays one game at a time on this "
                "machine; add --engine ray to play more at once on a Ray cluster"
            )


@dataclass(frozen=True)
class LadderSettings:
    """A bot on the AI Arena ladder (``LearningBot(ladder=LadderSettings())``): its root is
    its ``data/`` folder, the one folder the ladder keeps between games."""

    data_dir: Path = setting(  # noqa: RUF009 (a dataclasses.field)
        Path("data"),
        "the bot's data folder, its training root (the ladder keeps only this, zipped)",
    )
    play: str = setting(
        "sampled",
        "how the model picks a strategy: sampled from its probabilities (it keeps "
        "exploring), or greedy (its most likely one)",
        one_of(*LADDER_PLAY),
    )
    openings: tuple[str, ...] = setting(
        STRATEGY_NAMES,
        "the strategies an opening may be, chosen per opponent by win rate",
        one_of(*STRATEGY_NAMES),
    )
    opening_minutes: float = setting(
        3.0,
        "game minutes the opening is held before the model chooses (0: no opening)",
        at_least(0),
    )
    checkpoint_every: int = setting(
        5,
        "decisions between two saves of the game in progress (a killed bot keeps it)",
        at_least(1),
    )
    budget_mb: float = setting(
        5.0,
        "most MiB of data/: older trained games are folded into ladder/summary.json",
        greater_than(0),
    )
    max_game_minutes: float | None = setting(
        30.0,
        "game minutes after which the bot leaves a stalemate, saved as cut short (none: no limit)",
        greater_than(0),
    )
    background_learning: bool = setting(
        True, "train on data/'s earlier games in a low-priority process during each game"
    )
    learner_nice: int = setting(
        10,
        "how much lower the learner's priority is (os.nice; Windows: below normal)",
        at_least(0, 19),
    )
    learner_stop_s: float = setting(
        10.0,
        "seconds the learner is given at the game's end to finish its batch before it is stopped",
        at_least(0),
    )
    history_size: int = setting(3, "model versions kept in data/models/history/", at_least(1))

    def __post_init__(self) -> None:
        check_settings(self)


def ladder_settings_table() -> str:
    """The README's table of the ladder settings."""
    return markdown_table(LadderSettings)


def sc2_settings_table() -> str:
    """The README's table of the StarCraft II settings (those not shared with a run)."""
    return markdown_table(Sc2RunConfig, exclude=(*SHARED, *NESTED))
