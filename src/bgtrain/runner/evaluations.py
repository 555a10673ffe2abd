"""When a run evaluates the newest model greedily, and the evaluation itself.

Two schedules: by default, once the recent games are half-way to the game's reward
threshold (from the lowest mean so far: see :func:`half_way`), each new model at most
every :data:`EVAL_MIN_INTERVAL_S`, and at once when the recent games reach it; or, with
``eval_every_steps``, once per window of that many game steps, like Stable-Baselines3's
``EvalCallback``. Each evaluation is written to ``metrics.jsonl`` as an ``eval`` event.
"""

from __future__ import annotations

import math
import time

from bgtrain.game.evaluation import EvalResult, evaluate
from bgtrain.game.policy import Policy
from bgtrain.runner.accounting import RecentGames
from bgtrain.runner.settings import RunConfig
from bgtrain.store.events import append_event
from bgtrain.store.models import ModelStore
from bgtrain.store.root import TrainingRoot

#: Greedy evaluations cost CPU the games and learner share: at most one per this many s.
EVAL_MIN_INTERVAL_S = 2.0
#: Evaluation games are seeded apart from the games played (``seed + this + n``, n the
#: evaluation games played before), so that each evaluation plays new games.
EVAL_SEED_OFFSET = 10_000


def half_way(mean: float, lowest: float, threshold: float) -> bool:
    """True once ``mean`` is half-way from ``lowest`` (the lowest mean so far) to
    ``threshold``: the same gate for any threshold sign. CartPole-v1 (from ~20 to 475)
    opens at ~248; Acrobot-v1 (from -500 to -100) at -300, where ``threshold / 2`` (-50)
    lay above the threshold itself and never opened. A run already past the threshold
    opens at the threshold."""
    start = min(lowest, threshold)
    return mean >= start + (threshold - start) / 2


class EvalSchedule:
    """Evaluates the newest model of ``root`` when the schedule says so (see the module)."""

    def __init__(self, config: RunConfig, threshold: float | None, root: TrainingRoot) -> None:
        self.config = config
        self.threshold = threshold
        self.root = root
        self.store = ModelStore(root)
        self._last_version: int | None = None
        self._last_time = -math.inf
        self._evaluations = 0
        self._next_steps = config.eval_every_steps or 0

    def maybe_evaluate(self, steps: int, recent: RecentGames) -> EvalResult | None:
        """The evaluation of the newest model if one is due after ``steps`` game steps
        played with ``recent`` returns, else ``None``."""
        if self.threshold is None or not len(recent):
            return None
        due = self._window_passed(steps) if self.config.eval_every_steps else self._near(recent)
        return self._evaluate(steps) if due else None

    def solved(self, result: EvalResult) -> bool:
        """The evaluation reached the threshold, and the run stops when solved."""
        threshold = self.threshold
        return threshold is not None and self.config.until_solved and result.mean >= threshold

    def _window_passed(self, steps: int) -> bool:
        """Kept with ``until_solved`` off too: it is a schedule, not a stop condition."""
        if steps < self._next_steps:
            return False
        every = self.config.eval_every_steps or 1
        self._next_steps = (steps // every + 1) * every
        return self.store.latest_version() is not None

    def _near(self, recent: RecentGames) -> bool:
        if not self.config.until_solved or self.threshold is None:
            return False
        mean = recent.mean
        if not half_way(mean, recent.lowest_mean, self.threshold):
            return False
        there = recent.full and mean >= self.threshold
        if not there and time.monotonic() - self._last_time < EVAL_MIN_INTERVAL_S:
            return False
        version = self.store.latest_version()
        return version is not None and version != self._last_version

    def _evaluate(self, steps: int) -> EvalResult:
        model = self.store.load()
        self._last_version = model.version
        self._last_time = time.monotonic()
        seed, episodes = self.config.seed, self.config.eval_episodes
        # Each evaluation plays new games (on the fixed schedule one model may be tried twice).
        played = self._evaluations * episodes
        self._evaluations += 1
        result = evaluate(
            Policy.from_model(model),
            self.config.env,
            episodes,
            greedy=True,
            seed=None if seed is None else EVAL_SEED_OFFSET + seed + played,
            max_steps=self.config.max_game_steps,
            root=self.config.root,
        )
        append_event(self.root, result.to_event(steps))
        return result
