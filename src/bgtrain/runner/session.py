"""``bgtrain run``: games in processes, the learner in its own process, one console.

The whole flow in one place: start the learner (it takes the root's lock), start the
fleet of game processes, then follow the games: progress line, the seed's statistics
block, greedy evaluations of new models, and the stop conditions (games, minutes,
solved, Ctrl+C). Stopping saves the games in progress as cut short, lets the learner
finish or return its batch, and waits for every process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing as mp
import os
import queue
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bgtrain.common.settings import (
    at_least,
    build_settings,
    check_settings,
    checked,
    greater_than,
    non_empty,
)
from bgtrain.errors import BgtrainError, InvalidModelError, ModelNotFoundError, SettingsError
from bgtrain.game.evaluation import EvalResult, evaluate
from bgtrain.game.gymnasium_games import DEFAULT_ENV, check_model_fits, game_info
from bgtrain.game.policy import Policy
from bgtrain.learn.reporting import append_metrics
from bgtrain.learn.settings import SEED_RANGE, LearnerSettings
from bgtrain.presets import preset_settings
from bgtrain.runner.actor import ActorConfig, GameProcessError, GameReport, Report, UnsavedGame
from bgtrain.runner.fleet import Fleet, LocalFleet
from bgtrain.runner.learner_process import learner_process_main
from bgtrain.store.counters import read_counters
from bgtrain.store.fs import remove_writer_temps
from bgtrain.store.models import ModelStore
from bgtrain.store.root import DEFAULT_ROOT, TrainingRoot
from bgtrain.store.spool import Spool

RULE = "=" * 70
#: Games whose mean return is shown and tested against the reward threshold.
RECENT_GAMES = 20
#: Games waiting in the buffer before a game process pauses (``--max-waiting``). A game
#: played on a model a few versions old teaches more than one played long ago: with 20
#: waiting (and no step limit per batch) CartPole took 1.6 times the game steps to solve
#: (docs/LEARNING.md).
DEFAULT_MAX_WAITING = 4
#: Greedy evaluations cost CPU the games and learner share: at most one per this many s.
EVAL_MIN_INTERVAL_S = 2.0
#: The run stops with an error after this many refused games in a row (a game that
#: returns NaN or values of the wrong size every time cannot be trained on).
MAX_REFUSED_IN_A_ROW = 10
#: Refused games printed one line each; more are only counted (in the summary).
MAX_REFUSED_LINES = 10


def default_actors() -> int:
    """One core for the learner, the rest for games (at least one)."""
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class RunConfig:
    """``bgtrain run``: each field is a flag of the same name."""

    #: Gymnasium id, or package.module:factory for a custom game.
    env: str = checked(DEFAULT_ENV, non_empty())
    #: Game processes (default: the cores minus one for the learner).
    actors: int | None = checked(None, at_least(1))
    #: The training root.
    root: Path = DEFAULT_ROOT
    #: Stop after this many games (default: no limit).
    games: int | None = checked(None, at_least(1))
    #: Stop after this many minutes (default: no limit).
    minutes: float | None = checked(None, greater_than(0))
    #: Stop when solved: a greedy evaluation of the latest model reaches the env's reward
    #: threshold (tried as the mean of the recent games nears it).
    until_solved: bool = True
    #: Games of each greedy evaluation.
    eval_episodes: int = checked(10, at_least(1))
    #: Evaluate the latest model every this many game steps instead, on a fixed schedule
    #: like Stable-Baselines3's EvalCallback (none: as the recent games near the threshold).
    eval_every_steps: int | None = checked(None, at_least(1))
    #: Seed of the games and of the network (default: random).
    seed: int | None = checked(None, SEED_RANGE)
    #: A game process pauses between games while this many wait in the buffer
    #: (default: DEFAULT_MAX_WAITING; 0: never pause).
    max_waiting: int | None = checked(None, at_least(0))
    #: A game still going after this many steps is stopped and saved as cut short, as is
    #: an evaluation game (default: the game's own limit, e.g. CartPole-v1's 500, else
    #: 100,000): a game that never ends never becomes one huge file.
    max_game_steps: int | None = checked(None, at_least(1))
    #: One game process more that plays only while the learner idles with nothing to
    #: train on (a slow game): every core busy, and a fast game's learner keeps its core.
    spare_actor: bool = True
    #: The learner's settings.
    learner: LearnerSettings = field(default_factory=LearnerSettings)

    def __post_init__(self) -> None:
        check_settings(self)  # every range as declared above: refused before anything starts


@dataclass
class RunSummary:
    #: Games played: saved, refused or not written (each accounted for below).
    games: int = 0
    #: Game steps played (cut-short and refused games included).
    steps: int = 0
    #: Games refused (a GameStepError: NaN, infinite, too large or wrongly sized values),
    #: not saved; and the last reason.
    refused: int = 0
    last_refusal: str = ""
    #: Games the recorder could not write (disk full...); and the last reason.
    unsaved: int = 0
    last_unsaved: str = ""
    #: Why the run stopped in error (the CLI prints it as one ``error:`` line).
    error: str | None = None
    first_version: int | None = None
    last_version: int | None = None
    best_mean_return: float = -math.inf
    solved: bool = False
    solved_by: str | None = None
    elapsed_s: float = 0.0
    last_eval: EvalResult | None = None
    stop_reason: str = ""
    model_path: Path | None = None
    exit_code: int = 0


class _Interrupts:
    """First Ctrl+C/SIGTERM: stop cleanly. Second: quit at once."""

    def __init__(self, on_second: Callable[[], None]) -> None:
        self.count = 0
        self._on_second = on_second
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Interrupts:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.count > 1:
            self._on_second()

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Run:
    def __init__(
        self,
        config: RunConfig,
        console: Callable[[str], None] = print,
        fleet: Fleet | None = None,
    ) -> None:
        self.config = config
        self.root = TrainingRoot.at(config.root)
        self.console = console
        self.fleet = fleet or LocalFleet()
        self.info = game_info(config.env)
        self.summary = RunSummary(model_path=self.root.model_file)
        self.recent: deque[float] = deque(maxlen=RECENT_GAMES)
        self.store = ModelStore(self.root)
        self._ctx = mp.get_context("spawn")
        self._learner_stop = self._ctx.Event()
        self._learner_status: Any = self._ctx.Queue()
        self._learner: Any = None
        self._tty = sys.stdout.isatty()
        self._last_progress = 0.0
        self._last_stats_block = -math.inf
        self._last_eval_version: int | None = None
        self._last_eval_time = -math.inf
        self._evaluations = 0
        self._next_eval_steps = config.eval_every_steps or 0
        #: The lowest mean of the recent games so far: where "half-way to the threshold"
        #: starts from, whatever the threshold's sign.
        self._lowest_mean = math.inf
        self._refused_in_a_row = 0
        self._started = time.monotonic()

    # ------------------------------------------------------------------ processes

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

    def _start_learner(self) -> None:
        settings = self.config.learner
        if self.config.seed is not None and settings.seed is None:
            settings = dataclasses.replace(settings, seed=self.config.seed)
        self._learner = self._ctx.Process(
            target=learner_process_main,
            args=(self.root.path, settings, self._learner_stop, self._learner_status),
            name="bgtrain-learner",
            daemon=True,
        )
        self._learner.start()
        while True:
            try:
                kind, payload = self._learner_status.get(timeout=0.5)
                break
            except queue.Empty:
                if not self._learner.is_alive():
                    raise BgtrainError("the learner process died while starting") from None
        if kind == "error":
            self._learner.join(10)
            raise BgtrainError(payload)

    def _stop_learner(self) -> None:
        if self._learner is None:
            return
        self._learner_stop.set()
        self._learner.join(60)
        if self._learner.is_alive():
            self._learner.terminate()
            self._learner.join(5)

    def _kill_everything(self) -> None:
        self.console("\n[STOP] Second interrupt: stopping at once (files on disk stay whole)")
        self.fleet.kill()
        if self._learner is not None and self._learner.is_alive():
            self._learner.kill()
        # A game killed mid-write leaves its dot-temp: never an episode, and its writer
        # is gone for good, so it is removed now rather than left for the age sweep.
        killed = self.fleet.pids() + ([self._learner.pid] if self._learner is not None else [])
        with contextlib.suppress(OSError):
            remove_writer_temps(self.root.buffer, lambda pid, _: pid in killed)
        with contextlib.suppress(OSError, ValueError):  # os._exit does not flush
            sys.stdout.flush()
        os._exit(130)

    # ------------------------------------------------------------------ the run

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

    def run(self) -> RunSummary:
        c = self.config
        self.check_game_fits()
        self.root.ensure()
        self._start_learner()
        self.console("[OK] Background parallel learner initialized and started")
        self.console("[INFO] Experience replay training will run in background")
        self.console(f"[INFO] Monitoring directory: {self.root.buffer}")
        actors = c.actors or default_actors()
        self.announce_preset()
        threshold = self.info.reward_threshold
        self.console(
            f"[INFO] Playing {c.env} with {actors} game process(es)"
            + (" and a spare one while the learner idles" if c.spare_actor else "")
            + "; "
            + (
                f"stops when solved (mean return >= {threshold:g})"
                if c.until_solved and threshold is not None
                else "runs until Ctrl+C"
                if c.games is None and c.minutes is None
                else "runs until its budget is spent"
            )
        )
        max_waiting = DEFAULT_MAX_WAITING if c.max_waiting is None else c.max_waiting
        configs = [
            ActorConfig(
                self.root.path,
                c.env,
                i,
                seed=None if c.seed is None else c.seed * 1000 + i,
                max_waiting=max_waiting or None,
                max_game_steps=c.max_game_steps,
            )
            for i in range(actors)
        ]
        if c.spare_actor:
            configs.append(dataclasses.replace(configs[-1], actor_id=actors, spare=True))
            configs[-1] = dataclasses.replace(
                configs[-1], seed=None if c.seed is None else c.seed * 1000 + actors
            )
        with _Interrupts(self._kill_everything) as interrupts:
            try:
                self.fleet.start(configs, c.games)
                self._follow(interrupts)
            finally:
                if self.fleet.alive():
                    self.console("[INFO] Stopping games (a game in progress is saved as cut short)")
                self.fleet.stop(timeout=30)
                games = self.fleet.pids()
                remove_writer_temps(self.root.buffer, lambda pid, _: pid in games)
                for report in self.fleet.reports(0):
                    self._account(report)
                self._stop_learner()
        self._check_refusals()
        self.summary.elapsed_s = time.monotonic() - self._started
        self.summary.last_version = self.store.latest_version()
        self._print_summary()
        return self.summary

    def _check_refusals(self) -> None:
        """A run whose every game was refused (or not written) trained nothing: an error."""
        s = self.summary
        if s.error is None and s.games and s.refused + s.unsaved >= s.games:
            last = s.last_refusal or s.last_unsaved
            s.error = f"none of the {s.games} games of {self.config.env} was saved (last: {last})"
        if s.error is not None:
            s.stop_reason = f"error: {s.error}"
            s.exit_code = 1

    def _follow(self, interrupts: _Interrupts) -> None:
        c = self.config
        deadline = None if c.minutes is None else self._started + c.minutes * 60
        while True:
            if interrupts.count:
                self.summary.stop_reason = "interrupted"
                self.summary.exit_code = 130
                return
            for report in self.fleet.reports(0.1):
                self._account(report)
            self._progress()
            if self.summary.error is not None:  # see _check_refusals
                return
            if self.summary.solved:
                self.summary.stop_reason = f"solved ({self.summary.solved_by})"
                return
            if deadline is not None and time.monotonic() >= deadline:
                self.summary.stop_reason = f"{c.minutes:g} minutes"
                return
            if not self.fleet.alive():
                for report in self.fleet.reports(0):
                    self._account(report)
                if self.summary.error is not None:  # a game process said why it stopped
                    return
                if c.games is not None and self.summary.games >= c.games:
                    self.summary.stop_reason = f"{self.summary.games} games"
                else:  # a game process died: its error is above, on stderr
                    self.summary.stop_reason = "the game processes stopped unexpectedly"
                    self.summary.exit_code = 1
                return
            if self._learner is not None and not self._learner.is_alive():
                self.summary.stop_reason = "the learner stopped"
                self.summary.exit_code = 1
                return
            self._maybe_evaluate()

    def _account(self, report: Report) -> None:
        """Count what a game process reports: a game played (saved or refused), a game
        not written after all, or the error that stopped the process."""
        if isinstance(report, GameProcessError):
            if self.summary.error is None:
                self.summary.error = report.message
            return
        if isinstance(report, UnsavedGame):
            self._account_unsaved(report)
            return
        if report.refused:
            self._account_refused(report)
            return
        self._account_game(report)

    def _account_refused(self, report: GameReport) -> None:
        s = self.summary
        s.games += 1
        s.steps += report.length
        s.refused += 1
        s.last_refusal = report.refused
        self._refused_in_a_row += 1
        if s.refused <= MAX_REFUSED_LINES:
            self.console(f"[REFUSED] game of process {report.actor_id} not saved: {report.refused}")
            if s.refused == MAX_REFUSED_LINES:
                self.console("[REFUSED] (further refused games are only counted)")
        append_metrics(
            self.root,
            {
                "event": "game_refused",
                "t": report.finished_at,
                "actor": report.actor_id,
                "length": report.length,
                "policy_version": report.policy_version,
                "reason": report.refused,
            },
        )
        if self._refused_in_a_row >= MAX_REFUSED_IN_A_ROW and s.error is None:
            s.error = (
                f"the last {self._refused_in_a_row} games of {self.config.env} were all "
                f"refused, none saved (last: {report.refused})"
            )

    def _account_unsaved(self, report: UnsavedGame) -> None:
        s = self.summary
        s.unsaved += 1
        s.last_unsaved = f"{report.name}: {report.reason}"
        self.console(f"[ERROR] game {report.name} could not be saved: {report.reason}")
        append_metrics(
            self.root,
            {"event": "game_unsaved", "t": time.time(), "actor": report.actor_id,
             "name": report.name, "reason": report.reason},
        )  # fmt: skip

    def _account_game(self, report: GameReport) -> None:
        s = self.summary
        s.games += 1
        s.steps += report.length
        self._refused_in_a_row = 0
        self.recent.append(report.total_reward)
        self._lowest_mean = min(self._lowest_mean, sum(self.recent) / len(self.recent))
        if report.policy_version is not None and s.first_version is None:
            s.first_version = report.policy_version
        append_metrics(
            self.root,
            {
                "event": "game",
                "time": datetime.now().astimezone().isoformat(timespec="milliseconds"),
                "t": report.finished_at,
                "actor": report.actor_id,
                "return": report.total_reward,
                "length": report.length,
                "outcome": report.outcome,
                "policy_version": report.policy_version,
                "terminated": report.terminated,
            },
        )
        if len(self.recent) == RECENT_GAMES:
            s.best_mean_return = max(s.best_mean_return, sum(self.recent) / len(self.recent))
        if s.games % 5 == 0 and time.monotonic() - self._last_stats_block >= 10:
            self._last_stats_block = time.monotonic()
            self._print_statistics()

    def _maybe_evaluate(self) -> None:
        """Greedy evaluation of new models once the games are half-way to the threshold
        (from the lowest mean so far: see :func:`half_way`); at once when the last games'
        mean reaches it (or on the fixed step schedule of ``eval_every_steps``). Solved
        means this evaluation passed: the model the run leaves behind is the one that
        plays that well."""
        c = self.config
        threshold = self.info.reward_threshold
        if threshold is None or not self.recent:
            return
        if c.eval_every_steps is not None:  # a fixed schedule: kept with --no-until-solved too
            if self.summary.steps < self._next_eval_steps:
                return
            every = c.eval_every_steps
            self._next_eval_steps = (self.summary.steps // every + 1) * every
            if self.store.latest_version() is None:
                return
        else:
            if not c.until_solved:
                return
            mean = sum(self.recent) / len(self.recent)
            if not half_way(mean, self._lowest_mean, threshold):
                return
            there = len(self.recent) == RECENT_GAMES and mean >= threshold
            if not there and time.monotonic() - self._last_eval_time < EVAL_MIN_INTERVAL_S:
                return
            version = self.store.latest_version()
            if version is None or version == self._last_eval_version:
                return
        self._evaluate(threshold)

    def _evaluate(self, threshold: float) -> None:
        model = self.store.load()
        self._last_eval_version = model.version
        self._last_eval_time = time.monotonic()
        seed = self.config.seed
        # Each evaluation plays new games (on the fixed schedule one model may be tried twice).
        offset = self._evaluations * self.config.eval_episodes
        self._evaluations += 1
        result = evaluate(
            Policy.from_model(model),
            self.config.env,
            self.config.eval_episodes,
            greedy=True,
            seed=None if seed is None else 10_000 + seed + offset,
            max_steps=self.config.max_game_steps,
            root=self.config.root,
        )
        self.summary.last_eval = result
        append_metrics(
            self.root,
            {"event": "eval", "t": time.time(), "steps": self.summary.steps, **result.as_dict()},
        )
        if result.mean >= threshold and self.config.until_solved:
            self.summary.solved = True
            self.summary.solved_by = (
                f"greedy evaluation of model v{result.version}: mean {result.mean:.1f} "
                f"over {len(result.returns)} games"
            )

    # ------------------------------------------------------------------ console

    def _progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress < (0.25 if self._tty else 2.0):
            return
        self._last_progress = now
        elapsed = now - self._started
        mean = f"{sum(self.recent) / len(self.recent):.1f}" if self.recent else "-"
        line = (
            f"[RUN] games {self.summary.games} | model v{self.store.latest_version() or 0} | "
            f"mean return (last {len(self.recent)}) {mean} | "
            f"{self.summary.games / elapsed:.1f} games/s | {elapsed:.0f}s"
        )
        if self._tty:
            sys.stdout.write("\r" + line.ljust(100)[:100])
            sys.stdout.flush()
        else:
            self.console(line)

    def _print_statistics(self) -> None:
        counters = read_counters(self.root)
        batches = counters.batches_trained
        if self._tty:
            sys.stdout.write("\n")
        self.console(
            "\n".join(
                [
                    "",
                    RULE,
                    "[BACKGROUND LEARNING] STATISTICS",
                    RULE,
                    f"Experience Files Processed: {counters.files_processed}",
                    f"Batch Training Runs: {batches}",
                    f"Total Training Samples: {counters.total_samples}",
                    f"Average Loss: {counters.loss_sum / batches if batches else 0.0:.4f}",
                    f"Total Processing Time: {counters.total_processing_time:.2f}s",
                    f"Active Workers: {1 if self._learner and self._learner.is_alive() else 0}"
                    f"/{self.config.learner.max_workers}",
                    f"Errors: {counters.errors}",
                    f"Model Version: {self.store.latest_version() or 0}",
                    f"Waiting In Buffer: {Spool(self.root).counts().buffer}",
                    RULE,
                ]
            )
        )

    def _print_summary(self) -> None:
        s = self.summary
        if self._tty:
            sys.stdout.write("\n")
        best = f"{s.best_mean_return:.1f}" if math.isfinite(s.best_mean_return) else "n/a"
        lines = [
            "",
            RULE,
            "[SUMMARY]",
            RULE,
            f"Stopped:            {s.stop_reason}",
            f"Games played:       {s.games} in {s.elapsed_s:.1f}s ({s.steps} steps)",
            *(
                [f"Games refused:      {s.refused}, not saved (last: {s.last_refusal})"]
                if s.refused
                else []
            ),
            *([f"Games not written:  {s.unsaved} (last: {s.last_unsaved})"] if s.unsaved else []),
            f"Model versions:     {s.first_version or 0} -> {s.last_version or 0}",
            f"Best mean return:   {best} (last {RECENT_GAMES} games)",
        ]
        if s.last_eval is not None:
            e = s.last_eval
            lines.append(
                f"Last evaluation:    v{e.version} greedy mean {e.mean:.1f} "
                f"(min {e.min:.0f}, max {e.max:.0f}) over {len(e.returns)} games"
            )
        lines += [
            f"Solved:             {'yes, ' + (s.solved_by or '') if s.solved else 'no'}",
            f"Model:              {s.model_path}",
            RULE,
        ]
        self.console("\n".join(lines))


def half_way(mean: float, lowest: float, threshold: float) -> bool:
    """True once ``mean`` is half-way from ``lowest`` (the lowest mean so far) to
    ``threshold``: the same gate for any threshold sign. CartPole-v1 (from ~20 to 475)
    opens at ~248; Acrobot-v1 (from -500 to -100) at -300, where ``threshold / 2`` (-50)
    lay above the threshold itself and never opened. A run already past the threshold
    opens at the threshold."""
    start = min(lowest, threshold)
    return mean >= start + (threshold - start) / 2


def run(config: RunConfig, console: Callable[[str], None] = print) -> RunSummary:
    return Run(config, console).run()
