"""What the learner counts and tells after each cycle: its totals (``state/counters.json``),
``metrics.jsonl``, the seed's training log block, TensorBoard and its console lines."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from bgtrain.learn import reporting
from bgtrain.learn.guard import Restore
from bgtrain.learn.pipeline import BatchResult, TrainingReport
from bgtrain.store.counters import COUNTERS_NAME, LearnerCounters
from bgtrain.store.events import Event, append_event, set_aside_event
from bgtrain.store.root import TrainingRoot
from bgtrain.store.spool import SetAside

logger = logging.getLogger(__name__)


class LearnerAccounts:
    """The learner's totals and reports. ``say(text, level=logging.INFO)`` takes the
    seed's console lines; ``verbose`` adds the per-batch lines."""

    def __init__(self, root: TrainingRoot, say: Callable[..., None], verbose: bool) -> None:
        self.root = root
        self._say = say
        self._verbose = verbose
        self.counters = LearnerCounters()
        #: The last published batch's training report (its policy lags feed the stats).
        self.last_report: TrainingReport | None = None
        self._tensorboard: Any = None

    def open_tensorboard(self) -> None:
        self._tensorboard = reporting.open_tensorboard(self.root)

    def close_tensorboard(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None

    def save(self) -> None:
        """``state/counters.json`` (raises OSError: the caller decides what a failure means)."""
        self.counters.save(self.root.state / COUNTERS_NAME)

    def set_aside(self, moved: list[SetAside]) -> None:
        """Count, log and say each file set aside, whether or not its cycle published."""
        c = self.counters
        for item in moved:
            if item.folder == "split":  # its pieces are trained and counted in its place
                self._say(f"[BG_LEARNER] Split {item.path.name}: {item.reason}")
                continue
            if item.folder == "quarantine":
                c.files_quarantined += 1
                self._say(f"[BG_LEARNER] [WARN] Quarantined {item.path.name}: {item.reason}")
            else:
                c.files_skipped_old += 1
            event = set_aside_event(item.folder, item.path.name, item.reason)
            self._log_event(event, f"that {item.path.name} was set aside")

    def restored(self, restore: Restore, window: int) -> None:
        """Count, say and log that the collapse guard went back to a better version."""
        self.counters.guard_restores += 1
        e = restore.event
        text = (
            f"collapse guard: the last {window} games averaged {e.recent_mean:.1f} "
            f"(best {e.best_mean:.1f}, first games {e.baseline:.1f}); back to model "
            f"v{restore.version}'s weights"
        )
        self._say(f"[BG_LEARNER] [WARN] {text[0].upper()}{text[1:]}", logging.WARNING)
        self._log_event(e, "the collapse guard's restore")

    def cycle(self, result: BatchResult, seconds: float) -> None:
        """A cycle that claimed files: its time; once published, the batch's totals, its
        ``metrics.jsonl`` event, the seed's log block, TensorBoard and the console lines."""
        c = self.counters
        c.total_processing_time += seconds
        if result.published is None:
            self.save()
            return
        report = result.report
        assert report is not None, "the learner's train step always reports"
        self.last_report = report
        c.count_batch(len(result.archived), report.metrics.n_samples, report.metrics.loss)
        c.last_batch_time = time.time()
        self.save()
        event = reporting.batch_event(result, seconds, c)
        append_event(self.root, event)
        reporting.append_training_log(self.root, result, seconds, c)
        if self._tensorboard is not None:
            reporting.write_tensorboard(self._tensorboard, event)
        if self._verbose:
            self._say(reporting.batch_lines(result, seconds))

    def _log_event(self, event: Event, what: str) -> None:
        try:
            append_event(self.root, event)
        except OSError as exc:  # a full disk: the counters and the files still hold it
            logger.warning("could not log %s: %s", what, exc)
