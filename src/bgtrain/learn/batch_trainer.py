"""What the learner trains, batch after batch: the algorithm, the model version it has
reached, the replay window and the collapse guard.

:class:`BatchTrainer` supplies the train, discard and staleness functions of one pipeline
cycle (:func:`~bgtrain.learn.pipeline.run_batch`) and takes in what a publish means for
the next batch (:meth:`BatchTrainer.published`). Threads, the lock, the counters and the
reports are the :class:`~bgtrain.learn.learner.BackgroundLearner`'s.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bgtrain.errors import InvalidModelError, NonFiniteTrainingError, PoisonedBatchError
from bgtrain.learn.algorithms import Algorithm, TrainMetrics, continue_from, create
from bgtrain.learn.guard import CollapseGuard, GuardKeeper, Restore
from bgtrain.learn.pipeline import (
    BatchLimits,
    BatchResult,
    LoadedEpisode,
    TrainedModel,
    TrainingReport,
)
from bgtrain.learn.replay_window import ReplayEntry, ReplayWindow
from bgtrain.learn.settings import LearnerSettings
from bgtrain.learn.staleness import behaviour_lag, why_stale
from bgtrain.store.counters import LearnerCounters
from bgtrain.store.episode import Episode
from bgtrain.store.models import LoadedModel, ModelMeta, ModelStore

logger = logging.getLogger(__name__)


class BatchTrainer:
    """The learning state between batches (see the module docstring).

    ``should_stop`` is asked during training: once true, the batch in hand is given back
    (:class:`~bgtrain.errors.TrainingStopped`).
    """

    def __init__(
        self, settings: LearnerSettings, store: ModelStore, should_stop: Callable[[], bool]
    ) -> None:
        s = self.settings = settings
        self._store = store
        self._should_stop = should_stop
        #: ``None`` until the first batch (or the latest model) gives the shapes.
        self.algorithm: Algorithm | None = None
        #: The version the weights have reached (0: no model yet).
        self.model_version = 0
        self.replay = ReplayWindow(s.replay_passes, s.replay_max_lag, s.replay_max_steps)
        self.guard = (
            GuardKeeper(CollapseGuard(s.guard_games, s.guard_drop), store)
            if s.guard_games
            else None
        )
        #: What the batch in hand replays, and its own episodes: the window changes only
        #: once the batch is published.
        self._replaying: list[ReplayEntry] = []
        self._batch_in_hand: list[LoadedEpisode] = []

    # ------------------------------------------------------------------ start

    def continue_from_latest(self) -> None:
        """Continue from the root's latest model (by the algorithm it names); a root with
        none, or whose latest cannot be read or is not finite, starts a new model.

        Raises:
            UnknownAlgorithmError: the latest model names an algorithm this bgtrain does
                not know (training over it would lose it).
        """
        try:
            model: LoadedModel = self._store.load()
            bad = [name for name, values in model.arrays.items() if not np.isfinite(values).all()]
            if bad:  # training from NaN weights would make every episode look poisonous
                raise InvalidModelError(f"{model.path}: {', '.join(bad)} not finite")
        except Exception as exc:  # no model yet, or unreadable: start a new one
            if self._store.latest_version() is not None:
                logger.error("cannot continue from the latest model (%s); a new one starts", exc)
            return
        self.algorithm = continue_from(model, self.settings)
        self.model_version = model.version
        if self.guard is not None:
            self.guard.resume(model)

    def _create(self, episodes: Sequence[Episode]) -> Algorithm:
        """The first model of a root: obs_dim from the episodes, n_actions as configured,
        else as the games said in their meta, else as observed."""
        n_actions = self.settings.n_actions
        if n_actions is None:
            declared = [ep.meta.get("n_actions") for ep in episodes]
            declared = [n for n in declared if isinstance(n, int) and n > 0]
            observed = max(int(ep.actions.max()) for ep in episodes) + 1
            n_actions = max([*declared, observed, 2])
        logger.info("new model: obs_dim %d, %d actions", episodes[0].obs_dim, n_actions)
        return create(None, episodes[0].obs_dim, n_actions, self.settings)

    # ------------------------------------------------------------------ one cycle

    def limits(self) -> BatchLimits:
        """What the next batch may claim and must fit (the model's shapes, once known)."""
        s, a = self.settings, self.algorithm
        return BatchLimits(
            max_files=s.batch_files,
            max_steps=s.batch_steps,
            obs_dim=a.obs_dim if a else None,
            n_actions=a.n_actions if a else s.n_actions,
            size=s.size_limits,
            settle_time=s.settle_time,
            max_piece_steps=s.max_piece_steps,
            model_version=self.model_version,
        )

    def why_stale(self, path: Path, episode: Episode) -> str | None:
        s = self.settings
        return why_stale(path, episode, self.model_version, s.max_file_age, s.max_policy_lag)

    def train(self, batch: Sequence[LoadedEpisode], counters: LearnerCounters) -> TrainedModel:
        """Train on ``batch`` (and the replayed batches); the model's meta carries
        ``counters`` as they will be once it is published.

        Raises:
            PoisonedBatchError: training gave non-finite numbers; names the episodes to
                quarantine or defer (the weights are as before the call).
            TrainingStopped: ``should_stop`` became true (the weights are as before).
        """
        episodes = [item.episode for item in batch]
        if self.algorithm is None:
            self.algorithm = self._create(episodes)
        self._replaying = self.replay.select(self.model_version)
        replayed = [ep for entry in self._replaying for ep in entry.episodes]
        try:  # train() is all or nothing; an export that finds NaN undoes it
            metrics = self.algorithm.train(episodes, should_stop=self._should_stop, replay=replayed)
            arrays = self.algorithm.export()
        except NonFiniteTrainingError as exc:
            self.algorithm.undo()
            raise self._poisoned(episodes, exc) from exc
        self._batch_in_hand = list(batch)
        report = TrainingReport(
            metrics,
            policy_lags=[behaviour_lag(ep, self.model_version) or 0 for ep in episodes],
            replay_lags=[
                lag
                for lag in (behaviour_lag(ep, self.model_version) for ep in replayed)
                if lag is not None
            ],
        )
        return TrainedModel(arrays, self._model_meta(episodes, metrics, counters), report)

    def discard(self) -> None:
        """The batch just trained was not published: go back to the state before it."""
        if self.algorithm is not None:
            self.algorithm.undo()
            logger.warning("the unpublished batch's training was undone; it goes back to buffer/")

    def _model_meta(
        self, episodes: Sequence[Episode], metrics: TrainMetrics, counters: LearnerCounters
    ) -> ModelMeta:
        """The meta of the model trained on ``episodes``, as it will be once published:
        the totals and the guard's figures then."""
        assert self.algorithm is not None
        totals = copy.copy(counters)
        totals.count_batch(len(episodes), metrics.n_samples, metrics.loss)
        envs = {ep.meta.get("env") for ep in episodes} - {None}
        extra: dict[str, Any] = {"env": envs.pop()} if len(envs) == 1 else {}
        if self._replaying:
            extra["replayed"] = [name for entry in self._replaying for name in entry.names]
        if self.guard is not None:
            extra["guard"] = self.guard.state_after(episodes)
            if self.guard.restored_from is not None:
                extra["restored_from"] = self.guard.restored_from
        return self.algorithm.meta(counters=totals.model_totals(), extra=extra)

    def _poisoned(
        self, episodes: Sequence[Episode], exc: NonFiniteTrainingError
    ) -> PoisonedBatchError:
        """Which episodes made training non-finite: each is tried alone from the last good
        state. If none is at fault alone, the batch is trained one episode at a time."""
        assert self.algorithm is not None
        # The replayed games trained well before, but the search below tries the new ones
        # alone: start the window afresh so that a replayed game cannot fail every retry.
        self.replay.clear()
        culprits = self.algorithm.nonfinite_episodes(episodes)
        reasons = {
            i: f"training on it gives non-finite numbers ({why}); the model was kept as it was"
            for i, why in culprits.items()
        }
        if not culprits and len(episodes) == 1:
            reasons = {0: f"training on it gives non-finite numbers ({exc})"}
        deferred = [] if reasons else list(range(1, len(episodes)))
        logger.error(
            "batch of %d episode(s) gave non-finite training (%s): %d quarantined, %d deferred",
            len(episodes),
            exc,
            len(reasons),
            len(deferred),
        )
        return PoisonedBatchError(reasons, deferred, str(exc))

    # ------------------------------------------------------------------ after a publish

    def published(self, result: BatchResult) -> Restore | None:
        """The batch of ``result`` was published: its version is reached, the batch joins
        the replay window, and the guard sees its games. After a collapse the best
        version's weights are back in charge, and what the guard did is returned."""
        assert result.published is not None
        self.model_version = result.published.version
        self._remember_for_replay(result.published)
        if self.guard is None or self.algorithm is None:
            return None
        self.guard.published()
        restore = self.guard.observe((item.episode for item in result.trained), self.model_version)
        if restore is not None:
            self.algorithm.load_weights(dict(restore.arrays))
            self.replay.clear()
        return restore

    def _remember_for_replay(self, published: ModelMeta) -> None:
        """The published batch joins the replay window; what it replayed is used once more."""
        self.replay.used(self._replaying)
        trained = {item.path.name: item.episode for item in self._batch_in_hand}
        names = [name for name in published.batch if name in trained]
        self.replay.add(self.model_version, names, [trained[name] for name in names])
        self._replaying, self._batch_in_hand = [], []

    def catch_up(self, version: int) -> None:
        """A cycle that failed after its publish still made ``version``: it is reached."""
        self.model_version = version
