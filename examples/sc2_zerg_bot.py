"""A Zerg bot for StarCraft II (burnysc2 7) that learns which strategy to play.

Every few game seconds the newest model picks one of five strategies from what the bot
sees (see ``bgtrain.integrations.sc2``); the bot's class, ``ZergBot``, says how each one
is played. It ships inside bgtrain as ``bgtrain.integrations.sc2.zerg_bot`` (the default
bot of ``bgtrain run --game sc2``): read it there, or copy it as the start of your own.

    ECONOMY     drones and new hatcheries; the army stays home
    AGGRESSIVE  an early spawning pool, zerglings with speed, attack once a group is ready
    DEFENSIVE   queens, spine crawlers and +1 carapace at home; the army stays home
    TECH        gas, lair, roach warren and hydralisk den, roaches and hydras, upgrades
    ALL_IN      no more drones: every larva becomes a zergling or roach, all of it attacks

and plays the chosen one as a player would: held for 20 game seconds (or until its goal
is met), attacks as a group with hysteresis, overlords ahead of need, queens that inject
and defend, new bases under every strategy but ALL_IN.

Play one game against the built-in AI (needs StarCraft II and its ladder maps):

    python examples/sc2_zerg_bot.py

or let bgtrain play game after game and train between them:

    bgtrain run --game sc2 --bot examples/sc2_zerg_bot.py:ZergBot
"""

from __future__ import annotations

import sys

from bgtrain.integrations.sc2.zerg_bot import ZergBot

__all__ = ["ZergBot"]


def main() -> int:
    """One game against the easy built-in AI on Abyssal Reef."""
    from sc2 import maps
    from sc2.data import Difficulty, Race
    from sc2.main import run_game
    from sc2.player import Bot, Computer

    from bgtrain.integrations.sc2.game import StarCraftNotFoundError, find_starcraft

    try:
        find_starcraft()  # burnysc2 itself would end with a traceback
    except StarCraftNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    run_game(
        maps.get("AbyssalReefLE"),
        [Bot(Race.Zerg, ZergBot()), Computer(Race.Random, Difficulty.Easy)],
        realtime=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
