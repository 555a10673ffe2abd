"""The settings of ``bgtrain run --game sc2``, declared once (see
:mod:`bgtrain.runner.settings`: each field is a flag, a keyword argument and a row of the
README's StarCraft II table).

No burnysc2 here: the CLI builds every flag whether or not the ``[sc2]`` extra is
installed, and a misspelt difficulty or race is refused before the game starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bgtrain.common.settings import check_settings, markdown_table, non_empty, one_of, setting
from bgtrain.learn.settings import LearnerSettings
from bgtrain.runner.settings import NESTED, SHARED, shared_setting

__all__ = [
    "ALL_DIFFICULTIES",
    "DEFAULT_BOT",
    "RACES",
    "Sc2RunConfig",
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
    #: Here the games' seed picks the maps and difficulties not given.
    seed: int | None = shared_setting("seed")
    #: The learner's settings (flags of their own, the ``[learner]`` table).
    learner: LearnerSettings = field(default_factory=LearnerSettings)

    def __post_init__(self) -> None:
        check_settings(self)


def sc2_settings_table() -> str:
    """The README's table of the StarCraft II settings (those not shared with a run)."""
    return markdown_table(Sc2RunConfig, exclude=(*SHARED, *NESTED))
