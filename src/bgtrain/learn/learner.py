"""The background learner: spool + trainer + model store + reporting, in one loop.

It runs as a thread (``start()``/``stop()``, the seed system's API) or as its own
process (``bgtrain learn``). Each cycle claims a batch from ``buffer/``, validates it
(bad files to quarantine, too old or too far behind the policy to stale), trains,
publishes the next model version and archives the batch (see :mod:`bgtrain.learn.pipeline`).
It wakes as soon as a file lands (watchdog) and polls every ``poll_interval`` as a
fallback; while it trains, ``max_workers`` threads load and validate the next files.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bgtrain.common.settings import replace_settings
from bgtrain.errors import (
    InvalidModelError,
    NonFiniteTrainingError,
    PoisonedBatchError,
    TrainingStopped,
)
from bgtrain.learn import reporting
from bgtrain.learn.algorithms.ppo import Trainer, TrainMetrics
from bgtrain.learn.guard import Collapse, CollapseGuard, NewBest
from bgtrain.learn.pipeline import (
    BatchLimits,
    BatchResult,
    LoadedEpisode,
    TrainedModel,
    recover_root,
    run_batch,
)
from bgtrain.learn.replay_window import ReplayEntry, ReplayWindow
from bgtrain.learn.settings import LearnerSettings
from bgtrain.store.counters import (
    COUNTERS_NAME,
    HEARTBEAT_NAME,
    HEARTBEAT_S,
    LearnerCounters,
    OutageLog,
    load_counters,
    repair_counters,
    root_facts,
    write_heartbeat,
)
from bgtrain.store.episode import Episode, load_episode
from bgtrain.store.lock import LearnerLock
from bgtrain.store.models import LoadedModel, ModelStore
from bgtrain.store.root import DEFAULT_ROOT, TrainingRoot
from bgtrain.store.safe_npz import SizeLimits
from bgtrain.store.spool import Spool, is_episode_name

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


def _quiet_watchdog_stop_race(record: logging.LogRecord) -> bool:
    # watchdog logs this as an error when an event arrives while its observer is stopping;
    # nothing is lost (the learner is stopping), so it is not shown to users.
    return "called when the thread is inactive" not in record.getMessage()


logging.getLogger("watchdog.observers.inotify").addFilter(_quiet_watchdog_stop_race)


class _Prefetcher:
    """Loads and validates buffer files on worker threads while the learner trains.

    A claim renames a file into ``processing/``: same inode, size and mtime, so a result
    loaded from ``buffer/`` is reused when those still match and the load succeeded. A
    failed early load is never reused: the worker may have looked in ``buffer/`` after the
    claim had moved the file ("file not found"), so the file is loaded again where it is.
    """

    def __init__(self, workers: int, limits: SizeLimits) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bgtrain-load")
        self._limits = limits
        self._futures: dict[str, tuple[tuple[int, int, int], Future[Episode]]] = {}
        self.active = 0
        self._lock = threading.Lock()

    def _load(self, path: Path) -> Episode:
        with self._lock:
            self.active += 1
        try:
            return load_episode(path, limits=self._limits)
        finally:
            with self._lock:
                self.active -= 1

    def prefetch(self, paths: Sequence[Path]) -> None:
        for path in paths:
            if path.name in self._futures:
                continue
            try:
                st = path.lstat()
            except OSError:
                continue
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            self._futures[path.name] = (key, self._pool.submit(self._load, path))

    def load(self, path: Path) -> Episode:
        entry = self._futures.pop(path.name, None)
        if entry is not None:
            try:
                st = path.lstat()
                future = entry[1]
                if (st.st_ino, st.st_size, st.st_mtime_ns) == entry[0] and (
                    future.exception() is None
                ):
                    return future.result()
            except (OSError, CancelledError):
                pass
        return load_episode(path, limits=self._limits)

    def forget_missing(self, present: set[str]) -> None:
        for name in [n for n in self._futures if n not in present]:
            del self._futures[name]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


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
        self.settings = replace_settings(settings or LearnerSettings(), **overrides)
        self.enable_model_training = enable_model_training
        self._console = (
            console if console is not None else (print if self.settings.verbose else None)
        )
        self.spool = Spool(self.root, self.settings.size_limits)
        self.store = ModelStore(self.root, self.settings.history_size)
        self.counters = LearnerCounters()
        self.trainer: Trainer | None = None
        self.model_version = 0
        self.last_metrics: TrainMetrics | None = None
        self.last_lags: list[int] = []
        #: Policy lag of each replayed episode of the last batch (versions behind).
        self.last_replay_lags: list[int] = []
        s = self.settings
        self.replay = ReplayWindow(s.replay_passes, s.replay_max_lag, s.replay_max_steps)
        #: What the batch in hand replays, and its own episodes: the window changes only
        #: once the batch is published.
        self._replaying: list[ReplayEntry] = []
        self._batch_in_hand: list[LoadedEpisode] = []
        self.guard = CollapseGuard(s.guard_games, s.guard_drop) if s.guard_games else None
        #: The weights the guard goes back to (the best version's), and their version.
        self._best: tuple[int, dict[str, np.ndarray]] | None = None
        #: Set by a restore: the next published model says which version it came back to.
        self._restored_from: int | None = None
        self._lock = LearnerLock(self.root, role="learner")
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat: threading.Thread | None = None
        self._observer: Any = None
        self._prefetcher: _Prefetcher | None = None
        self._busy = False
        self._last_report = 0.0
        self._last_batch_end = -math.inf
        self._tensorboard = None
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
            recovery = recover_root(self.spool, self.store, self.settings.stale_temp_age)
            if recovery.archived or recovery.returned:
                self._say(
                    f"[BG_LEARNER] Recovered an interrupted batch: {len(recovery.archived)} "
                    f"archived (already trained), {len(recovery.returned)} back to the buffer"
                )
            self.counters = load_counters(self.spool, self.store)
            self._load_latest_model()
            if self.settings.torch_threads:
                import torch

                torch.set_num_threads(self.settings.torch_threads)
            self._prefetcher = _Prefetcher(self.settings.max_workers, self.settings.size_limits)
            self._tensorboard = reporting.open_tensorboard(self.root)
            self._stop.clear()
            self._observer = self._watch()
            self._thread = threading.Thread(target=self._run, name="bgtrain-learner", daemon=True)
            self._thread.start()
            self._heartbeat = threading.Thread(
                target=self._beat, name="bgtrain-heartbeat", daemon=True
            )
            self._heartbeat.start()
        except BaseException:
            self._lock.release()
            raise
        self._say(f"[BG_LEARNER] Started (Monitoring {self.root.buffer})")
        return True

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
            if self._heartbeat is not None:
                self._heartbeat.join(timeout)
                self._heartbeat = None
            if self._observer is not None:
                self._observer.stop()
                self._observer.join(timeout=5)
                self._observer = None
            if self._prefetcher is not None:
                self._prefetcher.shutdown()
            if self._tensorboard is not None:
                self._tensorboard.close()
                self._tensorboard = None
            # A full disk must not keep the lock: the counters are repaired at the next
            # start, and a heartbeat that is not rewritten goes stale on its own.
            for what, write in (
                (
                    "heartbeat",
                    lambda: write_heartbeat(self.root, self._heartbeat_record("stopped")),
                ),
                ("counters", lambda: self.counters.save(self.root.state / COUNTERS_NAME)),
            ):
                try:
                    write()
                except OSError as exc:
                    logger.warning("could not write the final %s at stop: %s", what, exc)
                    self.stop_errors.append(exc)
        finally:
            self._lock.release()
        self._say("[BG_LEARNER] Stopped")

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

    def _watch(self) -> Any:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:  # pragma: no cover - watchdog is a dependency
            logger.warning(
                "watchdog is not installed: polling every %ss", self.settings.poll_interval
            )
            return None
        learner = self

        class _Landed(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                name = Path(getattr(event, "dest_path", "") or event.src_path).name
                if event.event_type in ("created", "moved") and is_episode_name(name):
                    learner._wake.set()

        observer = Observer()
        self.root.buffer.mkdir(parents=True, exist_ok=True)
        observer.schedule(_Landed(), str(self.root.buffer), recursive=False)
        observer.daemon = True
        observer.start()
        return observer

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
                self._say(f"[BG_LEARNER] Recovered after {self._failures} failed cycle(s)")
                logger.warning("learner cycles work again after %d failure(s)", self._failures)
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
            # message says it all; anything else gets its traceback, once.
            logger.error(
                "learner cycle failed (the batch went back to buffer/): %s",
                exc,
                exc_info=None if isinstance(exc, OSError) else exc,
            )
            self._say(f"[BG_LEARNER] [ERROR] Processing error: {exc}")
        else:
            logger.warning("learner cycle failed again (%d in a row): %s", self._failures, exc)
        if self._failures in (1, 10) or self._failures % 100 == 0:
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
            self.model_version = latest
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
        """watchdog's watch ends for good when buffer/ is removed (and made again): watch
        anew, so that a landed file wakes the learner at once rather than at the next poll."""
        observer = self._observer
        if observer is None or self._stop.is_set():
            return
        # A stopped observer thread lists no emitter at all, and all() of nothing is True:
        # an empty list is a watch that has ended too.
        emitters = list(observer.emitters)
        if observer.is_alive() and emitters and all(e.is_alive() for e in emitters):
            return
        logger.warning("the watch on %s had ended; watching it again", self.root.buffer)
        observer.stop()
        observer.join(timeout=5)
        self._observer = self._watch()

    def _maybe_sweep_temps(self) -> None:
        if time.monotonic() - self._last_sweep >= TEMP_SWEEP_S:
            self._last_sweep = time.monotonic()
            self.spool.remove_writer_temps(self.settings.stale_temp_age)

    def run_once(self) -> bool:
        """One cycle; ``True`` if a batch was claimed. (The thread calls this in a loop.)"""
        if not self.enable_model_training:
            return False
        s = self.settings
        assert self._prefetcher is not None
        limits = BatchLimits(
            max_files=s.batch_files,
            max_steps=s.batch_steps,
            obs_dim=self.trainer.obs_dim if self.trainer else None,
            n_actions=self.trainer.n_actions if self.trainer else s.n_actions,
            size=s.size_limits,
            settle_time=s.settle_time,
            max_piece_steps=s.max_piece_steps,
            model_version=self.model_version,
        )
        started = time.perf_counter()
        self._busy = True
        try:
            result = run_batch(
                self.spool,
                self.store,
                self._train,
                limits,
                self._why_stale,
                self._prefetcher.load,
                discard=self._discard,
            )
        finally:
            self._busy = False
            self._account_set_aside(self.spool.take_set_aside())
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
        episodes = [item.episode for item in batch]
        if self.trainer is None:
            self.trainer = self._new_trainer(episodes)
        self._replaying = self.replay.select(self.model_version)
        replayed = [ep for entry in self._replaying for ep in entry.episodes]
        try:  # train() is all or nothing; an export that finds NaN undoes it
            metrics = self.trainer.train(episodes, should_stop=self._abandon_batch, replay=replayed)
            arrays = self.trainer.export()
        except NonFiniteTrainingError as exc:
            self.trainer.undo()
            raise self._poisoned(episodes, exc) from exc
        self.last_metrics = metrics
        self._batch_in_hand = list(batch)
        self.last_replay_lags = [
            self.model_version - ep.policy_version
            for ep in replayed
            if ep.policy_version is not None
        ]
        self.last_lags = [
            self.model_version - ep.policy_version if ep.policy_version is not None else 0
            for ep in episodes
        ]
        c = self.counters
        counters = {
            "batches": c.batches_trained + 1,
            "games": c.files_processed + len(episodes),
            "samples": c.total_samples + metrics.n_samples,
        }
        envs = {ep.meta.get("env") for ep in episodes} - {None}
        extra = {"env": envs.pop()} if len(envs) == 1 else {}
        if self._replaying:
            extra["replayed"] = [name for entry in self._replaying for name in entry.names]
        if self.guard is not None:  # the guard as it will be once this batch is published
            preview = copy.deepcopy(self.guard)
            preview.observe(_returns(episodes))
            extra["guard"] = preview.state()
        if self._restored_from is not None:
            extra["restored_from"] = self._restored_from
        return TrainedModel(arrays, self.trainer.meta(counters=counters, extra=extra))

    def _abandon_batch(self) -> bool:
        """A stop came more than STOP_GRACE_S ago: give the batch in hand back."""
        return time.monotonic() - self._stop_requested_at >= STOP_GRACE_S

    def _poisoned(
        self, episodes: Sequence[Episode], exc: NonFiniteTrainingError
    ) -> PoisonedBatchError:
        """Which episodes made training non-finite: each is tried alone from the last good
        state. If none is at fault alone, the batch is trained one episode at a time."""
        assert self.trainer is not None
        # The replayed games trained well before, but the search below tries the new ones
        # alone: start the window afresh so that a replayed game cannot fail every retry.
        self.replay.clear()
        culprits = self.trainer.nonfinite_episodes(episodes)
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

    def _discard(self) -> None:
        """The batch just trained was not published: go back to the state before it."""
        if self.trainer is not None:
            self.trainer.undo()
            logger.warning("the unpublished batch's training was undone; it goes back to buffer/")
        self.last_metrics = None

    def _new_trainer(self, episodes: Sequence[Episode]) -> Trainer:
        """The first model of a root: obs_dim from the episodes, n_actions as configured,
        else as the games said in their meta, else as observed."""
        n_actions = self.settings.n_actions
        if n_actions is None:
            declared = [ep.meta.get("n_actions") for ep in episodes]
            declared = [n for n in declared if isinstance(n, int) and n > 0]
            observed = max(int(ep.actions.max()) for ep in episodes) + 1
            n_actions = max([*declared, observed, 2])
        logger.info("new model: obs_dim %d, %d actions", episodes[0].obs_dim, n_actions)
        return Trainer(episodes[0].obs_dim, n_actions, self.settings)

    def _why_stale(self, path: Path, episode: Episode) -> str | None:
        s = self.settings
        try:
            age = time.time() - path.lstat().st_mtime
        except OSError:
            age = 0.0
        if age > s.max_file_age:
            return f"older than max_file_age {s.max_file_age:g} s (age {age:.0f} s)"
        if s.max_policy_lag is None:
            return None
        cut_at, piece = episode.meta.get("split_at_version"), episode.meta.get("piece")
        if isinstance(cut_at, int) and isinstance(piece, int):
            # A piece of a long game: its lag counts from when it was cut, less the
            # versions its own earlier pieces made (each is trained as a batch of its own).
            lag = self.model_version - cut_at - (piece - 1)
            what = f"piece {piece} of a game cut at model version {cut_at}"
        elif episode.policy_version is not None:
            lag = self.model_version - episode.policy_version
            what = f"played by model version {episode.policy_version}"
        else:
            return None
        if lag > s.max_policy_lag:
            return (
                f"{what}, {lag} versions behind the latest ({self.model_version}); "
                f"max_policy_lag is {s.max_policy_lag}"
            )
        return None

    def _load_latest_model(self) -> None:
        try:
            model: LoadedModel = self.store.load()
            bad = [name for name, values in model.arrays.items() if not np.isfinite(values).all()]
            if bad:  # training from NaN weights would make every episode look poisonous
                raise InvalidModelError(f"{model.path}: {', '.join(bad)} not finite")
        except Exception as exc:  # no model yet, or unreadable: start a new one
            if self.store.latest_version() is not None:
                logger.error("cannot continue from the latest model (%s); a new one starts", exc)
            return
        self.trainer = Trainer.from_model(model, self.settings)
        self.model_version = model.version
        if self.guard is not None and self.guard.resume(
            model.meta.extra.get("guard"), model.version
        ):
            self._best = (model.version, model.arrays)

    # ------------------------------------------------------------------ collapse guard

    def _guard_check(self, episodes: Iterable[Episode]) -> None:
        """Show the guard the games just trained on; remember a new best version's
        weights, or go back to them after a collapse."""
        if self.guard is None or self.trainer is None:
            return
        verdict = self.guard.observe(_returns(episodes))
        if isinstance(verdict, NewBest):
            try:
                self._best = (verdict.version, self.store.load(verdict.version).arrays)
            except Exception as exc:  # pruned from the history already: keep the last best
                logger.warning("collapse guard: cannot keep version %d: %s", verdict.version, exc)
        elif isinstance(verdict, Collapse) and self._best is not None:
            self._restore_best(verdict)

    def _restore_best(self, collapse: Collapse) -> None:
        assert self.trainer is not None and self.guard is not None and self._best is not None
        version, arrays = self._best
        self.trainer.load_weights(arrays)
        self.replay.clear()
        self.guard.restored()
        self._restored_from = version
        self.counters.guard_restores += 1
        text = (
            f"collapse guard: the last {self.guard.window} games averaged "
            f"{collapse.recent_mean:.1f} (best {collapse.best_mean:.1f}, first games "
            f"{collapse.baseline:.1f}); back to model v{version}'s weights"
        )
        logger.warning(text)
        self._say(f"[BG_LEARNER] [WARN] {text[0].upper()}{text[1:]}")
        event = {
            "event": "guard",
            "t": time.time(),
            "restored_version": version,
            "at_version": self.model_version,
            "recent_mean": collapse.recent_mean,
            "best_mean": collapse.best_mean,
            "baseline": collapse.baseline,
        }
        try:
            reporting.append_metrics(self.root, event)
        except OSError as exc:
            logger.warning("could not log the collapse guard's restore: %s", exc)

    def _account_set_aside(self, moved: list[tuple[str, Path]]) -> None:
        """Count, log and report each file set aside, whether or not its cycle published."""
        c = self.counters
        for kind, path in moved:
            if kind == "quarantine":
                c.files_quarantined += 1
            else:
                c.files_skipped_old += 1
            event = reporting.set_aside_event(kind, path, self.spool)
            if kind == "quarantine":
                self._say(f"[BG_LEARNER] [WARN] Quarantined {path.name}: {event['reason']}")
            try:
                reporting.append_metrics(self.root, event)
            except OSError as exc:  # a full disk: the counters still hold it
                logger.warning("could not log that %s was set aside: %s", path.name, exc)

    def _account(self, result: BatchResult, seconds: float) -> None:
        c = self.counters
        c.total_processing_time += seconds
        for path in result.split:
            self._say(
                f"[BG_LEARNER] Split {path.name}: {(self.spool.reason(path) or {}).get('reason')}"
            )
        if result.published is None or self.last_metrics is None:
            c.save(self.root.state / COUNTERS_NAME)
            return
        m = self.last_metrics
        self.model_version = result.published.version
        self.replay.used(self._replaying)
        trained = {item.path.name: item.episode for item in self._batch_in_hand}
        names = [name for name in result.published.batch if name in trained]
        self.replay.add(self.model_version, names, [trained[name] for name in names])
        self._replaying, self._batch_in_hand = [], []
        self._restored_from = None
        self._guard_check(trained.values())
        c.files_processed += len(result.archived)
        c.batches_trained += 1
        c.total_samples += m.n_samples
        c.loss_sum += m.loss
        c.last_loss = m.loss
        c.last_batch_time = time.time()
        c.save(self.root.state / COUNTERS_NAME)
        record = reporting.batch_record(
            result, m, self.last_lags, seconds, c, self.last_replay_lags
        )
        reporting.append_metrics(self.root, record)
        reporting.append_training_log(self.root, result, m, seconds, self.counters)
        if self._tensorboard is not None:
            reporting.write_tensorboard(self._tensorboard, record)
        if self.settings.verbose:
            self._say(reporting.batch_lines(result, m, seconds))

    # ------------------------------------------------------------------ reporting

    def _heartbeat_record(self, state: str) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "time": time.time(),
            "state": state,
            "model_version": self.model_version,
            "errors": self.counters.errors,
        }

    def _beat(self) -> None:
        """Tell readers (the monitor) that this learner is alive, every HEARTBEAT_S.

        A failed write (disk full, ``state/`` gone for a while) must not end the beat: the
        monitor would show a learner that keeps training as not running. It is retried at
        the next beat, with one warning per outage instead of a traceback per beat.
        """
        outage = OutageLog(f"writing the heartbeat {self.root.state / HEARTBEAT_NAME}", logger)
        self._beat_outage = outage
        while not self._stop.is_set():
            try:
                write_heartbeat(
                    self.root, self._heartbeat_record("training" if self._busy else "idle")
                )
            except Exception as exc:
                outage.failed(exc)
            else:
                outage.succeeded()
            self._stop.wait(HEARTBEAT_S)

    def _say(self, text: str) -> None:
        if self._console is not None:
            self._console(text)

    def _maybe_report(self) -> None:
        now = time.monotonic()
        if self.settings.verbose and now - self._last_report >= self.settings.report_interval:
            self._last_report = now
            self._say(reporting.status_report(self.get_stats(), self.settings.max_file_age))

    def get_stats(self) -> dict[str, Any]:
        """The seed's statistics, plus model version, quarantine, throughput and lag."""
        c = self.counters
        counts = self.spool.counts()
        lags = self.last_lags
        active = (1 if self._busy else 0) + (self._prefetcher.active if self._prefetcher else 0)
        return {
            "files_processed": c.files_processed,
            "batches_trained": c.batches_trained,
            "total_samples": c.total_samples,
            "total_processing_time": c.total_processing_time,
            "avg_loss": c.loss_sum / c.batches_trained if c.batches_trained else 0.0,
            "last_loss": c.last_loss,
            "errors": c.errors,
            "active_workers": min(active, self.settings.max_workers),
            "max_workers": self.settings.max_workers,
            "last_batch_time": c.last_batch_time,
            "buffer_file_count": counts.buffer,
            "archive_file_count": counts.archive,
            "files_skipped_old": c.files_skipped_old,
            "model_version": self.model_version,
            "files_quarantined": c.files_quarantined,
            "samples_per_second": (
                c.total_samples / c.total_processing_time if c.total_processing_time else 0.0
            ),
            "policy_lag_min": min(lags) if lags else 0,
            "policy_lag_mean": float(np.mean(lags)) if lags else 0.0,
            "policy_lag_max": max(lags) if lags else 0,
            "running": self.running,
        }


class BackgroundParallelLearner(BackgroundLearner):
    """The seed system's learner, with its keyword arguments (and ``root=``)."""

    def __init__(
        self,
        max_workers: int = 1,
        enable_replay_analysis: bool = False,
        enable_model_training: bool = True,
        verbose: bool = True,
        max_file_age: float = 3600,
        *,
        root: str | Path | TrainingRoot = DEFAULT_ROOT,
        **settings: Any,
    ) -> None:
        if enable_replay_analysis:
            logger.warning(
                "enable_replay_analysis has no effect: bgtrain learns from recorded games"
            )
        super().__init__(
            root,
            LearnerSettings(max_workers=max_workers, verbose=verbose, max_file_age=max_file_age),
            enable_model_training=enable_model_training,
            **settings,
        )


def _returns(episodes: Iterable[Episode]) -> list[tuple[float, int | None]]:
    """``(return, policy_version)`` of each game, as the collapse guard takes them."""
    return [(float(ep.total_reward), ep.policy_version) for ep in episodes]
