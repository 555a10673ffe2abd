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
from typing import NamedTuple

import numpy as np

from .episode import Episode, check_fits, load_episode
from .errors import InvalidEpisodeError
from .models import ModelMeta, ModelStore
from .safe_npz import DEFAULT_LIMITS, SizeLimits
from .spool import Recovery, Spool

logger = logging.getLogger(__name__)


class TrainedModel(NamedTuple):
    """What a trainer hands back: the model's arrays and its meta (version set on publish)."""

    arrays: Mapping[str, np.ndarray]
    meta: ModelMeta


class LoadedEpisode(NamedTuple):
    path: Path
    episode: Episode


#: Trains on a batch. Called only with valid, fresh episodes.
TrainFn = Callable[[Sequence[LoadedEpisode]], TrainedModel]
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


@dataclass
class BatchResult:
    claimed: list[Path]
    #: The valid, fresh episodes the batch trained on (paths in processing/ at the time).
    trained: list[LoadedEpisode] = field(default_factory=list)
    published: ModelMeta | None = None
    archived: list[Path] = field(default_factory=list)
    quarantined: list[Path] = field(default_factory=list)
    stale: list[Path] = field(default_factory=list)


def recover_root(spool: Spool, store: ModelStore) -> Recovery:
    """Start-up recovery, run under the learner lock before the first claim.

    Creates the root's folders if they are missing.
    """
    spool.root.ensure()
    models_temps = store.remove_leftover_temps()
    recovery = spool.recover(store.latest_batch())
    return recovery._replace(temps_removed=recovery.temps_removed + models_temps)


def load_batch(
    spool: Spool,
    claimed: Sequence[Path],
    limits: BatchLimits,
    is_stale: StaleFn | None = None,
    load: LoadFn | None = None,
) -> tuple[list[LoadedEpisode], BatchResult]:
    """Validate the claimed files: bad ones to quarantine, stale ones to stale/.

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
            result.quarantined.append(spool.quarantine(path, exc.reason, exc.error))
            continue
        reason = is_stale(path, episode) if is_stale is not None else None
        if reason is not None:
            result.stale.append(spool.mark_stale(path, reason))
            continue
        obs_dim = episode.obs_dim
        good.append(LoadedEpisode(path, episode))
    result.trained = good
    return good, result


def run_batch(
    spool: Spool,
    store: ModelStore,
    train: TrainFn,
    limits: BatchLimits = BatchLimits(),
    is_stale: StaleFn | None = None,
    load: LoadFn | None = None,
) -> BatchResult | None:
    """One cycle; ``None`` when the buffer is empty."""
    claimed = spool.claim(limits.max_files, limits.max_steps)
    if not claimed:
        return None
    try:
        good, result = load_batch(spool, claimed, limits, is_stale, load)
        if not good:
            return result
        trained = train(good)
        meta = dataclasses.replace(trained.meta, batch=tuple(item.path.name for item in good))
        result.published = store.publish(trained.arrays, meta)
        result.archived = spool.archive(item.path for item in good)
        return result
    except BaseException:
        # Interrupted or failed: the batch in hand is archived if published, else returned.
        try:
            spool.recover(store.latest_batch())
        except Exception:
            logger.exception("could not put the interrupted batch back; start-up recovery will")
        raise
