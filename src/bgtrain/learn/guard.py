"""The collapse guard: a model whose games fall far below the best version's is not left
in charge.

Policy-gradient learners can lose in a few updates what they learned (a policy that turns
deterministic gets no gradient back; a value spike throws the advantages off). The guard
watches the returns of the games the learner trains on, in windows of ``window`` games:

* the best window so far names its best version (the newest model that played in it);
* once ``window`` games played by models newer than that version average below
  ``baseline + (1 - drop) * (best - baseline)`` (``baseline``: the first window's mean,
  about what an untrained model scores), the learner goes back to the best version's
  weights and continues from there (:class:`GuardKeeper` keeps them; the learner's
  :class:`~bgtrain.learn.batch_trainer.BatchTrainer` loads them);
* the restored model's next window is its best again: a best that was a lucky window is
  measured anew instead of sending the learner back to it over and over.

So with the default ``drop`` of 0.75 a collapse loses three quarters of the way from
the untrained to the best play (CartPole: from 438 to below 126, when the first games
scored 22); returns of any sign work, as only differences are compared. The
best must stand out from the baseline by more than twice the baseline window's standard
deviation (the ups and downs of an untrained model are not progress to guard), and a
collapse must fall more than ``SEMS_BELOW_BEST`` standard errors below the best window's
mean (the best of many noisy windows is a lucky one).

The guard's figures travel in each published model's meta (``guard``), so a learner that
continues a root takes the model it continues from as the one to go back to, with the
mean its games had: a restart that loses what the model knew is caught too.
Torch-free: :class:`GuardKeeper` keeps the weights to go back to; the learner's
:class:`~bgtrain.learn.batch_trainer.BatchTrainer` loads them.
"""

from __future__ import annotations

import copy
import logging
import math
import statistics
from collections import deque
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np

from bgtrain.store.episode import Episode
from bgtrain.store.events import GuardEvent
from bgtrain.store.models import LoadedModel, ModelStore

logger = logging.getLogger(__name__)

#: A collapse is a window mean this many standard errors of the best window's mean below
#: it (and below the threshold): ups and downs between windows of a learning model are not.
SEMS_BELOW_BEST = 4.0


class NewBest(NamedTuple):
    """A window better than every earlier one: ``version`` played in it."""

    version: int
    mean: float
    #: Standard error of that mean (the window's spread / sqrt(window)): the best of many
    #: noisy windows is lucky by about this much, so a collapse must fall well below it.
    sem: float = 0.0


class Collapse(NamedTuple):
    """A window far below the best: go back to ``best_version``."""

    best_version: int
    best_mean: float
    recent_mean: float
    baseline: float


