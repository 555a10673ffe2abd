"""One learner cycle, wired in one place: claim -> load/validate -> train -> publish -> archive.

Exactly-once (guarantee 3) comes from the order: the published model lists its batch
*before* the batch leaves ``processing/``, and start-up recovery (:func:`recover_root`)
finishes or undoes whatever a crash interrupted. A bad file is quarantined and the rest
of the batch trains (guarantee 6).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from bgtrain.common.faults import crash_point
from bgtrain.errors import InvalidEpisodeError, PoisonedBatchError, SpoolError
from bgtrain.store.episode import Episode, check_fits, load_episode
from bgtrain.store.models import ModelMeta, ModelStore
from bgtrain.store.safe_npz import DEFAULT_LIMITS, SizeLimits
from bgtrain.store.spool import Recovery, Spool

if TYPE_CHECKING:
    from bgtrain.learn.algorithms.base import TrainMetrics

logger = logging.getLogger(__name__)


class TrainingReport(NamedTuple):
    """What training a batch gave besides the model; handed back on
    :attr:`BatchResult.report` once the model is published."""

    #: The algorithm's figures (loss, KL, samples...).
    metrics: TrainMetrics
    #: Policy lag of each trained episode, in model versions (0: a policy outside bgtrain).
    policy_lags: list[int]
    #: Policy lag of each replayed episode (sample reuse), in model versions.
    replay_lags: list[int]


class TrainedModel(NamedTuple):
    """What a train function hands back: the model's arrays, its meta (version set on
    publish) and its report."""

    arrays: Mapping[str, np.ndarray]
    meta: ModelMeta
    report: TrainingReport | None = None


class LoadedEpisode(NamedTuple):
    path: Path
    episode: Episode


#: Why a demonstration found in buffer/ is set aside, untrained (DESIGN.md, Demonstrations).
DEMONSTRATION_REASON = (
    "a demonstration (meta source 'demonstration'): its actions are labels, not a policy's "
    "choices, so the learner does not train on it; pretrain from demonstrations with "
    "`bgtrain sc2 pretrain --demonstrations FOLDER`"
)
#: Trains on a batch. Called only with valid, fresh episodes. All or nothing: when it
#: raises, the weights are as before the call. It raises PoisonedBatchError to name the
#: episodes that cannot be trained on (the pipeline quarantines or defers them and calls
#: it again with the rest).
TrainFn = Callable[[Sequence[LoadedEpisode]], TrainedModel]
#: Undoes the last successful ``train`` call (its model was not published): a batch
#: changes the weights once, even when its publish fails and it is trained again.
DiscardFn = Callable[[], None]
#: Returns why an episode should not be trained on (too old, too stale), or ``None``.
StaleFn = Callable[[Path, Episode], "str | None"]
#: Loads and validates one claimed file (raises InvalidEpisodeError).
LoadFn = Callable[[Path], Episode]


@dataclass(frozen=True)
class BatchLimits:
    max_files: int = 10
    max_steps: int | None = None
    obs_dim: int | None = None
    n_actions: int | None = None
    size: SizeLimits = DEFAULT_LIMITS
    #: A file that fails to load while younger than this (seconds since its last change)
    #: may still be being written in place: it goes back to buffer/ to settle, and is
    #: quarantined only if it is still bad once it has been left alone this long.
    settle_time: float = 0.0
    #: An episode longer than this is not trained at once: it is cut into pieces that go
    #: back to buffer/ as episodes of their own (Spool.split), each a bounded batch.
    max_piece_steps: int | None = None
    #: The latest model version, stamped on pieces as ``split_at_version``: their policy
    #: lag for the staleness check counts from when they were cut, not from the game.
    model_version: int = 0


@dataclass
class BatchResult:
    claimed: list[Path]
    #: The valid, fresh episodes the batch trained on (paths in processing/ at the time).
    trained: list[LoadedEpisode] = field(default_factory=list)
    published: ModelMeta | None = None
    archived: list[Path] = field(default_factory=list)
    quarantined: list[Path] = field(default_factory=list)
    stale: list[Path] = field(default_factory=list)
    #: Put back into buffer/ untrained: unsettled files, and episodes deferred to a later
    #: batch when a batch had to be trained one episode at a time.
    returned: list[Path] = field(default_factory=list)
    #: Episodes too long to train at once, now in split/; their pieces wait in buffer/.
    split: list[Path] = field(default_factory=list)
    #: The published model's training report (``None`` when nothing was published, or
    #: the train function gives none).
    report: TrainingReport | None = None


def recover_root(spool: Spool, store: ModelStore, stale_temp_age: float | None = None) -> Recovery:
    """Start-up recovery, run under the learner lock before the first claim.

    Creates the root's folders if they are missing. With ``stale_temp_age``, writers'
    dot-temps in ``buffer/`` older than that (seconds) are removed too.
    """
    spool.root.ensure()
    models_temps = store.remove_leftover_temps()
    recovery = spool.recover(store.latest_batch())
    writer_temps = spool.remove_writer_temps(stale_temp_age) if stale_temp_age is not None else []
    return recovery._replace(temps_removed=recovery.temps_removed + models_temps + writer_temps)


def load_batch(
    spool: Spool,
    claimed: Sequence[Path],
    limits: BatchLimits,
    is_stale: StaleFn | None = None,
    load: LoadFn | None = None,
) -> tuple[list[LoadedEpisode], BatchResult]:
    """Validate the claimed files: bad ones and demonstrations to quarantine, stale ones
    to stale/, files that may still be being written back to buffer/.

    A batch has one ``obs_dim``: the root model's, or, before there is a model, that of
    its first valid episode.
    """
    load = load or (lambda path: load_episode(path, limits=limits.size))
    result = BatchResult(claimed=list(claimed))
    good: list[LoadedEpisode] = []
    obs_dim = limits.obs_dim
    for path in claimed:
        try:
            episode = load(path)
            check_fits(episode, obs_dim, limits.n_actions)
        except InvalidEpisodeError as exc:
            if spool.is_settling(path, limits.settle_time):
                result.returned.append(spool.put_back(path, exc.reason, settling=True))
            else:
                result.quarantined.append(spool.quarantine(path, exc.reason, exc.error))
            continue
        if episode.is_demonstration:
            result.quarantined.append(spool.quarantine(path, DEMONSTRATION_REASON))
            continue
        reason = is_stale(path, episode) if is_stale is not None else None
        if reason is not None:
            result.stale.append(spool.mark_stale(path, reason))
            continue
        if limits.max_piece_steps is not None and episode.length > limits.max_piece_steps:
            stamp = {"split_from": path.name, "split_at_version": limits.model_version}
            result.split.append(spool.split(path, episode, limits.max_piece_steps, stamp))
            continue
        obs_dim = episode.obs_dim
        good.append(LoadedEpisode(path, episode))
    result.trained = good
    return good, result


def _train_what_can_be(
    spool: Spool, good: list[LoadedEpisode], train: TrainFn, result: BatchResult
) -> TrainedModel | None:
    """``train(good)``; the episodes it names as poison go to quarantine, the deferred
    back to buffer/, and the rest is trained. ``None`` if nothing is left."""
    while good:
        try:
            return train(good)
        except PoisonedBatchError as exc:
            for i, reason in exc.culprits.items():
                result.quarantined.append(spool.quarantine(good[i].path, reason, str(exc)))
            for i in exc.deferred:
                result.returned.append(spool.put_back(good[i].path, str(exc)))
            gone = set(exc.culprits) | set(exc.deferred)
            if not gone:
                raise RuntimeError("train raised PoisonedBatchError naming no episode") from exc
            good = [item for i, item in enumerate(good) if i not in gone]
            result.trained = good
    return None


def run_batch(
    spool: Spool,
    store: ModelStore,
    train: TrainFn,
    limits: BatchLimits = BatchLimits(),
    is_stale: StaleFn | None = None,
    load: LoadFn | None = None,
    discard: DiscardFn | None = None,
) -> BatchResult | None:
    """One cycle; ``None`` when the buffer is empty.

    If anything fails after ``train`` returned and before the model listing the batch is
    published, ``discard`` undoes the training and the batch goes back to ``buffer/``.
    """
    try:
        claimed = spool.claim(limits.max_files, limits.max_steps, limits.settle_time)
    except SpoolError:
        if not spool.claimed():
            raise
        # A failed cycle could not put its batch back (a full disk): do it now.
        spool.recover(store.latest_batch(), remove_state_temps=False)
        claimed = spool.claim(limits.max_files, limits.max_steps, limits.settle_time)
    if not claimed:
        return None
    crash_point("after_claim")
    batch: tuple[str, ...] = ()  # set once trained: the names the new version will list
    try:
        good, result = load_batch(spool, claimed, limits, is_stale, load)
        trained = _train_what_can_be(spool, good, train, result)
        if trained is None:
            return result
        good = result.trained
        batch = tuple(item.path.name for item in good)
        meta = dataclasses.replace(trained.meta, batch=batch)
        result.published = store.publish(trained.arrays, meta)
        result.report = trained.report
        crash_point("between_publish_and_archive")
        result.archived = spool.archive(item.path for item in good)
        return result
    except BaseException:
        # Interrupted or failed: the batch in hand is archived if published, else returned
        # (and its training undone).
        _put_batch_back(spool, store, batch, discard)
        raise


def _put_batch_back(
    spool: Spool, store: ModelStore, batch: tuple[str, ...], discard: DiscardFn | None
) -> None:
    try:
        latest = store.latest_batch()
    except Exception:  # unreadable: start-up recovery will sort the files out
        latest = None
    published = latest is not None and bool(batch) and set(batch) <= latest
    if batch and discard is not None and not published:
        discard()
    try:
        spool.recover(
            latest if latest is not None else store.latest_batch(), remove_state_temps=False
        )
    except Exception:
        logger.exception("could not put the interrupted batch back; start-up recovery will")
