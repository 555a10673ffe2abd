"""The learner's running totals add up after kills: counters.json is repaired upward at
start-up to what the root proves (archive/, stale/, quarantine/, the latest model)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys

import pytest

from bgtrain import ModelStore, Spool, TrainingRoot
from bgtrain.learn.learner import BackgroundLearner
from bgtrain.store.counters import (
    LearnerCounters,
    RootFacts,
    read_counters,
    repair_counters,
    root_facts,
)

from .helpers import bgtrain_cli, tiny_model, wait_until, write_episode


def game_name(i: int) -> str:
    return f"game_20260101_{i:06d}_000_t_Victory.npz"


def test_a_learner_killed_between_publish_and_archive_leaves_counters_that_start_repairs(
    tmp_path, caplog
):
    root = TrainingRoot(tmp_path / "root")
    steps = (3, 4, 5)
    for i, n in enumerate(steps[:2]):
        write_episode(root.buffer, game_name(i), steps=n, tag=float(i + 1))
    first = BackgroundLearner(root.path, verbose=False, batch_files=1, n_epochs=1)
    first.start()
    try:
        wait_until(lambda: first.counters.batches_trained == 2, what="2 batches trained")
    finally:
        first.stop()
    before = read_counters(root.path)
    assert (before.files_processed, before.batches_trained, before.total_samples) == (2, 2, 7)

    # A third batch is published, then the learner dies before archiving it and before
    # saving its counters (SIGKILL at the named crash point).
    write_episode(root.buffer, game_name(2), steps=steps[2], tag=3.0)
    killed = bgtrain_cli(
        "learn", "--root", root.path, "--batch-files", "1", "--n-epochs", "1",
        "--no-verbose", "--exit-when-idle",
        cwd=tmp_path,
        env={**os.environ, "BGTRAIN_CRASH_AT": "between_publish_and_archive"},
    )  # fmt: skip
    expected_rc = -signal.SIGKILL if sys.platform != "win32" else 137
    assert killed.returncode == expected_rc, killed.stdout + killed.stderr
    assert read_counters(root.path) == before
    assert ModelStore(root.path).load().meta.counters == {"batches": 3, "games": 3, "samples": 12}

    caplog.set_level(logging.WARNING, logger="bgtrain.store.counters")
    learner = BackgroundLearner(root.path, verbose=False, batch_files=1)
    learner.start()
    try:
        stats = learner.get_stats()
        on_disk = read_counters(root.path)  # what the monitor reads
    finally:
        learner.stop()

    assert stats["archive_file_count"] == 3  # recovery archived the published batch
    assert (stats["files_processed"], stats["batches_trained"], stats["total_samples"]) == (
        3,
        3,
        12,
    )
    assert stats["model_version"] == 3
    # The lost batch is assumed like the known ones: the averages shown do not jump.
    assert stats["avg_loss"] == pytest.approx(before.loss_sum / 2)
    assert stats["samples_per_second"] == pytest.approx(
        before.total_samples / before.total_processing_time
    )
    assert (on_disk.files_processed, on_disk.batches_trained, on_disk.total_samples) == (3, 3, 12)
    path = root.state / "counters.json"
    assert [r.getMessage() for r in caplog.records if r.name == "bgtrain.store.counters"] == [
        f"{path} was behind the root (a learner stopped before saving it); repaired: "
        "files_processed 2 -> 3 (archive/ and the model); batches_trained 2 -> 3 (the model); "
        "total_samples 7 -> 12 (the model)"
    ]


def test_root_facts_count_archive_stale_quarantine_and_read_the_models_totals(tmp_path):
    root = TrainingRoot(tmp_path).ensure()
    spool = Spool(root)
    store = ModelStore(root)
    assert root_facts(spool, store) == RootFacts(0, 0, 0, {})
    for i in range(5):
        write_episode(root.buffer, game_name(i))
    claimed = spool.claim(5)
    spool.archive(claimed[:2])
    spool.mark_stale(claimed[2], "too old")
    spool.quarantine(claimed[3], "damaged")
    spool.quarantine(claimed[4], "damaged")
    arrays, meta = tiny_model()
    store.publish(arrays, meta.__class__(**{**meta.__dict__, "counters": {"batches": 7}}))

    assert root_facts(spool, store) == RootFacts(2, 1, 2, {"batches": 7})


def test_repair_raises_each_counter_to_what_the_root_proves_and_never_lowers_one():
    counters = LearnerCounters(
        files_processed=171,
        batches_trained=30,
        total_samples=5000,
        total_processing_time=10.0,
        loss_sum=3.0,
        last_loss=0.2,
        errors=4,
        files_skipped_old=9,
        files_quarantined=1,
    )
    facts = RootFacts(
        archived=466,
        stale=2,  # fewer than counted: requeued since, never lowered
        quarantined=3,
        model={"batches": 62, "games": 400, "samples": 20000},
    )

    repaired, repairs = repair_counters(counters, facts)

    assert repairs == [
        "files_processed 171 -> 466 (archive/ and the model)",
        "batches_trained 30 -> 62 (the model)",
        "total_samples 5000 -> 20000 (the model)",
        "files_quarantined 1 -> 3 (quarantine/)",
    ]
    assert repaired.loss_sum == pytest.approx(6.2)  # mean loss kept at 0.1
    assert dataclasses.replace(repaired, loss_sum=0.0) == LearnerCounters(
        files_processed=466,
        batches_trained=62,
        total_samples=20000,
        total_processing_time=40.0,  # samples/s kept at 500
        last_loss=0.2,
        errors=4,
        files_skipped_old=9,
        files_quarantined=3,
    )
    assert counters.files_processed == 171  # the input is not changed


def test_repair_of_counters_that_match_the_root_changes_nothing():
    counters = LearnerCounters(files_processed=5, batches_trained=2, total_samples=40)
    facts = RootFacts(5, 0, 0, {"batches": 2, "games": 5, "samples": 40})
    assert repair_counters(counters, facts) == (counters, [])


@pytest.mark.parametrize(
    "model", [{"batches": True}, {"batches": "62"}, {"batches": 6.5}, {"batches": None}]
)
def test_model_totals_that_are_not_whole_numbers_prove_nothing(model):
    counters = LearnerCounters(batches_trained=3)
    assert repair_counters(counters, RootFacts(model=model)) == (counters, [])


def test_a_root_with_no_counters_file_starts_from_the_models_totals(tmp_path):
    root = TrainingRoot(tmp_path).ensure()
    for i in range(3):
        write_episode(root.buffer, game_name(i))
    spool = Spool(root)
    spool.archive(spool.claim(3))
    assert not (root.state / "counters.json").exists()
    with BackgroundLearner(root.path, verbose=False, enable_model_training=False) as learner:
        stats = learner.get_stats()
    assert (stats["files_processed"], stats["batches_trained"]) == (3, 0)
    assert json.loads((root.state / "counters.json").read_text("utf-8"))["files_processed"] == 3