class CollapseGuard:
    """Window means of game returns, the best one, and whether the recent one collapsed.

    ``window``: games per window (at least 1). ``drop``: the share of the progress from
    the baseline to the best that a window must lose to count as a collapse (0 < drop <= 1).
    """

    def __init__(self, window: int, drop: float) -> None:
        if window < 1 or not 0 < drop <= 1:
            raise ValueError(f"window must be >= 1 and 0 < drop <= 1, got {window}, {drop}")
        self.window, self.drop = window, drop
        self.baseline: float | None = None
        self.baseline_std = 0.0
        self.best: NewBest | None = None
        self._recent: deque[tuple[float, int]] = deque(maxlen=window)

    @property
    def recent_mean(self) -> float | None:
        """The mean return of the last full window (``None`` before one)."""
        if len(self._recent) < self.window:
            return None
        return sum(r for r, _ in self._recent) / len(self._recent)

    @property
    def recent_sem(self) -> float | None:
        """The standard error of :attr:`recent_mean`."""
        if len(self._recent) < self.window:
            return None
        return statistics.pstdev(r for r, _ in self._recent) / math.sqrt(len(self._recent))

    def state(self) -> dict[str, float | int | None]:
        """What a model's meta keeps (key ``guard``), for :meth:`resume`."""
        return {
            "baseline": self.baseline,
            "baseline_std": self.baseline_std,
            "recent_mean": self.recent_mean,
            "recent_sem": self.recent_sem,
            "best_version": self.best.version if self.best else None,
            "best_mean": self.best.mean if self.best else None,
        }

    def resume(self, state: object, version: int) -> bool:
        """Continue from the meta of model ``version`` (the one a learner starts from): it
        becomes the best, at the mean its games had. ``False`` if ``state`` is not usable."""
        if not isinstance(state, dict):
            return False
        baseline, std, mean = (state.get(k) for k in ("baseline", "baseline_std", "recent_mean"))
        if not all(isinstance(x, (int, float)) for x in (baseline, std, mean)):
            return False
        self.baseline, self.baseline_std = float(baseline), float(std)
        sem = state.get("recent_sem")
        self.best = NewBest(
            version, float(mean), float(sem) if isinstance(sem, (int, float)) else 0.0
        )
        return True

    @property
    def threshold(self) -> float | None:
        """Window means below this are a collapse (``None`` until there is a best)."""
        if self.best is None or self.baseline is None:
            return None
        return self.baseline + (1 - self.drop) * (self.best.mean - self.baseline)

    def observe(self, games: Iterable[tuple[float, int | None]]) -> NewBest | Collapse | None:
        """Take the ``(return, policy_version)`` of newly trained games; say what changed.

        Games without a policy version (seed files, demonstrations) are not judged.
        """
        verdict: NewBest | Collapse | None = None
        for ret, version in games:
            if version is None:
                continue
            self._recent.append((float(ret), version))
            if len(self._recent) < self.window:
                continue
            verdict = self._judge() or verdict
            if isinstance(verdict, Collapse):
                return verdict
        return verdict

    def restored(self) -> None:
        """The best version is in charge again: judge only games played from now on, and
        measure the restored model again: its next window becomes the best. A best that
        was a lucky window is then corrected to what the model really scores, rather than
        sending the learner back to it over and over."""
        self._recent.clear()
        self.best = None

    def _judge(self) -> NewBest | Collapse | None:
        mean = sum(r for r, _ in self._recent) / len(self._recent)
        newest = max(v for _, v in self._recent)
        if self.baseline is None:
            self.baseline = mean
            self.baseline_std = statistics.pstdev(r for r, _ in self._recent)
        if self.best is None or mean > self.best.mean:
            self.best = NewBest(newest, mean, self.recent_sem or 0.0)
            return self.best
        threshold = self.threshold
        played_after_best = min(v for _, v in self._recent) > self.best.version
        progressed = self.best.mean - self.baseline > 2 * self.baseline_std
        beyond_luck = mean < self.best.mean - SEMS_BELOW_BEST * self.best.sem
        if (
            threshold is not None
            and mean < threshold
            and beyond_luck
            and played_after_best
            and progressed
        ):
            return Collapse(self.best.version, self.best.mean, mean, self.baseline)
        return None


class Restore(NamedTuple):
    """What the learner does after a collapse: load ``arrays`` (version ``version``'s)."""

    version: int
    arrays: Mapping[str, np.ndarray]
    event: GuardEvent


def game_returns(episodes: Iterable[Episode]) -> list[tuple[float, int | None]]:
    """(return, policy version) of each game, as the guard observes them."""
    return [(float(ep.total_reward), ep.policy_version) for ep in episodes]


class GuardKeeper:
    """The learner's side of the guard: the best version's weights, kept to go back to.

    Weights are read from the model store when a version becomes the best, so a restore
    needs no file (the history may have pruned it by then).
    """

    def __init__(self, guard: CollapseGuard, store: ModelStore) -> None:
        self.guard = guard
        self._store = store
        self._best: tuple[int, Mapping[str, np.ndarray]] | None = None
        #: Set by a restore: the next published model says which version it came back to.
        self.restored_from: int | None = None

    @property
    def window(self) -> int:
        """Games per window (``--guard-games``)."""
        return self.guard.window

    def resume(self, model: LoadedModel) -> None:
        """Continue from ``model``: its meta's guard figures, its weights as the best."""
        if self.guard.resume(model.meta.extra.get("guard"), model.version):
            self._best = (model.version, model.arrays)

    def state_after(self, episodes: Iterable[Episode]) -> dict[str, float | int | None]:
        """The guard's figures as they will be once ``episodes`` are observed (what the
        model trained on them carries in its meta)."""
        preview = copy.deepcopy(self.guard)
        preview.observe(game_returns(episodes))
        return preview.state()

    def observe(self, episodes: Iterable[Episode], at_version: int) -> Restore | None:
        """Show the guard the games just trained on; remember a new best version's
        weights; after a collapse, the weights to go back to."""
        verdict = self.guard.observe(game_returns(episodes))
        if isinstance(verdict, NewBest):
            try:
                self._best = (verdict.version, self._store.load(verdict.version).arrays)
            except Exception as exc:  # pruned from the history already: keep the last best
                logger.warning("collapse guard: cannot keep version %d: %s", verdict.version, exc)
            return None
        if not isinstance(verdict, Collapse) or self._best is None:
            return None
        version, arrays = self._best
        self.guard.restored()
        self.restored_from = version
        event = GuardEvent(
            restored_version=version,
            at_version=at_version,
            recent_mean=verdict.recent_mean,
            best_mean=verdict.best_mean,
            baseline=verdict.baseline,
        )
        return Restore(version, arrays, event)

    def published(self) -> None:
        """A model was published: it carries any restore, so the next one need not."""
        self.restored_from = None
