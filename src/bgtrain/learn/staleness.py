"""Which episodes are too old, or played too many model versions ago, to train on.

A game played long ago by a policy far behind the current one teaches little and, even
with V-trace's truncated importance weights, adds variance (IMPALA, Espeholt et al.
2018; Sample Factory reports the same lag as ``version_diff``). Such files go to
``stale/`` with the reason this module gives.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from bgtrain.store.episode import Episode


class LagSummary(NamedTuple):
    """Policy lag of a batch's episodes, in model versions (Sample Factory's
    ``version_diff_min/avg/max``); all 0 for no episode."""

    min: int
    mean: float
    max: int


def summarize_lags(lags: Sequence[int]) -> LagSummary:
    if not lags:
        return LagSummary(0, 0.0, 0)
    return LagSummary(min(lags), sum(lags) / len(lags), max(lags))


def behaviour_lag(episode: Episode, model_version: int) -> int | None:
    """Versions between the behaviour policy that played ``episode`` and ``model_version``
    (``None``: a policy outside bgtrain). A piece of a long game keeps its game's policy:
    this is the lag the off-policy correction sees, not the staleness rule's below."""
    played = episode.policy_version
    return None if played is None else model_version - played


def policy_lag(episode: Episode, model_version: int) -> tuple[int, str] | None:
    """The staleness rule's lag: how many versions behind ``model_version`` the episode
    was played, and by what; ``None`` for a game of a policy outside bgtrain. A piece of
    a long game counts from when it was cut (see :func:`why_stale`)."""
    cut_at, piece = episode.meta.get("split_at_version"), episode.meta.get("piece")
    if isinstance(cut_at, int) and isinstance(piece, int):
        # A piece of a long game: its lag counts from when it was cut, less the versions
        # its own earlier pieces made (each is trained as a batch of its own).
        lag = model_version - cut_at - (piece - 1)
        return lag, f"piece {piece} of a game cut at model version {cut_at}"
    if episode.policy_version is not None:
        return model_version - episode.policy_version, (
            f"played by model version {episode.policy_version}"
        )
    return None


def why_stale(
    path: Path,
    episode: Episode,
    model_version: int,
    max_file_age: float,
    max_policy_lag: int | None,
) -> str | None:
    """Why ``episode`` (from ``path``) should not be trained on, or ``None``.

    ``max_file_age`` is in seconds since the file's last change; ``max_policy_lag`` in
    model versions (``None``: no limit).
    """
    try:
        age = time.time() - path.lstat().st_mtime
    except OSError:
        age = 0.0
    if age > max_file_age:
        return f"older than max_file_age {max_file_age:g} s (age {age:.0f} s)"
    lag = policy_lag(episode, model_version) if max_policy_lag is not None else None
    if lag is None or lag[0] <= max_policy_lag:  # type: ignore[operator]
        return None
    return (
        f"{lag[1]}, {lag[0]} versions behind the latest ({model_version}); "
        f"max_policy_lag is {max_policy_lag}"
    )
