"""What the learner tells people and tools: the seed's texts, metrics.jsonl, TensorBoard.

Texts keep the seed system's wording (``[BACKGROUND LEARNER] STATUS REPORT``, the
``Batch Training Complete`` log block); metric names follow Stable-Baselines3
(``train/*``, ``rollout/*``, ``time/*``) and Sample Factory (``train/version_diff_*``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bgtrain.learn.pipeline import BatchResult
from bgtrain.store.root import TrainingRoot
from bgtrain.store.spool import Spool

if TYPE_CHECKING:
    from bgtrain.learn.algorithms.ppo import TrainMetrics
    from bgtrain.store.counters import LearnerCounters

logger = logging.getLogger(__name__)

RULE = "=" * 70


def _finite(x: float) -> float | None:
    """JSON has no NaN: a figure that is not finite is written as null."""
    return float(x) if math.isfinite(x) else None


def batch_record(
    result: BatchResult,
    metrics: TrainMetrics,
    lags: Sequence[int],
    seconds: float,
    counters: LearnerCounters,
    replay_lags: Sequence[int] = (),
) -> dict[str, Any]:
    """One ``metrics.jsonl`` line for a published batch (``counters`` already count it)."""
    episodes = [
        {
            "name": item.path.name,
            "return": _finite(item.episode.total_reward),
            "length": item.episode.length,
            "outcome": item.episode.outcome,
            "policy_version": item.episode.policy_version,
            "terminated": item.episode.terminated,
        }
        for item in result.trained
    ]
    returns = [item.episode.total_reward for item in result.trained]
    lengths = [item.episode.length for item in result.trained]
    outcomes = [e["outcome"] for e in episodes if e["outcome"]]
    assert result.published is not None
    return {
        "event": "batch",
        "time": datetime.now().astimezone().isoformat(timespec="milliseconds"),
        "t": time.time(),
        "version": result.published.version,
        "train/loss": _finite(metrics.loss),
        "train/policy_gradient_loss": _finite(metrics.policy_loss),
        "train/value_loss": _finite(metrics.value_loss),
        "train/entropy_loss": _finite(-metrics.entropy),
        "train/approx_kl": _finite(metrics.approx_kl),
        "train/clip_fraction": _finite(metrics.clip_fraction),
        "train/explained_variance": _finite(metrics.explained_variance),
        "train/behaviour_ratio_mean": _finite(metrics.ratio_mean),
        "train/n_updates": metrics.n_updates,
        "train/version_diff_min": min(lags) if lags else 0,
        "train/version_diff_avg": float(np.mean(lags)) if lags else 0.0,
        "train/version_diff_max": max(lags) if lags else 0,
        # Sample reuse: replayed samples per new sample, and how far behind they were.
        "train/replay_ratio": metrics.n_replayed_samples / max(metrics.n_samples, 1),
        "train/replay_version_diff_avg": float(np.mean(replay_lags)) if replay_lags else 0.0,
        "train/replay_version_diff_max": max(replay_lags) if replay_lags else 0,
        "rollout/ep_rew_mean": _finite(float(np.mean(returns))),
        "rollout/ep_len_mean": float(np.mean(lengths)),
        "rollout/win_rate": outcomes.count("Victory") / len(outcomes) if outcomes else None,
        "time/batch_s": seconds,
        "time/train_s": metrics.train_time_s,
        "time/fps": metrics.n_samples / metrics.train_time_s if metrics.train_time_s else None,
        "batch/files": len(result.trained),
        "batch/samples": metrics.n_samples,
        "batch/quarantined": len(result.quarantined),
        "batch/stale": len(result.stale),
        "totals/files_processed": counters.files_processed,
        "totals/batches_trained": counters.batches_trained,
        "totals/total_samples": counters.total_samples,
        "episodes": episodes,
    }


def set_aside_event(kind: str, path: Path, spool: Spool) -> dict[str, Any]:
    reason = spool.reason(path) or {}
    return {
        "event": kind,
        "time": datetime.now().astimezone().isoformat(timespec="milliseconds"),
        "t": time.time(),
        "name": path.name,
        "reason": reason.get("reason"),
    }


def append_metrics(root: TrainingRoot, record: dict[str, Any]) -> None:
    """One line, in one ``write`` on an append-mode descriptor: the learner and the run
    both append to this file, and a single appending write is not interleaved."""
    root.logs.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(record) + "\n").encode("utf-8")
    fd = os.open(root.metrics, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def append_training_log(
    root: TrainingRoot,
    result: BatchResult,
    metrics: TrainMetrics,
    seconds: float,
    counters: LearnerCounters,
) -> None:
    """The seed's log block, in ``logs/background_training.log``."""
    assert result.published is not None
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
        f"  Total Batches:   {counters.batches_trained}\n" + "-" * 60 + "\n"
    )
    root.logs.mkdir(parents=True, exist_ok=True)
    with open(root.training_log, "a", encoding="utf-8") as f:
        f.write(block)


