"""``bgtrain run --game sc2 --engine ray``: StarCraft II games on a Ray cluster.

Each game process of the cluster (:class:`bgtrain.runner.ray_engine.GameActor`) runs
:func:`run_sc2_games` instead of the Gymnasium loop: game after game of the run's bot
against the built-in AI, its episodes sent to the learner's machine and its models
pulled from it through the engine's :class:`~bgtrain.game.root_access.RootAccess`
(:meth:`LearningBot.reach_root_through`). The run itself, on the learner's machine,
follows their reports (:class:`ClusterGames`). The game machines need StarCraft II and
burnysc2, not torch.

A game machine lost mid-game loses that game (never an episode). A clean stop lets each
game in progress play to its end for up to the engine's stop timeout, then ends it
unsaved: a burnysc2 game cannot be cut short from outside.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from bgtrain.common.imports import imported
from bgtrain.errors import BgtrainError
from bgtrain.game.root_access import RootAccess
from bgtrain.runner.accounting import game_event
from bgtrain.runner.actor import (
    ActorConfig,
    GameProcessError,
    GameReport,
    GameSlots,
    Report,
    ReportSink,
    StopFlag,
)
from bgtrain.runner.console import Console
from bgtrain.runner.engine import Engine, Interrupts
from bgtrain.store.events import RunEvent, append_event, now_iso
from bgtrain.store.models import ModelStore
from bgtrain.store.root import TrainingRoot

__all__ = ["SC2_GAME_LOOP", "ClusterGames", "run_sc2_games"]

#: The loop a cluster's game process runs for StarCraft II (ActorConfig.loop).
SC2_GAME_LOOP = "bgtrain.integrations.sc2.cluster:run_sc2_games"
#: The run waits this long for reports before it looks at the rest.
REPORT_WAIT_S = 0.5


def run_sc2_games(
    config: ActorConfig,
    stop: StopFlag,
    slots: GameSlots,
    report: ReportSink,
    access: RootAccess | None = None,
) -> None:
    """Play StarCraft II games until ``stop`` or no slot is left (``config.options``: the
    run's :class:`~bgtrain.integrations.sc2.settings.Sc2RunConfig` and the
    ``module:Class`` of its :class:`~bgtrain.integrations.sc2.game.Sc2Games`). A game
    machine without the game, or a bot that cannot be loaded, stops the run with one
    :class:`GameProcessError` line; a failed game is survived unless
    ``MAX_FAILURES_IN_A_ROW`` fail in a row."""
    from bgtrain.integrations.sc2.game import (
        DIFFICULTIES,
        LADDER_MAPS,
        MAX_FAILURES_IN_A_ROW,
        load_bot_class,
    )

    settings, games_spec = config.options
    try:
        games = imported(games_spec)()
        games.check()
        bot_class = load_bot_class(settings.bot)
    except (BgtrainError, ImportError) as exc:  # the game, burnysc2 or the bot is missing
        report.put(GameProcessError(config.actor_id, f"on a game machine: {exc}"))
        return
    rng = random.Random(config.seed)
    failures = 0
    while not stop.is_set() and slots.take():
        map_name = settings.map or rng.choice(LADDER_MAPS)
        difficulty = settings.difficulty or rng.choice(DIFFICULTIES)
        bot = bot_class(settings.root)
        bot.max_game_minutes = settings.max_game_minutes
        if access is not None:
            bot.reach_root_through(access)
        failed = _play(games, bot, map_name, settings.race, difficulty)
        failures = failures + 1 if failed is not None else 0
        if failures >= MAX_FAILURES_IN_A_ROW:
            report.put(
                GameProcessError(
                    config.actor_id,
                    f"{failures} games in a row failed on this game machine (last: "
                    f"{failed}); check its game install and that the map {map_name!r} is "
                    "in its Maps folder",
                )
            )
            return
        if bot.last_game is not None:
            report.put(_report_of(config.actor_id, bot.last_game))


def _play(games: Any, bot: Any, map_name: str, race: str, difficulty: str) -> Exception | None:
    """One game to its end; a game that failed is saved as cut short and its error
    returned (the seed lost whole runs to such errors: the next game starts)."""
    try:
        games.play(bot, map_name, race, difficulty)
        return None
    except Exception as exc:
        bot.abandon_game(f"the game failed: {exc}")
        return exc
    finally:
        bot.abandon_game("the game was left before its end")


def _report_of(actor_id: int, game: Any) -> GameReport:
    return GameReport(
        actor_id,
        game.total_reward,
        game.steps,
        game.policy_version,
        game.outcome,
        game.terminated,
        time.time(),
    )


class ClusterGames:
    """The run's side: start the cluster's game processes, then say each game as it is
    reported, with the seed's ``[GAME #N] COMPLETED`` line, until the budget is spent,
    the games or the learner stop, or an interrupt."""

    def __init__(self, root: TrainingRoot, engine: Engine, console: Console) -> None:
        self.root = root
        self.engine = engine
        self.console = console
        self.played = 0
        self.error: str | None = None
        self._models = ModelStore(root)  # one store: its version check is a stat while unchanged

    def start(
        self, configs: Sequence[ActorConfig], max_games: int | None, address: str | None
    ) -> None:
        """Start the games, the run's start first in metrics.jsonl (the monitor shows
        its engine)."""
        start = RunEvent(
            t=time.time(), time=now_iso(), env="sc2", engine="ray", address=address,
            actors=len(configs),
        )  # fmt: skip
        append_event(self.root, start)
        self.engine.start_games(configs, max_games)

    def follow(self, signals: Interrupts) -> None:
        """Until the games end, an error, the learner stops, or an interrupt. The run
        says :attr:`error` once, as its ``error:`` line."""
        while not signals.count and self.error is None:
            self.account(self.engine.reports(REPORT_WAIT_S))
            if not self.engine.games_alive():
                break
            if not self.engine.learner_alive():
                self.error = "the learner stopped (its own error is above)"
        self.account(self.engine.reports(0))

    def account(self, reports: list[Report]) -> None:
        for report in reports:
            if isinstance(report, GameProcessError):
                self.error = self.error or report.message
            elif isinstance(report, GameReport):
                self._played(report)
            else:
                self.console(f"[ERROR] Game {report.name} was not saved: {report.reason}")

    def _played(self, report: GameReport) -> None:
        self.played += 1
        version = self._models.latest_version() or 0
        where = f" on {report.machine}" if report.machine else ""
        self.console(f"[GAME #{self.played}] COMPLETED (model v{version}){where}: {report.outcome}")
        append_event(self.root, game_event(report))
