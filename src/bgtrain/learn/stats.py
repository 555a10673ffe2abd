"""The learner's statistics: ``get_stats()`` (the seed's API) and its STATUS REPORT block."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bgtrain.common.console import RULE
from bgtrain.learn.staleness import summarize_lags
from bgtrain.store.counters import LearnerCounters
from bgtrain.store.spool import SpoolCounts


@dataclass(frozen=True)
class LearnerStats:
    """The seed's statistics, plus model version, quarantine, throughput and policy lag.

    ``as_dict()`` gives ``get_stats()``'s dict: the seed's keys, as its users read them.
    """

    files_processed: int
    batches_trained: int
    total_samples: int
    #: Seconds spent in batches (claim to archive), all batches.
    total_processing_time: float
    avg_loss: float
    last_loss: float
    errors: int
    active_workers: int
    max_workers: int
    #: Unix time of the last published batch.
    last_batch_time: float | None
    buffer_file_count: int
    archive_file_count: int
    files_skipped_old: int
    model_version: int
    files_quarantined: int
    samples_per_second: float
    #: Policy lag of the last batch's games, in model versions.
    policy_lag_min: int
    policy_lag_mean: float
    policy_lag_max: int
    running: bool

    @classmethod
    def gather(
        cls,
        counters: LearnerCounters,
        counts: SpoolCounts,
        lags: list[int],
        *,
        active_workers: int,
        max_workers: int,
        model_version: int,
        running: bool,
    ) -> LearnerStats:
        c, lag = counters, summarize_lags(lags)
        return cls(
            files_processed=c.files_processed,
            batches_trained=c.batches_trained,
            total_samples=c.total_samples,
            total_processing_time=c.total_processing_time,
            avg_loss=c.avg_loss,
            last_loss=c.last_loss,
            errors=c.errors,
            active_workers=min(active_workers, max_workers),
            max_workers=max_workers,
            last_batch_time=c.last_batch_time,
            buffer_file_count=counts.buffer,
            archive_file_count=counts.archive,
            files_skipped_old=c.files_skipped_old,
            model_version=model_version,
            files_quarantined=c.files_quarantined,
            samples_per_second=c.samples_per_second,
            policy_lag_min=lag.min,
            policy_lag_mean=lag.mean,
            policy_lag_max=lag.max,
            running=running,
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def status_report(stats: LearnerStats, max_file_age: float) -> str:
    """The seed's 30-second ``[BACKGROUND LEARNER] STATUS REPORT`` block."""
    s = stats
    lines = [
        "",
        RULE,
        "[BACKGROUND LEARNER] STATUS REPORT",
        RULE,
        "Training Statistics:",
        f"  Files Processed:      {s.files_processed}",
        f"  Files Skipped (Old):  {s.files_skipped_old}",
        f"  Files Quarantined:    {s.files_quarantined}",
        f"  Batch Training Runs:  {s.batches_trained}",
        f"  Total Samples:        {s.total_samples}",
        f"  Average Loss:         {s.avg_loss:.4f}",
        f"  Last Loss:            {s.last_loss:.4f}",
        f"  Model Version:        {s.model_version}",
        f"  Samples/s:            {s.samples_per_second:.0f}",
        f"  Policy Lag:           min {s.policy_lag_min} / mean "
        f"{s.policy_lag_mean:.1f} / max {s.policy_lag_max}",
        "",
        "Directory Status:",
        f"  Buffer Files:         {s.buffer_file_count}",
        f"  Archived Files:       {s.archive_file_count}",
        f"  Max File Age:         {max_file_age / 60:.1f} min",
        "",
        "System Status:",
        f"  Active Workers:       {s.active_workers}/{s.max_workers}",
        f"  Total Process Time:   {s.total_processing_time:.2f}s",
        f"  Errors:               {s.errors}",
    ]
    if s.last_batch_time:
        last = datetime.fromtimestamp(s.last_batch_time)
        lines.append(f"  Last Training:        {last:%Y-%m-%d %H:%M:%S}")
    lines += [RULE, ""]
    return "\n".join(lines)
