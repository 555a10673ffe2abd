"""``bgtrain run --game sc2``: real games against the built-in AI, one after another, with
the learner beside them.

burnysc2's ``run_game`` plays each game in this process (:class:`BurnySc2`); the learner
runs where the engine puts it (:mod:`bgtrain.runner.engine`: its start and its error
handshake, its stop), and Ctrl+C or SIGTERM go through the engine's one interrupt
handler: the first ends the game in progress (saved as cut short) and stops cleanly,
the second quits at once.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import random
from pathlib import Path
from typing import Protocol

from bgtrain.errors import BgtrainError

# Through the package: without burnysc2 it says how to install it (the CLI shows that).
from bgtrain.integrations.sc2 import LearningBot
from bgtrain.integrations.sc2.bot import ENV_NAME
from bgtrain.integrations.sc2.cluster import SC2_GAME_LOOP, ClusterGames
from bgtrain.integrations.sc2.settings import Sc2RunConfig
from bgtrain.runner.actor import ActorConfig
from bgtrain.runner.console import STATISTICS_EVERY_GAMES, Console, learner_started_lines
from bgtrain.runner.engine import Engine, Interrupts, engine_for, interrupts
from bgtrain.runner.session import actor_seed
from bgtrain.runner.settings import seeded
from bgtrain.store.counters import read_counters
from bgtrain.store.models import ModelStore
from bgtrain.store.root import TrainingRoot

__all__ = [
    "LADDER_MAPS",
    "BurnySc2",
    "Sc2Games",
    "StarCraftNotFoundError",
    "find_starcraft",
    "load_bot_class",
    "run_sc2",
]

logger = logging.getLogger(__name__)

#: Ladder maps of the recorded observations (bgtrain's tests use their real states).
LADDER_MAPS = (
    "AbyssalReefLE",
    "AcropolisLE",
    "BelShirVestigeLE",
    "CactusValleyLE",
    "HonorgroundsLE",
    "ProximaStationLE",
    "2000AtmospheresAIE",
    "BerlingradAIE",
)
DIFFICULTIES = ("Easy", "Medium")
#: A run stops with an error after this many failed games in a row (a missing map, a
#: broken install): one failure is survived, as the seed's crashes at auto-surrender.
MAX_FAILURES_IN_A_ROW = 3


class StarCraftNotFoundError(BgtrainError):
    """StarCraft II is not installed where burnysc2 looks for it."""


def find_starcraft() -> Path:
    """The game folder burnysc2 will use, or :class:`StarCraftNotFoundError` saying what to do."""
    from sc2 import paths

    base = Path(
        os.path.expanduser(
            os.environ.get("SC2PATH") or paths.get_user_sc2_install() or paths.BASEDIR[paths.PF]
        )
    )
    versions = base / "Versions"
    if versions.is_dir() and any(p.name.startswith("Base") for p in versions.iterdir()):
        return base
    how = (
        "install StarCraft II (free from Battle.net on Windows and macOS; on Linux the "
        "headless build from github.com/Blizzard/s2client-proto, unzipped to ~/StarCraftII) "
        "with its ladder maps in <game folder>/Maps"
    )
    source = "SC2PATH" if os.environ.get("SC2PATH") else "the default place"
    raise StarCraftNotFoundError(
        f"StarCraft II is not installed: no game in {base} (from {source}; no "
        f"Versions/Base* folder there). Set SC2PATH to the game folder, or {how}."
    )


def load_bot_class(spec: str) -> type[LearningBot]:
    """``path/to/file.py:Class`` or ``package.module:Class``.

    Raises:
        BgtrainError: the spec is malformed, the file is missing, or the class is not a
            :class:`LearningBot` subclass.
    """
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise BgtrainError(f"--bot must be FILE.py:Class or module:Class, got {spec!r}")
    if target.endswith(".py"):
        module_spec = importlib.util.spec_from_file_location("bgtrain_user_bot", target)
        if module_spec is None or module_spec.loader is None or not Path(target).is_file():
            raise BgtrainError(f"no bot file at {target}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, LearningBot)):
        raise BgtrainError(f"{spec} is not a LearningBot subclass")
    return cls


class Sc2Games(Protocol):
    """How the games are played: :class:`BurnySc2` on the installed game."""

    def check(self) -> None:
        """Raise a :class:`BgtrainError` saying what to do when no game can be played
        (called before anything starts)."""
        ...

    def play(self, bot: LearningBot, map_name: str, race: str, difficulty: str) -> None:
        """One game of ``bot`` (Zerg) against the built-in AI of ``race`` and
        ``difficulty`` (burnysc2's names) on ``map_name``, to its end; raises whatever
        the game raised."""
        ...


class BurnySc2:
    """The real games: burnysc2's ``run_game`` on the installed StarCraft II."""

    def check(self) -> None:
        find_starcraft()  # a clear message, not burnysc2's traceback

    def play(self, bot: LearningBot, map_name: str, race: str, difficulty: str) -> None:
        from sc2 import maps
        from sc2.data import Difficulty, Race
        from sc2.main import run_game
        from sc2.player import Bot, Computer

        run_game(
            maps.get(map_name),
            [Bot(Race.Zerg, bot), Computer(Race[race], Difficulty[difficulty])],
            realtime=False,
        )


def run_sc2(
    config: Sc2RunConfig,
    console: Console | None = None,
    *,
    engine: Engine | None = None,
    games: Sc2Games | None = None,
) -> int:
    """Play games one after another while the learner trains; returns an exit code.

    ``console`` receives the run's lines (default: this module's logger, at INFO);
    ``engine`` runs the learner (default: the one ``config.engine`` names); ``games`` plays each
    game (default: :class:`BurnySc2`).

    Raises:
        StarCraftNotFoundError: the game is not installed (before anything starts).
        BgtrainError: the bot cannot be loaded, the learner could not start (its own
            message), or :data:`MAX_FAILURES_IN_A_ROW` games failed in a row.
    """
    return _Sc2Run(
        config, console or logger.info, engine or engine_for(config), games or BurnySc2()
    ).run()


class _Sc2Run:
    def __init__(
        self, config: Sc2RunConfig, console: Console, engine: Engine, games: Sc2Games
    ) -> None:
        self.config = config
        self.console = console
        self.engine = engine
        self.games = games
        self.root = TrainingRoot.at(config.root)
        self.played = 0
        self._failures = 0

    def run(self) -> int:
        if self.config.engine == "ray":
            return self._run_on_cluster()
        self.games.check()  # before anything starts
        bot_class = load_bot_class(self.config.bot)
        self.root.ensure()
        self.engine.start_learner(self.root.path, seeded(self.config.learner, self.config.seed))
        for line in learner_started_lines(self.root):
            self.console(line)
        with interrupts(self.engine, self.console, raise_first=True) as signals:
            try:
                self._play_all(bot_class, signals)
            except KeyboardInterrupt:
                self.console("\n[STOP] Training stopped by user.")
            finally:
                signals.raise_first = False  # a first interrupt now must not cut the stop
                self.engine.stop()
        return 0

    def _run_on_cluster(self) -> int:
        """The games on a Ray cluster's machines (:mod:`bgtrain.integrations.sc2.cluster`):
        the game and the bot are checked there, by each game process."""
        c = self.config
        self.root.ensure()
        self.engine.start_learner(self.root.path, seeded(c.learner, c.seed), self.console)
        for line in learner_started_lines(self.root):
            self.console(line)
        games = ClusterGames(self.root, self.engine, self.console)
        spec = f"{type(self.games).__module__}:{type(self.games).__qualname__}"
        configs = [
            ActorConfig(
                self.root.path,
                ENV_NAME,
                i,
                seed=actor_seed(c.seed, i),
                loop=SC2_GAME_LOOP,
                options=(c, spec),
            )
            for i in range(c.actors or 1)
        ]
        with interrupts(self.engine, self.console) as signals:
            try:
                games.start(configs, c.games, c.address)
                games.follow(signals)
            finally:
                self.engine.stop()
        games.account(self.engine.reports(0))
        if games.error is not None:
            raise BgtrainError(games.error)
        if signals.count:
            self.console("\n[STOP] Training stopped by user.")
        return 0

    def _play_all(self, bot_class: type[LearningBot], signals: Interrupts) -> None:
        rng = random.Random(self.config.seed)
        while self.config.games is None or self.played < self.config.games:
            map_name = self.config.map or rng.choice(LADDER_MAPS)
            difficulty = self.config.difficulty or rng.choice(DIFFICULTIES)
            self.console(f"[SELECTED] Map: {map_name}")
            self.console(f"[SELECTED] Opponent Race: {self.config.race}")
            self.console(f"[SELECTED] Difficulty: {difficulty}")
            bot = bot_class(self.root)
            bot.max_game_minutes = (
                self.config.max_game_minutes
            )  # a subclass may take no such keyword
            self._play_one(bot, map_name, difficulty)
            signals.install()  # burnysc2 resets SIGINT to the default after each game
            self.played += 1
            version = ModelStore(self.root).latest_version() or 0
            self.console(f"[GAME #{self.played}] COMPLETED (model v{version})")
            if self.played % STATISTICS_EVERY_GAMES == 0:
                c = read_counters(self.root)
                self.console(
                    f"[BACKGROUND LEARNING] STATISTICS: Experience Files Processed: "
                    f"{c.files_processed}, Batch Training Runs: {c.batches_trained}"
                )

    def _play_one(self, bot: LearningBot, map_name: str, difficulty: str) -> None:
        """One game; a game that fails is saved as cut short and survived, unless it is
        the :data:`MAX_FAILURES_IN_A_ROW`-th in a row."""
        try:
            self.games.play(bot, map_name, self.config.race, difficulty)
        except KeyboardInterrupt:
            bot.abandon_game("stopped by the user")
            raise
        except Exception as exc:  # the seed lost whole runs to such errors: keep going
            self.console(f"[ERROR] Game #{self.played + 1} failed: {exc}")
            bot.abandon_game(f"the game failed: {exc}")
            self._failures += 1
            if self._failures >= MAX_FAILURES_IN_A_ROW:
                raise BgtrainError(
                    f"{self._failures} games in a row failed (last: {exc}); check the game "
                    f"install and that the map {map_name!r} is in its Maps folder"
                ) from exc
        else:
            self._failures = 0
        finally:
            bot.abandon_game("the game was left before its end")
