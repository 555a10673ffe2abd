"""``bgtrain run --game sc2``: real games against the built-in AI, one after another, with
the learner in its own process beside them (burnysc2's ``run_game``)."""

from __future__ import annotations

import importlib
import importlib.util
import multiprocessing as mp
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bgtrain.common.settings import at_least, check_settings, checked, non_empty, one_of
from bgtrain.errors import BgtrainError
from bgtrain.integrations.sc2.bot import LearningBot
from bgtrain.learn.settings import SEED_RANGE, LearnerSettings
from bgtrain.runner.learner_process import learner_process_main
from bgtrain.store.counters import read_counters
from bgtrain.store.models import ModelStore
from bgtrain.store.root import DEFAULT_ROOT, TrainingRoot

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
RACES = ("Random", "Terran", "Protoss", "Zerg")
REPO = Path(__file__).resolve().parents[4]
DEFAULT_BOT = f"{REPO / 'examples' / 'sc2_zerg_bot.py'}:ZergBot"


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
    """``path/to/file.py:Class`` or ``package.module:Class``."""
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


#: burnysc2's Difficulty and Race names (checked before the game starts, without it).
ALL_DIFFICULTIES = (
    "VeryEasy", "Easy", "Medium", "MediumHard", "Hard", "Harder", "VeryHard",
    "CheatVision", "CheatMoney", "CheatInsane",
)  # fmt: skip
RACES = ("Random", "Terran", "Zerg", "Protoss")


@dataclass(frozen=True)
class Sc2RunConfig:
    root: Path = DEFAULT_ROOT
    #: The bot: FILE.py:Class or module:Class, a LearningBot subclass.
    bot: str = checked(DEFAULT_BOT, non_empty())
    #: Games to play (default: until Ctrl+C).
    games: int | None = checked(None, at_least(1))
    #: A map name, or a random ladder map each game.
    map: str | None = None
    #: Easy, Medium, ... or a random pick of Easy/Medium each game.
    difficulty: str | None = checked(None, one_of(*ALL_DIFFICULTIES))
    #: The built-in AI's race.
    race: str = checked("Random", one_of(*RACES))
    seed: int | None = checked(None, SEED_RANGE)
    learner: LearnerSettings = field(default_factory=LearnerSettings)

    def __post_init__(self) -> None:
        check_settings(self)


def run_sc2(config: Sc2RunConfig, console: Callable[[str], None] = print) -> int:
    """Play games one after another while the learner trains; returns an exit code."""
    find_starcraft()  # before anything starts: a clear message, not a traceback
    from sc2 import maps
    from sc2.data import Difficulty, Race
    from sc2.main import run_game
    from sc2.player import Bot, Computer

    bot_class = load_bot_class(config.bot)
    root = TrainingRoot.at(config.root).ensure()
    ctx = mp.get_context("spawn")
    stop, status = ctx.Event(), ctx.Queue()
    learner = ctx.Process(
        target=learner_process_main,
        args=(root.path, config.learner, stop, status),
        name="bgtrain-learner",
        daemon=True,
    )
    learner.start()
    kind, payload = status.get(timeout=120)
    if kind == "error":
        learner.join(10)
        raise BgtrainError(payload)
    console("[OK] Background parallel learner initialized and started")
    console("[INFO] Experience replay training will run in background")
    console(f"[INFO] Monitoring directory: {root.buffer}")
    rng = random.Random(config.seed)
    played = failures = 0
    try:
        while config.games is None or played < config.games:
            map_name = config.map or rng.choice(LADDER_MAPS)
            difficulty = config.difficulty or rng.choice(DIFFICULTIES)
            console(f"[SELECTED] Map: {map_name}")
            console(f"[SELECTED] Opponent Race: {config.race}")
            console(f"[SELECTED] Difficulty: {difficulty}")
            bot = bot_class(root)
            try:
                run_game(
                    maps.get(map_name),
                    [Bot(Race.Zerg, bot), Computer(Race[config.race], Difficulty[difficulty])],
                    realtime=False,
                )
            except KeyboardInterrupt:
                bot.abandon_game("stopped by the user")
                raise
            except Exception as exc:  # the seed lost whole runs to such errors: keep going
                console(f"[ERROR] Game #{played + 1} failed: {exc}")
                bot.abandon_game(f"the game failed: {exc}")
                failures += 1
                if failures >= MAX_FAILURES_IN_A_ROW:
                    raise BgtrainError(
                        f"{failures} games in a row failed (last: {exc}); check the game "
                        f"install and that the map {map_name!r} is in its Maps folder"
                    ) from exc
            else:
                failures = 0
            finally:
                bot.abandon_game("the game was left before its end")
            played += 1
            console(f"[GAME #{played}] COMPLETED (model v{ModelStore(root).latest_version() or 0})")
            if played % 5 == 0:
                c = read_counters(root)
                console(
                    f"[BACKGROUND LEARNING] STATISTICS: Experience Files Processed: "
                    f"{c.files_processed}, Batch Training Runs: {c.batches_trained}"
                )
    except KeyboardInterrupt:
        console("\n[STOP] Training stopped by user.")
    finally:
        stop.set()
        learner.join(60)
        if learner.is_alive():
            learner.terminate()
    return 0


__all__ = ["Sc2RunConfig", "StarCraftNotFoundError", "find_starcraft", "run_sc2"]
