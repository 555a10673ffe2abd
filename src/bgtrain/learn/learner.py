"""The background learner: spool + trainer + model store + reporting, in one loop.

It runs as a thread (``start()``/``stop()``, the seed system's API) or as its own
process (``bgtrain learn``). Each cycle claims a batch from ``buffer/``, validates it
(bad files to quarantine, too old or too far behind the policy to stale), trains,
publishes the next model version and archives the batch (see :mod:`bgtrain.learn.pipeline`).
It wakes as soon as a file lands (watchdog) and polls every ``poll_interval`` as a
fallback; while it trains, ``max_workers`` threads load and validate the next files.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bgtrain.common.outage import OutageLog
from bgtrain.common.settings import replace_settings
from bgtrain.errors import TrainingStopped
from bgtrain.learn.accounting import LearnerAccounts
from bgtrain.learn.algorithms import Algorithm
from bgtrain.learn.batch_trainer import BatchTrainer
from bgtrain.learn.heartbeat import HeartbeatThread
from bgtrain.learn.pipeline import (
    BatchResult,
    LoadedEpisode,
    TrainedModel,
    recover_root,
    run_batch,
)
from bgtrain.learn.prefetch import Prefetcher
from bgtrain.learn.settings import LearnerSettings
from bgtrain.learn.stats import LearnerStats, status_report
from bgtrain.learn.watch import BufferWatch
from bgtrain.store.counters import (
    Heartbeat,
    LearnerCounters,
    load_counters,
    repair_counters,
    root_facts,
    write_heartbeat,
)
from bgtrain.store.lock import LearnerLock
from bgtrain.store.models import ModelStore
from bgtrain.store.root import DEFAULT_ROOT, TrainingRoot
from bgtrain.store.spool import Spool

logger = logging.getLogger(__name__)

#: Right after a batch the learner looks at the buffer every FAST_POLL_S for
#: FAST_POLL_WINDOW_S: watchdog's inotify backend holds every event for 0.5 s behind the
#: "moved out" events that the learner's own claim just caused.
FAST_POLL_S = 0.02
FAST_POLL_WINDOW_S = 1.0
#: After a failed cycle the learner waits before the next one, doubling from the first to
#: the last of these while the failure lasts (a full disk, a model file held open).
FAILURE_BACKOFF_S = (0.5, 30.0)
#: A stop lets the batch in hand finish for this long, then interrupts its training (the
#: batch goes back to buffer/): a batch takes well under a second, a huge game minutes.
STOP_GRACE_S = 2.0
#: How often a running learner looks for writers' old temp files in buffer/.
TEMP_SWEEP_S = 60.0
#: A failure that lasts is said on the console at these counts of failed cycles in a row,
#: then every SAY_FAILURES_EVERY: a person sees it begin and go on, not a line per cycle.
SAY_FAILURES_AT = (1, 10)
SAY_FAILURES_EVERY = 100


class BackgroundLearner:
    """Trains on a root's recorded games in the background and publishes models.

    ``start()`` takes the root's learner lock (a second learner gets
    :class:`~bgtrain.errors.LearnerLockedError`), recovers from any crash, and starts the
    worker thread; ``stop()`` finishes or returns the batch in hand and releases the lock.
    """

    def __init__(
        self,
        root: str | Path | TrainingRoot = DEFAULT_ROOT,
        settings: LearnerSettings | None = None,
        *,
        console: Callable[[str], None] | None = None,
        enable_model_training: bool = True,
        **overrides: Any,
    ) -> None:
        self.root = TrainingRoot.at(root)
        self.settings = s = replace_settings(settings or LearnerSettings(), **overrides)
        self.enable_model_training = enable_model_training
        #: Where the seed's console lines go (``bgtrain learn`` passes print): library code
        #: does not print on its own.
        self._console = console
        self.spool = Spool(self.root, s.size_limits)
        self.store = ModelStore(self.root, s.history_size)
        self.accounts = LearnerAccounts(self.root, self._say, s.verbose)
        #: What is trained, batch after batch (the algorithm, replay window, guard).
        self.batch_trainer = BatchTrainer(s, self.store, self._abandon_batch)
        self._lock = LearnerLock(self.root, role="learner")
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat = HeartbeatThread(self.root, self._heartbeat_now)
        self._watch = BufferWatch(self.root.buffer, self._wake.set, s.poll_interval)
        self._prefetcher: Prefetcher | None = None
        self._busy = False
        self._last_report = 0.0
        self._last_batch_end = -math.inf
        self._failures = 0
        self._last_sweep = time.monotonic()
        self._stop_requested_at = math.inf
        #: OS errors met while stopping (final heartbeat, counters): nothing is lost, but
        #: the CLI reports them.
        self.stop_errors: list[OSError] = []
        self._housekeeping_outage = OutageLog("the learner's status report or temp sweep", logger)

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Lock, recover, load the latest model, start watching and the worker thread."""
        if self.running:
            return False
        self.root.check(write=True)
        self._lock.acquire()
        try:
            self._recover()
            self._prefetcher = Prefetcher(self.settings.max_workers, self.settings.size_limits)
            self.accounts.open_tensorboard()
            self._stop.clear()
            self._watch.start()
            self._thread = threading.Thread(target=self._run, name="bgtrain-learner", daemon=True)
            self._thread.start()
            self._heartbeat.start()
        except BaseException:
            self._lock.release()
            raise
        self._say(f"[BG_LEARNER] Started (Monitoring {self.root.buffer})")
        return True

    def _recover(self) -> None:
        """What a start does under the lock before any thread runs: finish or undo an
        interrupted batch, repair the totals, continue from the latest model."""
        recovery = recover_root(self.spool, self.store, self.settings.stale_temp_age)
        if recovery.archived or recovery.returned:
            self._say(
                f"[BG_LEARNER] Recovered an interrupted batch: {len(recovery.archived)} "
                f"archived (already trained), {len(recovery.returned)} back to the buffer"
            )
        self.counters = load_counters(self.spool, self.store)
        self.batch_trainer.continue_from_latest()
        if self.settings.torch_threads:
            import torch

            torch.set_num_threads(self.settings.torch_threads)

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the batch in hand is published (or returned to the buffer).

        Does nothing on a learner that is not started (or whose start was refused): the
        root's state files belong to the learner that holds the lock.
        """
        if not self._lock.is_held:
            return
        try:
            self._stop_requested_at = time.monotonic()
            self._stop.set()
            self._wake.set()
            if self._thread is not None:
                self._thread.join(timeout)
            self._heartbeat.stop(timeout)
            self._watch.stop()
            if self._prefetcher is not None:
                self._prefetcher.shutdown()
            self.accounts.close_tensorboard()
            self._write_final_state()
        finally:
            self._lock.release()
        self._say("[BG_LEARNER] Stopped")

    def _write_final_state(self) -> None:
        # A full disk must not keep the lock: the counters are repaired at the next
        # start, and a heartbeat that is not rewritten goes stale on its own.
        for what, write in (
            ("heartbeat", lambda: write_heartbeat(self.root, self._heartbeat_now("stopped"))),
            ("counters", self.accounts.save),
        ):
            try:
                write()
            except OSError as exc:
                logger.warning("could not write the final %s at stop: %s", what, exc)
                self.stop_errors.append(exc)

    @property
    def idle(self) -> bool:
        """The last look at the buffer found nothing to train on."""
        return self._idle.is_set()

    def wake(self) -> None:
        """Look at the buffer now (what a file event does)."""
        self._wake.set()

    def __enter__(self) -> BackgroundLearner:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                worked = self.run_once()
            except TrainingStopped:
                break  # the batch is back in buffer/
            except Exception as exc:
                self._cycle_failed(exc)
                self._catch_up_with_the_root()
                self._stop.wait(self._backoff())
                continue
            if self._failures:
                self._said_or_logged(
                    f"[BG_LEARNER] Recovered after {self._failures} failed cycle(s)",
                    lambda: logger.warning(
                        "learner cycles work again after %d failure(s)", self._failures
                    ),
                )
                self._failures = 0
            self._housekeeping()
            if worked:
                self._idle.clear()
                self._last_batch_end = time.monotonic()
                continue
            if self.spool.settling:  # a file waits to settle: not idle, look again soon
                self._idle.clear()
                self._wake.wait(min(self.settings.settle_time, self.settings.poll_interval))
                continue
            self._idle.set()
            recent = time.monotonic() - self._last_batch_end < FAST_POLL_WINDOW_S
            self._wake.wait(FAST_POLL_S if recent else self.settings.poll_interval)

    def _cycle_failed(self, exc: Exception) -> None:
        """Count a failed cycle; a traceback the first time, one line while it lasts."""
        self.counters.errors += 1
        self._failures += 1
        if self._failures == 1:
            # An OS error (a full disk, a file held open) is the machine's, not a bug: its
            # message says it all; anything else gets its traceback, once (logged even
            # beside a console: the traceback is what the console line lacks).
            if not isinstance(exc, OSError) and self._console is not None:
                logger.error("learner cycle failed", exc_info=exc)
            self._said_or_logged(
                f"[BG_LEARNER] [ERROR] Processing error: {exc}",
                lambda: logger.error(
                    "learner cycle failed (the batch went back to buffer/): %s",
                    exc,
                    exc_info=None if isinstance(exc, OSError) else exc,
                ),
            )
        elif self._console is None:  # with a console, the lines below say it lasts
            logger.warning("learner cycle failed again (%d in a row): %s", self._failures, exc)
        if self._failures in SAY_FAILURES_AT or self._failures % SAY_FAILURES_EVERY == 0:
            self._say(
                f"[BG_LEARNER] [ERROR] {self._failures} failed cycle(s) in a row; retrying in "
                f"{self._backoff():g}s: {exc}"
            )

    def _catch_up_with_the_root(self) -> None:
        """A cycle that failed after its publish (a full disk while archiving or logging)
        still made a version: take the version and the totals from the root, as start-up
        would, so that the counters keep adding up while the learner runs."""
        try:
            latest = self.store.latest_version()
            if latest is None or latest == self.model_version:
                return
            self.batch_trainer.catch_up(latest)
            self.counters, repairs = repair_counters(
                self.counters, root_facts(self.spool, self.store)
            )
            if repairs:
                logger.warning("counters caught up with version %d: %s", latest, "; ".join(repairs))
        except Exception as exc:  # the root is still failing: the next cycle tries again
            logger.warning("could not catch up with the root after a failed cycle: %s", exc)

    def _backoff(self) -> float:
        first, most = FAILURE_BACKOFF_S
        return min(most, first * 2 ** max(0, self._failures - 1))

    def _housekeeping(self) -> None:
        """The status report and the temp sweep: a failure there (a closed console, a
        folder that cannot be listed) is said once and never ends the learner's thread."""
        try:
            self._maybe_report()
            self._maybe_sweep_temps()
            self._keep_watching()
        except Exception as exc:
            self._housekeeping_outage.failed(exc)
        else:
            self._housekeeping_outage.succeeded()

    def _keep_watching(self) -> None:
        if not self._stop.is_set():  # a stopping learner's watch is being stopped on purpose
            self._watch.keep_watching()

    def _maybe_sweep_temps(self) -> None:
        if time.monotonic() - self._last_sweep >= TEMP_SWEEP_S:
            self._last_sweep = time.monotonic()
            self.spool.remove_writer_temps(self.settings.stale_temp_age)

    def run_once(self) -> bool:
        """One cycle; ``True`` if a batch was claimed. (The thread calls this in a loop.)"""
        if not self.enable_model_training:
            return False
        assert self._prefetcher is not None
        started = time.perf_counter()
        self._busy = True
        try:
            result = run_batch(
                self.spool,
                self.store,
                self._train,
                self.batch_trainer.limits(),
                self.batch_trainer.why_stale,
                self._prefetcher.load,
                discard=self.batch_trainer.discard,
            )
        finally:
            self._busy = False
            self.accounts.set_aside(self.spool.take_set_aside())
        if result is None:
            return False
        self._account(result, time.perf_counter() - started)
        return True

    def _train(self, batch: Sequence[LoadedEpisode]) -> TrainedModel:
        # While the network trains, the workers load the next files from the buffer.
        assert self._prefetcher is not None
        pending = self.spool.upcoming(self.settings.batch_files * 2)
        self._prefetcher.forget_missing({p.name for p in pending})
        self._prefetcher.prefetch(pending)
        return self.batch_trainer.train(batch, self.counters)

    def _abandon_batch(self) -> bool:
        """A stop came more than STOP_GRACE_S ago: give the batch in hand back."""
        return time.monotonic() - self._stop_requested_at >= STOP_GRACE_S

    @property
    def algorithm(self) -> Algorithm | None:
        """The algorithm being trained (``None`` before the first batch of a new root)."""
        return self.batch_trainer.algorithm

    @property
    def model_version(self) -> int:
        """The latest version this learner published or continued from (0: none)."""
        return self.batch_trainer.model_version

    # ------------------------------------------------------------------ accounting

    @property
    def counters(self) -> LearnerCounters:
        """The learner's running totals (saved in ``state/counters.json``)."""
        return self.accounts.counters

    @counters.setter
    def counters(self, value: LearnerCounters) -> None:
        self.accounts.counters = value

    def _account(self, result: BatchResult, seconds: float) -> None:
        if result.published is not None:
            restore = self.batch_trainer.published(result)
            if restore is not None:
                assert self.batch_trainer.guard is not None
                self.accounts.restored(restore, self.batch_trainer.guard.window)
        self.accounts.cycle(result, seconds)

    # ------------------------------------------------------------------ reporting

    def _heartbeat_now(self, state: str | None = None) -> Heartbeat:
        return Heartbeat(
            pid=os.getpid(),
            time=time.time(),
            state=state or ("training" if self._busy else "idle"),
            model_version=self.model_version,
            errors=self.counters.errors,
        )

    def _said_or_logged(self, line: str, log: Callable[[], None]) -> None:
        """One event, told once: its seed ``line`` on the console when there is one, else
        its ``log`` record (where the run prints the learner's log records, both would
        show it twice)."""
        if self._console is not None:
            self._console(line)
        else:
            log()

    def _say(self, text: str, level: int = logging.INFO) -> None:
        """A seed console line: to the console when there is one, else to the log at
        ``level`` (never both: where the run prints the learner's log records, both would
        show it twice)."""
        if self._console is not None:
            self._console(text)
        else:
            logger.log(level, "%s", text)

    def _maybe_report(self) -> None:
        now = time.monotonic()
        if self.settings.verbose and now - self._last_report >= self.settings.report_interval:
            self._last_report = now
            self._say(status_report(self.stats(), self.settings.max_file_age))

    def stats(self) -> LearnerStats:
        """The learner's statistics now (typed; ``get_stats()`` is the seed's dict of it)."""
        active = (1 if self._busy else 0) + (self._prefetcher.active if self._prefetcher else 0)
        return LearnerStats.gather(
            self.counters,
            self.spool.counts(),
            self.accounts.last_report.policy_lags if self.accounts.last_report else [],
            active_workers=active,
            max_workers=self.settings.max_workers,
            model_version=self.model_version,
            running=self.running,
        )

    def get_stats(self) -> dict[str, Any]:
        """The seed's statistics, plus model version, quarantine, throughput and lag."""
        return self.stats().as_dict()