def batch_lines(result: BatchResult, metrics: TrainMetrics, seconds: float) -> str:
    assert result.published is not None
    return (
        f"[BG_LEARNER] [OK] Training complete!\n"
        f"  - Loss: {metrics.loss:.4f}\n"
        f"  - Games trained: {len(result.trained)}\n"
        f"  - Model version: {result.published.version}\n"
        f"  - Files archived: {len(result.archived)}\n"
        f"  - Processing time: {seconds:.2f}s"
    )


def status_report(stats: dict[str, Any], max_file_age: float) -> str:
    """The seed's 30-second ``[BACKGROUND LEARNER] STATUS REPORT`` block."""
    lines = [
        "",
        RULE,
        "[BACKGROUND LEARNER] STATUS REPORT",
        RULE,
        "Training Statistics:",
        f"  Files Processed:      {stats['files_processed']}",
        f"  Files Skipped (Old):  {stats['files_skipped_old']}",
        f"  Files Quarantined:    {stats['files_quarantined']}",
        f"  Batch Training Runs:  {stats['batches_trained']}",
        f"  Total Samples:        {stats['total_samples']}",
        f"  Average Loss:         {stats['avg_loss']:.4f}",
        f"  Last Loss:            {stats['last_loss']:.4f}",
        f"  Model Version:        {stats['model_version']}",
        f"  Samples/s:            {stats['samples_per_second']:.0f}",
        f"  Policy Lag:           min {stats['policy_lag_min']} / mean "
        f"{stats['policy_lag_mean']:.1f} / max {stats['policy_lag_max']}",
        "",
        "Directory Status:",
        f"  Buffer Files:         {stats['buffer_file_count']}",
        f"  Archived Files:       {stats['archive_file_count']}",
        f"  Max File Age:         {max_file_age / 60:.1f} min",
        "",
        "System Status:",
        f"  Active Workers:       {stats['active_workers']}/{stats['max_workers']}",
        f"  Total Process Time:   {stats['total_processing_time']:.2f}s",
        f"  Errors:               {stats['errors']}",
    ]
    if stats["last_batch_time"]:
        last = datetime.fromtimestamp(stats["last_batch_time"])
        lines.append(f"  Last Training:        {last:%Y-%m-%d %H:%M:%S}")
    lines += [RULE, ""]
    return "\n".join(lines)


def open_tensorboard(root: TrainingRoot) -> Any:
    """A TensorBoard writer under ``logs/tensorboard/`` when tensorboard is installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(root.logs / "tensorboard"))


def write_tensorboard(writer: Any, record: dict[str, Any]) -> None:
    step = record["version"]
    for key, value in record.items():
        if "/" in key and isinstance(value, (int, float)) and not isinstance(value, bool):
            writer.add_scalar(key, value, step)
    writer.flush()
