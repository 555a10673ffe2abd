"""What a root's event log says about its runs, for ``bgtrain plot`` and its HTML report.

The games (by :class:`~bgtrain.store.events.GameLog`'s rule), the batches, the greedy
evaluations and the collapse guard's restores, with the two axes the pictures share:
*game steps* (cumulative over every game the root played) and *time since the run
started* (seconds, with the pauses between runs left out).

Where a run starts. Several runs on one root append to one ``metrics.jsonl`` and no line
says "a run started", so a start is read off four signs (any one is enough):

- a pause: two events further apart than ``max(RUN_PAUSE_MIN_S, RUN_PAUSE_FACTOR x the
  median interval between games)`` (the factor keeps a slow game, a StarCraft II match of
  20 minutes, from looking like a restart);
- the published model versions restart counting (a root whose ``models/`` was emptied);
- the evaluations' ``steps`` (counted per run) go down;
- the latest learner's start time in ``state/learner.json`` (a restart a minute after a
  stop, too short for a pause, is still marked when it is the latest).

For the last three the start is placed at the longest pause between the two events
that bracket it.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from bgtrain.errors import BgtrainError
from bgtrain.store.events import (
    RECENT_GAMES,
    BatchEvent,
    EvalEvent,
    GameEvent,
    GameLog,
    GuardEvent,
    of_kind,
    read_events,
)
from bgtrain.store.lock import read_holder
from bgtrain.store.models import ModelMeta, ModelStore
from bgtrain.store.root import TrainingRoot

logger = logging.getLogger(__name__)

#: A pause shorter than this is never a new run (a slow batch, an evaluation).
RUN_PAUSE_MIN_S = 300.0
#: A pause longer than this many typical intervals between games is a new run.
RUN_PAUSE_FACTOR = 10.0
#: Outcomes that say nothing about winning (a game with no reward threshold).
NO_OUTCOME = frozenset({None, "", "Unknown"})


class NothingToPlotError(BgtrainError):
    """The root has no training metrics yet."""


@dataclass(frozen=True)
class RunStart:
    """The first event of a run (``t``) and the last one before it (``after``)."""

    t: float
    after: float
    reason: str


@dataclass
class RunHistory:
    """A root's games, batches, evaluations and runs, on the shared axes."""

    root: TrainingRoot
    games: list[GameEvent]
    batches: list[BatchEvent]
    evals: list[EvalEvent]
    guards: list[GuardEvent]
    starts: list[RunStart]
    meta: ModelMeta | None = None
    env: str | None = None
    threshold: float | None = None
    t0: float = 0.0
    #: Each game's end time and the cumulative game steps at its end, in games' order.
    game_t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    game_steps: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def returns(self) -> np.ndarray:
        return np.array([g.return_ or 0.0 for g in self.games], dtype=float)

    @property
    def total_steps(self) -> int:
        return int(self.game_steps[-1]) if len(self.game_steps) else 0

    @property
    def outcomes_vary(self) -> bool:
        """Whether the games' outcomes say something a return does not hide: at least
        two different known outcomes (CartPole's all-Defeat run draws no win rate)."""
        return len({g.outcome for g in self.games} - NO_OUTCOME) > 1

    @property
    def wins(self) -> np.ndarray:
        return np.array([g.outcome == "Victory" for g in self.games], dtype=float)

    def elapsed(self, t: np.ndarray | float) -> np.ndarray:
        """Seconds since the first event, without the pauses between runs."""
        t = np.asarray(t, dtype=float)
        out = t - self.t0
        for start in self.starts:
            out = out - np.clip(t - start.after, 0.0, start.t - start.after)
        return out

    def steps_at(self, t: np.ndarray | float) -> np.ndarray:
        """Cumulative game steps of the games that ended at or before ``t``."""
        if not len(self.game_t):
            return np.zeros(np.shape(t))
        ended = np.searchsorted(np.maximum.accumulate(self.game_t), t, side="right")
        return np.where(ended > 0, self.game_steps[np.maximum(ended - 1, 0)], 0.0)

    def eval_steps(self) -> np.ndarray:
        """Where each evaluation sits on the game-steps axis: its run's first step plus
        the steps it records (counted from its run's start)."""
        out = []
        for e in self.evals:
            before = [s.after for s in self.starts if s.t <= (e.t or 0.0)]
            offset = float(self.steps_at(before[-1])) if before else 0.0
            out.append(offset + e.steps)
        return np.array(out, dtype=float)

    def start_versions(self) -> list[float]:
        """Each run start on the model-version axis: just before its first batch."""
        out = []
        for start in self.starts:
            later = [b.version for b in self.batches if (b.t or 0.0) >= start.t]
            if later:
                out.append(later[0] - 0.5)
        return out

    def best_eval(self) -> EvalEvent | None:
        return max(self.evals, key=lambda e: e.mean, default=None)

    def solved(self) -> bool | None:
        """A greedy evaluation reached the reward threshold (``None``: no threshold)."""
        if self.threshold is None:
            return None
        return any(e.mean >= self.threshold for e in self.evals)

    def rolling_returns(self, n: int = RECENT_GAMES) -> np.ndarray:
        return rolling_mean(self.returns, n)


def rolling_mean(values: np.ndarray, n: int) -> np.ndarray:
    """Mean of the last ``n`` values at each point (fewer at the start)."""
    cumsum = np.cumsum(np.insert(np.asarray(values, dtype=float), 0, 0.0))
    i = np.arange(1, len(values) + 1)
    lo = np.maximum(0, i - n)
    return (cumsum[i] - cumsum[lo]) / (i - lo)


