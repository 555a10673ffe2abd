"""What the learner tells people and tools: the seed's texts, metrics.jsonl, TensorBoard.

Texts keep the seed system's wording (``[BACKGROUND LEARNER] STATUS REPORT``, the
``Batch Training Complete`` log block); metric names follow Stable-Baselines3
(``train/*``, ``rollout/*``, ``time/*``) and Sample Factory (``train/version_diff_*``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from bgtrain.learn.pipeline import BatchResult
from bgtrain.learn.staleness import summarize_lags
from bgtrain.store.counters import LearnerCounters
from bgtrain.store.events import BatchEvent, GameEvent, finite_or_none, now_iso
from bgtrain.store.root import TrainingRoot

logger = logging.getLogger(__name__)

#: The line that ends each of the seed's blocks in ``background_training.log``.
LOG_BLOCK_END = "-" * 60


def _games(result: BatchResult) -> tuple[GameEvent, ...]:
    return tuple(
        GameEvent(
            name=item.path.name,
            return_=finite_or_none(item.episode.total_reward),
            length=item.episode.length,
            outcome=item.episode.outcome,
            policy_version=item.episode.policy_version,
            terminated=item.episode.terminated,
        )
        for item in result.trained
    )


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else 0.0


def batch_event(result: BatchResult, seconds: float, counters: LearnerCounters) -> BatchEvent:
    """The ``metrics.jsonl`` event of a published batch (``counters`` already count it)."""
    assert result.published is not None and result.report is not None
    m = result.report.metrics
    lags = summarize_lags(result.report.policy_lags)
    replay_lags = summarize_lags(result.report.replay_lags)
    games = _games(result)
    outcomes = [g.outcome for g in games if g.outcome]
    return BatchEvent(
        time=now_iso(),
        version=result.published.version,
        loss=finite_or_none(m.loss),
        policy_gradient_loss=finite_or_none(m.policy_loss),
        value_loss=finite_or_none(m.value_loss),
        entropy_loss=finite_or_none(-m.entropy),
        approx_kl=finite_or_none(m.approx_kl),
        clip_fraction=finite_or_none(m.clip_fraction),
        explained_variance=finite_or_none(m.explained_variance),
        behaviour_ratio_mean=finite_or_none(m.ratio_mean),
        n_updates=m.n_updates,
        version_diff_min=lags.min,
        version_diff_avg=lags.mean,
        version_diff_max=lags.max,
        replay_ratio=m.n_replayed_samples / max(m.n_samples, 1),
        replay_version_diff_avg=replay_lags.mean,
        replay_version_diff_max=replay_lags.max,
        ep_rew_mean=finite_or_none(_mean([item.episode.total_reward for item in result.trained])),
        ep_len_mean=_mean([item.episode.length for item in result.trained]),
        win_rate=outcomes.count("Victory") / len(outcomes) if outcomes else None,
        batch_s=seconds,
        train_s=m.train_time_s,
        fps=m.n_samples / m.train_time_s if m.train_time_s else None,
        files=len(result.trained),
        samples=m.n_samples,
        quarantined=len(result.quarantined),
        stale=len(result.stale),
        files_processed=counters.files_processed,
        batches_trained=counters.batches_trained,
        total_samples=counters.total_samples,
        episodes=games,
    )


def append_training_log(
    root: TrainingRoot, result: BatchResult, seconds: float, counters: LearnerCounters
) -> None:
    """The seed's log block, in ``logs/background_training.log``."""
    assert result.published is not None and result.report is not None
    metrics = result.report.metrics
    returns = [item.episode.total_reward for item in result.trained]
    block = (
        f"\n[{datetime.now():%Y-%m-%d %H:%M:%S}] Batch Training Complete\n"
        f"  Batch Size:      {len(result.trained)} games\n"
        f"  Total Steps:     {metrics.n_samples}\n"
        f"  Loss:            {metrics.loss:.4f}\n"
        f"  Model Version:   {result.published.version}\n"
        f"  Mean Return:     {float(np.mean(returns)):.2f}\n"
        f"  Processing Time: {seconds:.2f}s\n"
        f"  Total Processed: {counters.files_processed} files\n"
        f"  Total Skipped:   {counters.files_skipped_old} files (too old)\n"
        f"  Total Batches:   {counters.batches_trained}\n" + LOG_BLOCK_END + "\n"
    )
    root.logs.mkdir(parents=True, exist_ok=True)
    with open(root.training_log, "a", encoding="utf-8") as f:
        f.write(block)


def batch_lines(result: BatchResult, seconds: float) -> str:
    """The seed's console lines for a published batch (verbose)."""
    assert result.published is not None and result.report is not None
    return (
        f"[BG_LEARNER] [OK] Training complete!\n"
        f"  - Loss: {result.report.metrics.loss:.4f}\n"
        f"  - Games trained: {len(result.trained)}\n"
        f"  - Model version: {result.published.version}\n"
        f"  - Files archived: {len(result.archived)}\n"
        f"  - Processing time: {seconds:.2f}s"
    )


def open_tensorboard(root: TrainingRoot) -> Any:
    """A TensorBoard writer under ``logs/tensorboard/`` when tensorboard is installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(root.logs / "tensorboard"))


def write_tensorboard(writer: Any, event: BatchEvent) -> None:
    """The batch's ``group/name`` figures as TensorBoard scalars at step = model version."""
    for key, value in event.scalars().items():
        writer.add_scalar(key, value, event.version)
    writer.flush()
