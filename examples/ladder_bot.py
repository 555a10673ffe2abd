"""The example Zerg bot on the AI Arena ladder: it learns between ladder games.

AI Arena starts a bot as ``python run.py --GamePort N --StartPort N --LadderServer HOST
--OpponentId ID [--RealTime]``: this file is that ``run.py`` (README, "StarCraft II on the
AI Arena ladder", says how to package it). Each game is saved into the bot's ``data/``
folder as it goes, a learner trains there in the background, and an opening is chosen
per opponent.

Without the ladder's arguments it plays one game against the built-in AI, with the same
``data/`` folder (needs StarCraft II and its ladder maps):

    python examples/ladder_bot.py
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The bot's folder: AI Arena keeps its ``data/`` between games (and may start the bot
#: from another working directory).
BOT_DIR = Path(__file__).resolve().parent
#: bgtrain and the few packages the ladder lacks, carried in the bot's zip (README).
LIB = BOT_DIR / "lib"
if LIB.is_dir():
    sys.path.insert(0, str(LIB))

from bgtrain.integrations.sc2.ladder import (  # noqa: E402 (after the bot's lib/)
    LadderArguments,
    ladder_arguments,
    run_ladder_game,
)
from bgtrain.integrations.sc2.settings import LadderSettings  # noqa: E402

SETTINGS = LadderSettings(data_dir=BOT_DIR / "data")
#: The game against the built-in AI when no ladder started this process.
LOCAL_MAP = "AbyssalReefLE"


def make_bot(settings: LadderSettings = SETTINGS):
    """burnysc2's player: the example Zerg bot in ladder mode."""
    from sc2.data import Race
    from sc2.player import Bot

    from bgtrain.integrations.sc2.zerg_bot import ZergBot

    return Bot(Race.Zerg, ZergBot(ladder=settings), name="bgtrain")


def play_local(player) -> None:
    from sc2 import maps
    from sc2.data import Difficulty, Race
    from sc2.main import run_game
    from sc2.player import Computer

    run_game(maps.get(LOCAL_MAP), [player, Computer(Race.Random, Difficulty.Easy)])


def main(argv: list[str] | None = None) -> int:
    args: LadderArguments = ladder_arguments(argv)
    player = make_bot()
    try:
        if args.on_ladder:
            try:
                result = run_ladder_game(player, args)
            except OSError as exc:  # aiohttp's connection errors are OSErrors
                print(f"error: could not join the ladder's game: {exc}", file=sys.stderr)
                return 1
            print(f"{result} against opponent {args.OpponentId}")
        else:
            from bgtrain.integrations.sc2.game import StarCraftNotFoundError, find_starcraft

            try:
                find_starcraft()  # burnysc2 itself would end with a traceback
            except StarCraftNotFoundError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            play_local(player)
    finally:
        # A game that ended without on_end (an error, a lost connection) is saved as cut
        # short; an ended one is already saved and this does nothing.
        player.ai.abandon_game("the game was left before its end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
