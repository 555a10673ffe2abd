"""The background learner as its users drive it: the seed's API (start/stop/get_stats),
its texts, freshness, bad and stale input, policy lag, the lock, stopping mid-batch and
the prefetching workers. Real files, real threads, a real (tiny) torch training step."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bgtrain.learn.learner as learner_module
import bgtrain.learn.prefetch as prefetch_module
from bgtrain import (
    EpisodeRecorder,
    LearnerLock,
    LearnerLockedError,
    ModelStore,
    Spool,
    SpoolCounts,
    TrainingRoot,
)
from bgtrain.learn.algorithms.ppo import PPOVTrace
from bgtrain.learner import BackgroundParallelLearner  # the seed's import path
from bgtrain.store.counters import read_counters

from .helpers import wait_until, write_episode

SEED_STATS_KEYS = {
    "files_processed",
    "batches_trained",
    "total_samples",
    "total_processing_time",
    "avg_loss",
    "last_loss",
    "errors",
    "active_workers",
    "max_workers",
    "last_batch_time",
    "buffer_file_count",
    "archive_file_count",
    "files_skipped_old",
}
NEW_STATS_KEYS = {
    "model_version",
    "files_quarantined",
    "samples_per_second",
    "policy_lag_min",
    "policy_lag_mean",
    "policy_lag_max",
}
BATCH_RECORD_KEYS = {
    "train/loss",
    "train/approx_kl",
    "train/clip_fraction",
    "train/entropy_loss",
    "train/value_loss",
    "train/explained_variance",
    "train/version_diff_min",
    "train/version_diff_avg",
    "train/version_diff_max",
    "rollout/ep_rew_mean",
    "rollout/ep_len_mean",
    "episodes",
}


# --------------------------------------------------------------------------- helpers


@contextmanager
def running(root: Path, **kwargs: Any) -> Iterator[BackgroundParallelLearner]:
    """A started learner on ``root`` (quiet, 2 epochs), always stopped afterwards."""
    kwargs.setdefault("verbose", False)
    kwargs.setdefault("n_epochs", 2)
    learner = BackgroundParallelLearner(root=root, **kwargs)
    assert learner.start() is True
    try:
        yield learner
    finally:
        learner.stop()


def game_name(i: int, outcome: str = "Victory", actor: str = "t") -> str:
    return f"game_20260101_{i:06d}_000_{actor}_{outcome}.npz"


def set_mtime(path: Path, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def fill(root: Path, n: int, steps: int = 3, start: int = 0, **kwargs: Any) -> list[str]:
    """``n`` recent episodes in ``buffer/``, oldest first (mtimes one second apart).

    Only while no learner runs: a running one may claim a file before its mtime is set.
    """
    buffer = TrainingRoot(root).buffer
    names = []
    for i in range(start, start + n):
        path = write_episode(buffer, game_name(i), steps=steps, tag=float(i + 1), **kwargs)
        set_mtime(path, 100 - i)
        names.append(path.name)
    return names


def stat(learner: BackgroundParallelLearner, key: str) -> Any:
    return learner.get_stats()[key]


def read_metrics(root: Path, event: str | None = None) -> list[dict[str, Any]]:
    path = TrainingRoot(root).metrics
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    return [r for r in records if event is None or r["event"] == event]


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.npz"))


def reason_of(folder: Path, name: str) -> str:
    return json.loads((folder / f"{name}.reason.json").read_text("utf-8"))["reason"]


def thread_names() -> set[str]:
    return {t.name for t in threading.enumerate() if t.is_alive()}


# --------------------------------------------------------------------------- the seed's tests


def test_five_files_are_processed_archived_and_published_as_one_version(tmp_path):
    names = fill(tmp_path, 5)
    with running(tmp_path) as learner:
        wait_until(lambda: stat(learner, "files_processed") == 5, what="5 files processed")
        stats = learner.get_stats()

    assert Spool(tmp_path).counts() == SpoolCounts(
        buffer=0, processing=0, archive=5, stale=0, quarantine=0
    )
    assert stats["archive_file_count"] == 5
    assert stats["buffer_file_count"] == 0
    assert stats["batches_trained"] == 1
    store = ModelStore(tmp_path)
    assert store.latest_version() == 1
    assert sorted(store.load().meta.batch) == sorted(names)
    assert names_in(TrainingRoot(tmp_path).archive) == sorted(names)


def test_start_runs_the_worker_and_stop_ends_it_and_frees_the_root(tmp_path):
    learner = BackgroundParallelLearner(root=tmp_path, verbose=False)
    assert not learner.running
    before = set(threading.enumerate())
    try:
        assert learner.start() is True
        assert learner.running
        workers = [t for t in set(threading.enumerate()) - before if t.name == "bgtrain-learner"]
        assert len(workers) == 1
        assert workers[0].is_alive()
        assert learner.start() is False  # already running: nothing new is started
        assert [t.name for t in set(threading.enumerate()) - before].count("bgtrain-learner") == 1
    finally:
        learner.stop()

    assert not learner.running
    assert not workers[0].is_alive()
    assert learner.get_stats()["running"] is False
    second = BackgroundParallelLearner(root=tmp_path, verbose=False)
    try:
        assert second.start() is True  # the lock was released
        assert second.running
    finally:
        second.stop()
    assert not second.running


# --------------------------------------------------------------------------- freshness


def test_idle_learner_trains_a_new_file_into_a_published_model_within_one_second(
    tmp_path, monkeypatch
):
    # No poll can do the work: poll_interval is 60 s and the fast re-poll after a batch
    # is off, so only the file event can wake the learner.
    monkeypatch.setattr(learner_module, "FAST_POLL_WINDOW_S", 0.0)
    fill(tmp_path, 1)  # a warm-up batch: torch's first-call overhead is not counted
    store = ModelStore(tmp_path)
    with running(tmp_path, poll_interval=60) as learner:
        wait_until(
            lambda: store.latest_version() == 1 and learner.idle,
            what="the warm-up batch published and the learner idle",
        )
        recorder = EpisodeRecorder(tmp_path, actor="fresh")
        try:
            for t in range(6):
                recorder.record(np.full(4, 0.1 * t, dtype=np.float32), t % 2, 1.0)
            finished = time.monotonic()
            recorder.finish("Victory")
            written = recorder.flush(timeout=5)
            wait_until(lambda: store.latest_version() == 2, timeout=10, what="model version 2")
            elapsed = time.monotonic() - finished
        finally:
            recorder.close()

    assert elapsed < 1.0, f"the new file took {elapsed:.2f} s to be trained and published"
    assert store.load().meta.batch == (written[0].name,)


# --------------------------------------------------------------------------- bad and stale input


def test_bad_file_in_the_middle_of_a_batch_is_quarantined_and_the_rest_trains(tmp_path):
    root = TrainingRoot(tmp_path)
    good = [
        write_episode(root.buffer, game_name(i), steps=3, tag=float(i + 1)).name for i in range(4)
    ]
    bad = game_name(99, "Defeat", actor="bad")
    rewards = np.ones(4, dtype=np.float32)
    rewards[2] = np.nan
    np.savez(
        root.buffer / bad,
        states=np.zeros((4, 4), dtype=np.float32),
        actions=np.zeros(4, dtype=np.int64),
        rewards=rewards,
    )
    for age, name in enumerate(reversed([good[0], good[1], bad, good[2], good[3]])):
        set_mtime(root.buffer / name, 10 + age)  # claim order: good, good, bad, good, good

    with running(tmp_path) as learner:
        wait_until(lambda: stat(learner, "files_processed") == 4, what="4 files processed")
        stats = learner.get_stats()

    assert stats["files_quarantined"] == 1
    assert stats["batches_trained"] == 1
    assert names_in(root.archive) == sorted(good)
    assert sorted(os.listdir(root.quarantine)) == [bad, f"{bad}.reason.json"]
    assert reason_of(root.quarantine, bad) == "'rewards' has NaN at [2]"
    assert list(root.buffer.iterdir()) == []
    assert list(root.processing.iterdir()) == []
    store = ModelStore(tmp_path)
    assert store.latest_version() == 1
    assert sorted(store.load().meta.batch) == sorted(good)
    events = read_metrics(tmp_path, "quarantine")
    assert [(e["name"], e["reason"]) for e in events] == [(bad, "'rewards' has NaN at [2]")]


def test_files_older_than_max_file_age_go_to_stale_and_training_does_not_stall(tmp_path):
    root = TrainingRoot(tmp_path)
    old = fill(tmp_path, 2)
    for name in old:
        set_mtime(root.buffer / name, 7200)
    store = ModelStore(tmp_path)
    with running(tmp_path, max_file_age=3600) as learner:
        wait_until(lambda: stat(learner, "files_skipped_old") == 2, what="2 files skipped")
        wait_until(lambda: learner.idle, what="the learner idle")
        # Every waiting file was stale: nothing was trained, and the learner still waits.
        assert store.latest_version() is None
        assert learner.running
        fresh = write_episode(root.buffer, game_name(50), steps=4, tag=3.0).name
        wait_until(lambda: stat(learner, "files_processed") == 1, what="the fresh file trained")
        stats = learner.get_stats()

    assert stats["files_skipped_old"] == 2
    assert names_in(root.stale) == sorted(old)
    for name in old:
        assert re.fullmatch(
            r"older than max_file_age 3600 s \(age 720\d s\)", reason_of(root.stale, name)
        )
    assert names_in(root.archive) == [fresh]
    assert store.latest_version() == 1
    assert store.load().meta.batch == (fresh,)
    assert sorted(e["name"] for e in read_metrics(tmp_path, "stale")) == sorted(old)


def test_files_too_far_behind_the_policy_go_to_stale(tmp_path):
    root = TrainingRoot(tmp_path)
    first = fill(tmp_path, 1)
    store = ModelStore(tmp_path)
    with running(tmp_path, max_policy_lag=0) as learner:
        wait_until(lambda: store.latest_version() == 1, what="model version 1")
        behind = write_episode(root.buffer, game_name(10), steps=3, policy_version=0).name
        current = write_episode(root.buffer, game_name(11), steps=3, policy_version=1).name
        wait_until(
            lambda: stat(learner, "files_processed") == 2 and Spool(tmp_path).counts().stale == 1,
            what="one file trained and one staled",
        )

    assert names_in(root.stale) == [behind]
    assert reason_of(root.stale, behind) == (
        "played by model version 0, 1 versions behind the latest (1); max_policy_lag is 0"
    )
    assert names_in(root.archive) == sorted([*first, current])
    assert store.latest_version() == 2
    assert store.load().meta.batch == (current,)


# --------------------------------------------------------------------------- statistics


def test_stats_keep_the_seed_keys_a_true_mean_loss_and_survive_a_restart(tmp_path):
    names = fill(tmp_path, 2, steps=3) + fill(tmp_path, 1, steps=5, start=2)
    with running(tmp_path, batch_files=1) as learner:
        wait_until(lambda: stat(learner, "files_processed") == 3, what="3 batches")
    stats = learner.get_stats()  # stopped: no cycle in progress

    assert stats.keys() >= SEED_STATS_KEYS | NEW_STATS_KEYS
    losses = [r["train/loss"] for r in read_metrics(tmp_path, "batch")]
    assert len(losses) == 3
    assert stats["avg_loss"] == pytest.approx(sum(losses) / 3, rel=1e-12)
    assert stats["last_loss"] == losses[-1]
    assert stats["batches_trained"] == 3
    assert stats["model_version"] == 3
    assert stats["total_samples"] == 3 + 3 + 5
    assert stats["total_processing_time"] > 0
    assert stats["samples_per_second"] == pytest.approx(
        stats["total_samples"] / stats["total_processing_time"]
    )
    assert stats["last_batch_time"] == pytest.approx(time.time(), abs=60)
    assert (stats["errors"], stats["files_skipped_old"], stats["files_quarantined"]) == (0, 0, 0)
    assert (stats["active_workers"], stats["max_workers"]) == (0, 1)
    assert (stats["buffer_file_count"], stats["archive_file_count"]) == (0, 3)
    assert [ModelStore(tmp_path).load(v).meta.batch for v in (1, 2, 3)] == [(n,) for n in names]

    # A new learner on the same root continues the counts where the first left them.
    with running(tmp_path, batch_files=1) as again:
        restored = again.get_stats()
        for key in (
            "files_processed",
            "batches_trained",
            "total_samples",
            "total_processing_time",
            "avg_loss",
            "last_loss",
            "last_batch_time",
            "model_version",
            "archive_file_count",
        ):
            assert restored[key] == stats[key], key
        write_episode(TrainingRoot(tmp_path).buffer, game_name(3), steps=4)
        wait_until(lambda: stat(again, "files_processed") == 4, what="the 4th file trained")
        after = again.get_stats()

    losses = [r["train/loss"] for r in read_metrics(tmp_path, "batch")]
    assert after["batches_trained"] == 4
    assert after["model_version"] == 4
    assert ModelStore(tmp_path).latest_version() == 4
    assert after["total_samples"] == 3 + 3 + 5 + 4
    assert after["avg_loss"] == pytest.approx(sum(losses) / 4, rel=1e-12)
    assert read_counters(tmp_path).files_processed == 4


def test_policy_lag_of_a_batch_is_reported(tmp_path):
    fill(tmp_path, 3)
    with running(tmp_path, batch_files=1) as learner:
        wait_until(lambda: stat(learner, "model_version") == 3, what="model version 3")

    root = TrainingRoot(tmp_path)
    for i, version in enumerate((0, 1, 3)):  # lags behind version 3: 3, 2, 0
        path = write_episode(root.buffer, game_name(10 + i), steps=3, policy_version=version)
        set_mtime(path, 30 - i)
    with running(tmp_path, batch_files=3) as learner:
        wait_until(lambda: stat(learner, "model_version") == 4, what="model version 4")
        stats = learner.get_stats()

    assert stats["policy_lag_min"] == 0
    assert stats["policy_lag_mean"] == pytest.approx(5 / 3)
    assert stats["policy_lag_max"] == 3
    record = read_metrics(tmp_path, "batch")[-1]
    assert record["version"] == 4
    assert record["train/version_diff_min"] == 0
    assert record["train/version_diff_avg"] == pytest.approx(5 / 3)
    assert record["train/version_diff_max"] == 3
    assert [e["policy_version"] for e in record["episodes"]] == [0, 1, 3]


# --------------------------------------------------------------------------- texts


def assert_in_order(lines: list[str], patterns: list[str]) -> None:
    """Each regex in ``patterns`` fully matches a line, in this order."""
    it = iter(lines)
    for pattern in patterns:
        assert any(re.fullmatch(pattern, line) for line in it), f"no line {pattern!r} in {lines}"


def test_log_block_and_metrics_line_of_each_batch(tmp_path):
    root = TrainingRoot(tmp_path)
    specs = [(3, 1.0, "Victory"), (4, -0.5, "Defeat"), (2, 2.0, "Tie"), (5, 0.25, "Victory")]
    names = []
    for i, (steps, tag, outcome) in enumerate(specs):
        path = write_episode(
            root.buffer, game_name(i, outcome), steps=steps, tag=tag, meta={"outcome": outcome}
        )
        set_mtime(path, 50 - i)
        names.append(path.name)

    with running(tmp_path, batch_files=2) as learner:
        wait_until(lambda: stat(learner, "files_processed") == 4, what="2 batches")

    records = read_metrics(tmp_path, "batch")
    assert len(records) == 2
    lines = root.training_log.read_text("utf-8").splitlines()
    heads = [
        i
        for i, line in enumerate(lines)
        if re.fullmatch(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] Batch Training Complete", line)
    ]
    assert len(heads) == 2
    for n, (head, record) in enumerate(zip(heads, records, strict=True)):
        batch = specs[2 * n : 2 * n + 2]
        block = lines[head + 1 : heads[n + 1] if n + 1 < len(heads) else None]
        assert_in_order(
            block,
            [
                r"  Batch Size:      2 games",
                rf"  Total Steps:     {batch[0][0] + batch[1][0]}",
                re.escape(f"  Loss:            {record['train/loss']:.4f}"),
                r"  Processing Time: \d+\.\d\ds",
                rf"  Total Processed: {2 * n + 2} files",
                rf"  Total Batches:   {n + 1}",
            ],
        )

        assert record.keys() >= BATCH_RECORD_KEYS
        assert record["version"] == n + 1
        expected = [
            {"name": names[2 * n + k], "return": steps * tag, "length": steps, "outcome": outcome}
            for k, (steps, tag, outcome) in enumerate(batch)
        ]
        got = [
            {k: e[k] for k in ("name", "return", "length", "outcome")} for e in record["episodes"]
        ]
        assert got == expected
        assert record["rollout/ep_rew_mean"] == pytest.approx(
            np.mean([steps * tag for steps, tag, _ in batch])
        )
        assert record["rollout/ep_len_mean"] == pytest.approx(np.mean([s for s, _, _ in batch]))
        assert (record["train/version_diff_min"], record["train/version_diff_max"]) == (0, 0)


def test_verbose_learner_shows_the_seed_status_report(tmp_path, capsys):
    fill(tmp_path, 2)
    lines: list[str] = []

    def report_after_batch() -> str | None:
        for text in list(lines):
            if "[BACKGROUND LEARNER] STATUS REPORT" in text and "Files Processed:      2\n" in text:
                return text
        return None

    with running(tmp_path, verbose=True, console=lines.append, report_interval=0.05):
        wait_until(report_after_batch, what="a STATUS REPORT after the batch")

    report = report_after_batch()
    assert report is not None
    report_lines = report.splitlines()
    for expected in (
        "[BACKGROUND LEARNER] STATUS REPORT",
        "Training Statistics:",
        "  Files Processed:      2",
        "  Files Skipped (Old):  0",
        "  Batch Training Runs:  1",
        "  Total Samples:        6",
        "Directory Status:",
        "  Buffer Files:         0",
        "  Archived Files:       2",
        "  Max File Age:         60.0 min",
        "System Status:",
        "  Active Workers:       0/1",
        "  Errors:               0",
    ):
        assert expected in report_lines, expected
    assert any(line.startswith("  Average Loss:         ") for line in report_lines)
    assert any(re.fullmatch(r"  Total Process Time:   \d+\.\d\ds", line) for line in report_lines)
    # Text goes to the console callable, not to stdout.
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- one learner per root


def test_second_learner_on_the_same_root_is_refused_naming_this_process(tmp_path):
    with running(tmp_path) as first:
        second = BackgroundParallelLearner(root=tmp_path, verbose=False)
        with pytest.raises(LearnerLockedError) as exc:
            second.start()
        message = str(exc.value)
        assert message.startswith(f"another learner already holds {tmp_path} (pid {os.getpid()} ")
        assert message.endswith("stop it first, or use another --root")
        assert exc.value.holder_pid == os.getpid()
        assert not second.running
        # The refusal left the first learner's lock and work alone.
        with pytest.raises(LearnerLockedError):
            LearnerLock(tmp_path).acquire()
        assert first.running
        write_episode(TrainingRoot(tmp_path).buffer, game_name(0))
        wait_until(lambda: stat(first, "files_processed") == 1, what="the first learner trains")


def test_stop_without_a_successful_start_is_harmless(tmp_path):
    fresh = BackgroundParallelLearner(root=tmp_path / "new", verbose=False)
    fresh.stop()  # the seed's try/finally pattern: stop() even if start() never ran
    assert not (tmp_path / "new").exists()

    with running(tmp_path) as first:
        for i in range(2):
            write_episode(TrainingRoot(tmp_path).buffer, game_name(i))
        wait_until(lambda: stat(first, "files_processed") == 2, what="2 files trained")
        refused = BackgroundParallelLearner(root=tmp_path, verbose=False)
        with pytest.raises(LearnerLockedError):
            refused.start()
        refused.stop()
        assert read_counters(tmp_path).files_processed == 2


# --------------------------------------------------------------------------- stopping mid-batch


def test_stop_with_a_batch_in_hand_loses_nothing(tmp_path, monkeypatch):
    names = fill(tmp_path, 3)
    entered, release = threading.Event(), threading.Event()
    original = PPOVTrace.train

    def blocking_train(self, episodes, should_stop=None, replay=()):
        entered.set()
        assert release.wait(30), "the test never released training"
        return original(self, episodes, should_stop, replay)

    monkeypatch.setattr(PPOVTrace, "train", blocking_train)
    learner = BackgroundParallelLearner(root=tmp_path, verbose=False, n_epochs=2)
    assert learner.start()
    stopper = threading.Thread(target=learner.stop, name="test-stopper")
    try:
        assert entered.wait(20), "training never started"
        stopper.start()
        stopper.join(0.2)
        # stop() waits for the batch in hand: the root stays locked meanwhile.
        assert stopper.is_alive()
        with pytest.raises(LearnerLockedError):
            LearnerLock(tmp_path).acquire()
    finally:
        release.set()
        if stopper.ident is None:  # the stopper never started: stop here
            learner.stop()
        else:
            stopper.join(30)

    assert not stopper.is_alive()
    assert not learner.running
    root = TrainingRoot(tmp_path)
    assert list(root.processing.iterdir()) == []
    archived, waiting = names_in(root.archive), names_in(root.buffer)
    assert sorted(archived + waiting) == sorted(names)
    store = ModelStore(tmp_path)
    if archived:
        assert store.latest_version() == 1
        assert sorted(store.load().meta.batch) == archived
    else:
        assert store.latest_version() is None
    LearnerLock(tmp_path).acquire().release()


# --------------------------------------------------------------------------- prefetching workers


def test_workers_load_the_next_files_while_a_batch_trains(tmp_path, monkeypatch):
    names = fill(tmp_path, 6)
    loads: list[tuple[str, str]] = []
    original = prefetch_module.load_episode

    def counting_load(path, *args, **kwargs):
        loads.append((Path(path).name, threading.current_thread().name))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(prefetch_module, "load_episode", counting_load)
    with running(tmp_path, max_workers=2, batch_files=2) as learner:
        assert learner.get_stats()["max_workers"] == 2
        wait_until(lambda: stat(learner, "files_processed") == 6, what="6 files processed")
        stats = learner.get_stats()

    # The files of the later batches were loaded by the pool while earlier ones trained.
    by_workers = {name for name, thread in loads if thread.startswith("bgtrain-load")}
    assert set(names[2:]) <= by_workers
    # Same results as without workers: everything archived, one model per batch.
    assert names_in(TrainingRoot(tmp_path).archive) == sorted(names)
    assert stats["batches_trained"] == 3
    store = ModelStore(tmp_path)
    assert store.latest_version() == 3
    batches = [store.load(v).meta.batch for v in (1, 2, 3)]
    assert batches == [tuple(names[0:2]), tuple(names[2:4]), tuple(names[4:6])]
    assert not any(name.startswith("bgtrain-load") for name in thread_names())
