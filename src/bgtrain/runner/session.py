"""``bgtrain run``: games in processes, the learner in its own process, one console.

The flow in one place: start the learner (it takes the root's lock), start the game
processes, then follow the games until a stop condition (games, minutes, solved,
Ctrl+C): progress line, statistics block, greedy evaluations of new models. Stopping
saves the games in progress as cut short, lets the learner finish or return its batch,
and waits for every process. The parts are each in their own module: where the
processes run (:mod:`~bgtrain.runner.engine`), what is counted
(:mod:`~bgtrain.runner.accounting`), when models are evaluated
(:mod:`~bgtrain.runner.evaluations`), what is said (:mod:`~bgtrain.runner.console`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import TextIO

from bgtrain.common.settings import build_settings
from bgtrain.errors import InvalidModelError, ModelNotFoundError, SettingsError
from bgtrain.game.gymnasium_games import check_model_fits, game_info
from bgtrain.learn.settings import LearnerSettings
from bgtrain.presets import preset_settings
from bgtrain.runner.accounting import Accounts, RunSummary
from bgtrain.runner.actor import ActorConfig, Report
from bgtrain.runner.console import (
    STATISTICS_EVERY_GAMES,
    STATISTICS_MIN_INTERVAL_S,
    Console,
    RunConsole,
    learner_started_lines,
    playing_line,
    plural,
    progress_line,
    statistics_block,
    summary_block,
)
from bgtrain.runner.engine import (
    INTERRUPTED_EXIT_CODE,
    Engine,
    Interrupts,
    engine_for,
    interrupts,
)
from bgtrain.runner.evaluations import EvalSchedule
from bgtrain.runner.settings import RunConfig, default_actors, seeded
from bgtrain.store.counters import read_counters
from bgtrain.store.events import RunEvent, append_event, now_iso
from bgtrain.store.models import ModelStore
from bgtrain.store.root import TrainingRoot
from bgtrain.store.spool import Spool

__all__ = [
    "Run",
    "RunConfig",
    "RunSummary",
    "actor_seed",
    "run",
]

logger = logging.getLogger(__name__)

#: The run's loop waits at most this long for reports before it looks at the rest.
REPORT_WAIT_S = 0.1
#: Game process ``i`` of a run seeded ``s`` is seeded ``s * ACTOR_SEED_STRIDE + i``.
ACTOR_SEED_STRIDE = 1000


def actor_seed(seed: int | None, actor_id: int) -> int | None:
    """The seed of game process ``actor_id`` in a run seeded ``seed`` (``None``: random):
    no two processes of a run share one, and runs seeded 1 and 2 play other games."""
    return None if seed is None else seed * ACTOR_SEED_STRIDE + actor_id


class Run:
    """One ``bgtrain run``. ``console`` receives its lines, the learner's too (default:
    this module's logger, at INFO); ``engine`` runs the learner and the games (default:
    the one ``config.engine`` names, :func:`~bgtrain.runner.engine.engine_for`);
    ``terminal``: a stream on a terminal where the progress line is rewritten in place;
    ``statistics``: the seed's periodic STATISTICS blocks (``bgtrain run --no-verbose``
    turns them off: the progress line and the summary stay)."""

    def __init__(
        self,
        config: RunConfig,
        console: Console | None = None,
        engine: Engine | None = None,
        terminal: TextIO | None = None,
        *,
        statistics: bool = True,
    ) -> None:
        self.config = config
        self.root = TrainingRoot.at(config.root)
        self.engine: Engine = engine or engine_for(config)
        self.info = game_info(config.env)
        self.summary = RunSummary(model_path=self.root.model_file)
        self.store = ModelStore(self.root)
        self.out = RunConsole(console or logger.info, terminal)
        #: Every line but the progress line goes here: it clears the progress line first.
        self.console: Console = self.out.line
        self.statistics = statistics
        self.accounts = Accounts(self.root, config.env, self.console, self.summary)
        self.evaluations = EvalSchedule(config, self.info.reward_threshold, self.root)
        self._last_statistics = -math.inf
        self._started = time.monotonic()

    # ------------------------------------------------------------------ before it starts

    def announce_preset(self) -> None:
        """Say which of the game's preset settings are in effect (see bgtrain.presets)."""
        c = self.config
        # Only what is in effect: flags, --config or a RunConfig made in Python may differ.
        given = preset_settings(c.env)
        as_settings = build_settings(LearnerSettings, given)  # the file's values, converted
        preset = {
            name: value
            for name, value in given.items()
            if getattr(c.learner, name) == getattr(as_settings, name)
        }
        if preset:
            shown = ", ".join(f"{name}={value}" for name, value in preset.items())
            self.console(
                f"[INFO] Settings preset for {c.env}: {shown} (src/bgtrain/presets/"
                f"{c.env}.toml; --config and flags override it)"
            )

    def check_game_fits(self) -> None:
        """Refuse, before anything starts, a game the root's model (or ``--n-actions``)
        does not fit: its games would die in numpy, or be trained into the wrong model."""
        n_actions = self.config.learner.n_actions
        if n_actions is not None and n_actions != self.info.n_actions:
            raise SettingsError(
                f"n_actions = {n_actions} does not fit {self.config.env}, which has "
                f"{self.info.n_actions} actions; leave it unset (taken from the games)"
            )
        try:
            model = self.store.load()
        except (ModelNotFoundError, InvalidModelError):  # none yet, or the learner's to report
            return
        check_model_fits(model.meta, self.info, self.config.root)

    def _actor_configs(self, actors: int) -> list[ActorConfig]:
        c = self.config
        configs = [
            ActorConfig(
                self.root.path,
                c.env,
                i,
                seed=actor_seed(c.seed, i),
                max_waiting=c.waiting_limit,
                max_game_steps=c.max_game_steps,
                limits=c.learner.size_limits,
            )
            for i in range(actors)
        ]
        if c.spare_actor:
            spare = dataclasses.replace(
                configs[-1], actor_id=actors, seed=actor_seed(c.seed, actors), spare=True
            )
            configs.append(spare)
        return configs

    # ------------------------------------------------------------------ the run

    def run(self) -> RunSummary:
        """Play and train until a stop condition; the summary says which, and how it went.

        Raises:
            SettingsError: the game does not fit the root's model or ``n_actions``.
            BgtrainError: the learner could not start (its own message).
            OSError: the root or ``metrics.jsonl`` cannot be written.
        """
        self.check_game_fits()
        self.root.ensure()
        with self.out.clearing_logs():
            self._start_learner()
            actors = self.config.actors or default_actors()
            self._record_start(actors)
            self.announce_preset()
            self.console(playing_line(self.config, actors, self.info.reward_threshold))
            with interrupts(self.engine, self.console) as signals:
                try:
                    self.engine.start_games(self._actor_configs(actors), self.config.games)
                    self._follow(signals)
                finally:
                    self._stop()
            self.accounts.check_refusals()
            self.summary.elapsed_s = time.monotonic() - self._started
            self.summary.last_version = self.store.latest_version()
            self.out.block(summary_block(self.summary))
        return self.summary

    def _record_start(self, actors: int) -> None:
        """The run's first line in metrics.jsonl: the monitor shows its engine."""
        c = self.config
        event = RunEvent(
            t=time.time(),
            time=now_iso(),
            env=c.env,
            engine=c.engine,
            address=c.address,
            actors=actors,
        )
        try:
            append_event(self.root, event)
        except OSError as exc:  # the run goes on: the files on disk hold the truth
            logger.warning("could not write the run's start to %s: %s", self.root.metrics, exc)

    def _start_learner(self) -> None:
        # The learner's lines come to the run's console: on a terminal, a line another
        # process wrote would glue onto the progress line.
        settings = seeded(self.config.learner, self.config.seed)
        self.engine.start_learner(self.root.path, settings, self.console)
        for line in learner_started_lines(self.root):
            self.console(line)

    def _follow(self, signals: Interrupts) -> None:
        c = self.config
        deadline = None if c.minutes is None else self._started + c.minutes * 60
        while True:
            if signals.count:
                self.summary.stop("interrupted", INTERRUPTED_EXIT_CODE)
                return
            self._account(self.engine.reports(REPORT_WAIT_S))
            self._progress()
            if self._stopping(deadline):
                return
            self._maybe_evaluate()

    def _stopping(self, deadline: float | None) -> bool:
        """A stop condition holds (the summary then says which, unless it is an error:
        see :meth:`Accounts.check_refusals`)."""
        s = self.summary
        if s.error is not None:
            return True
        if s.solved:
            s.stop(f"solved ({s.solved_by})")
        elif deadline is not None and time.monotonic() >= deadline:
            s.stop(plural(self.config.minutes, "minute"))
        elif not self.engine.games_alive():
            self._games_ended()
        elif not self.engine.learner_alive():
            s.stop("the learner stopped", exit_code=1)
        else:
            return False
        return True

    def _games_ended(self) -> None:
        s = self.summary
        self._account(self.engine.reports(0))
        if s.error is not None:  # a game process said why it stopped
            return
        if self.config.games is not None and s.games >= self.config.games:
            s.stop(plural(s.games, "game"))
        else:  # a game process died: its error is above, on stderr
            s.stop("the game processes stopped unexpectedly", exit_code=1)

    def _stop(self) -> None:
        if self.engine.games_alive():
            self.console("[INFO] Stopping games (a game in progress is saved as cut short)")
        self.engine.stop()
        self._account(self.engine.reports(0))

    def _account(self, reports: list[Report]) -> None:
        for report in reports:
            if self.accounts.account(report) and self._statistics_due():
                self._print_statistics()

    def _maybe_evaluate(self) -> None:
        """Solved means an evaluation passed: the model the run leaves behind is the one
        that plays that well."""
        result = self.evaluations.maybe_evaluate(self.summary.steps, self.accounts.recent)
        if result is None:
            return
        self.summary.last_eval = result
        if self.evaluations.solved(result):
            self.summary.solved = True
            self.summary.solved_by = (
                f"greedy evaluation of model v{result.version}: mean {result.mean:.1f} "
                f"over {plural(len(result.returns), 'game')}"
            )

    # ------------------------------------------------------------------ console

    def _progress(self) -> None:
        now = time.monotonic()
        if not self.out.progress_due(now):
            return
        recent = self.accounts.recent
        version = self.store.latest_version() or 0
        elapsed = now - self._started
        line = progress_line(self.summary.games, version, len(recent), recent.mean, elapsed)
        self.out.progress(line, now)

    def _statistics_due(self) -> bool:
        return (
            self.statistics
            and self.summary.games % STATISTICS_EVERY_GAMES == 0
            and time.monotonic() - self._last_statistics >= STATISTICS_MIN_INTERVAL_S
        )

    def _print_statistics(self) -> None:
        """The seed's block, once the learner has taken a file (before, it is all zeros)."""
        counters = read_counters(self.root)
        if counters.files_processed == 0 and counters.batches_trained == 0:
            return
        self._last_statistics = time.monotonic()
        block = statistics_block(
            counters,
            active=int(self.engine.learner_alive()),
            max_workers=self.config.learner.max_workers,
            version=self.store.latest_version() or 0,
            waiting=Spool(self.root).counts().buffer,
        )
        self.out.block(block)


def run(
    config: RunConfig,
    console: Console | None = None,
    *,
    engine: Engine | None = None,
    terminal: TextIO | None = None,
    statistics: bool = True,
) -> RunSummary:
    """Play ``config.env`` and train until a stop condition (see :class:`Run`)."""
    return Run(config, console, engine, terminal, statistics=statistics).run()