def reward_threshold(env_id: str | None) -> float | None:
    """The Gymnasium spec's ``reward_threshold`` of ``env_id`` (``None`` for a game of
    the user's own, ``module:factory``, whose code the plot does not run)."""
    if not env_id or ":" in env_id:
        return None
    import gymnasium

    try:
        threshold = gymnasium.spec(env_id).reward_threshold
    except gymnasium.error.Error:
        return None
    return None if threshold is None else float(threshold)


def latest_meta(root: TrainingRoot) -> ModelMeta | None:
    """The latest model's self-description, or ``None`` (none yet, or unreadable)."""
    try:
        return ModelStore(root).load().meta
    except BgtrainError as exc:
        logger.info("no model settings for the report: %s", exc)
        return None


def load(root: str | Path | TrainingRoot, env: str | None = None) -> RunHistory:
    """Read ``root``'s events and model. ``env`` names the game whose reward threshold is
    drawn (default: the one the latest model was trained on).

    Raises:
        NothingToPlotError: the root has no game or batch event yet.
    """
    root = TrainingRoot.at(root)
    events = read_events(root)
    games, batches = list(GameLog().extend(events)), of_kind(events, BatchEvent)
    if not games and not batches:
        raise NothingToPlotError(
            f"no training metrics in {root.metrics} yet: run 'bgtrain run' or 'bgtrain learn' first"
        )
    evals = of_kind(events, EvalEvent)
    times = np.sort([e.t for e in events if e.t is not None])
    game_t = np.array([g.t or 0.0 for g in games], dtype=float)
    meta = latest_meta(root)
    env = env or (meta.extra.get("env") if meta else None)
    return RunHistory(
        root=root,
        games=games,
        batches=batches,
        evals=evals,
        guards=of_kind(events, GuardEvent),
        starts=find_run_starts(times, game_t, batches, evals, _learner_start(root)),
        meta=meta,
        env=env,
        threshold=reward_threshold(env),
        t0=float(times[0]) if len(times) else 0.0,
        game_t=game_t,
        game_steps=np.cumsum([g.length for g in games], dtype=float),
    )


def _learner_start(root: TrainingRoot) -> float | None:
    holder = read_holder(root) or {}
    try:
        return datetime.fromisoformat(str(holder["started_at"])).timestamp()
    except (KeyError, ValueError):
        return None


def find_run_starts(
    times: np.ndarray,
    game_t: np.ndarray,
    batches: list[BatchEvent],
    evals: list[EvalEvent],
    learner_started: float | None = None,
) -> list[RunStart]:
    """Where runs start, by the rules of this module's docstring, oldest first.

    ``times``: every event's ``t``, sorted.
    """
    if len(times) < 2:
        return []
    found: dict[float, RunStart] = {}
    gaps = np.diff(np.sort(game_t))
    typical = float(np.median(gaps[gaps > 0])) if np.any(gaps > 0) else 0.0
    limit = max(RUN_PAUSE_MIN_S, RUN_PAUSE_FACTOR * typical)
    for i in np.flatnonzero(np.diff(times) > limit):
        pause = times[i + 1] - times[i]
        found[times[i + 1]] = RunStart(times[i + 1], times[i], f"a pause of {span_text(pause)}")
    for lo, hi, reason in _restarts(batches, evals, learner_started, times):
        start = _longest_pause(times, lo, hi, reason)
        found.setdefault(start.t, start)
    return sorted(found.values(), key=lambda s: s.t)


def _restarts(
    batches: list[BatchEvent],
    evals: list[EvalEvent],
    learner_started: float | None,
    times: np.ndarray,
) -> list[tuple[float, float, str]]:
    """(after, before, reason) of each start known to lie between two events' times."""
    out = []
    for prev, b in itertools.pairwise(batches):
        if b.version <= prev.version:
            out.append((prev.t or 0.0, b.t or 0.0, f"model versions restart at {b.version}"))
    for prev, e in itertools.pairwise(evals):
        if e.steps < prev.steps:
            out.append((prev.t or 0.0, e.t or 0.0, "evaluation steps restart"))
    if learner_started is not None and times[0] < learner_started <= times[-1]:
        i = int(np.searchsorted(times, learner_started))
        out.append((times[i - 1], times[i], "the learner started (state/learner.json)"))
    return out


def _longest_pause(times: np.ndarray, lo: float, hi: float, reason: str) -> RunStart:
    """The start at the longest interval between events in ``[lo, hi]``."""
    inside = times[(times >= lo) & (times <= hi)]
    if len(inside) < 2:
        return RunStart(hi, lo, reason)
    i = int(np.argmax(np.diff(inside)))
    return RunStart(float(inside[i + 1]), float(inside[i]), reason)


def span_text(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h``, ``2.0 days``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def time_unit(seconds: float) -> tuple[float, str]:
    """The divisor and name of a readable unit for a span of ``seconds``."""
    if seconds < 300:
        return 1.0, "s"
    if seconds < 3 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def finite(values: list[float | None]) -> np.ndarray:
    """The values as floats, ``None`` and non-finite ones as NaN (matplotlib leaves a gap)."""
    return np.array(
        [v if v is not None and math.isfinite(v) else np.nan for v in values], dtype=float
    )
