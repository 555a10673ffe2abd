"""Sample reuse: the replay window's rules, and a learner that trains recent games again
(listed as ``replayed``) while archiving each game exactly once."""

from __future__ import annotations

import numpy as np

from bgtrain import ModelStore, Spool, SpoolCounts, TrainingRoot
from bgtrain.learn.replay_window import ReplayWindow
from bgtrain.store.episode import build_episode

from .helpers import wait_until
from .test_learner import fill, names_in, read_metrics, running, stat


def episode(steps: int, policy_version: int = 0):
    return build_episode(
        np.zeros((steps, 4), np.float32),
        np.zeros(steps, np.int64),
        np.ones(steps, np.float32),
        policy_version=policy_version,
    )


def test_a_batch_is_replayed_its_passes_then_leaves_the_window():
    window = ReplayWindow(passes=2, max_lag=10, max_steps=1000)
    window.add(1, ["a"], [episode(3)])
    for _ in range(2):
        chosen = window.select(model_version=1)
        assert [e.names for e in chosen] == [("a",)]
        window.used(chosen)
    assert window.select(model_version=3) == []


def test_a_batch_too_far_behind_the_model_is_not_replayed():
    window = ReplayWindow(passes=100, max_lag=3, max_steps=1000)
    window.add(1, ["old"], [episode(3)])
    window.add(2, ["new"], [episode(3)])
    assert [e.names for e in window.select(model_version=4)] == [("old",), ("new",)]
    assert [e.names for e in window.select(model_version=5)] == [("new",)]


def test_the_window_keeps_at_most_max_steps_dropping_the_oldest_but_always_the_newest():
    window = ReplayWindow(passes=5, max_lag=100, max_steps=10)
    window.add(1, ["a"], [episode(4)])
    window.add(2, ["b"], [episode(4)])
    window.add(3, ["c"], [episode(4)])
    assert [e.names for e in window.select(3)] == [("b",), ("c",)]
    assert window.steps == 8
    window.add(4, ["huge"], [episode(50)])
    assert [e.names for e in window.select(4)] == [("huge",)]


def test_no_passes_means_no_replay():
    window = ReplayWindow(passes=0, max_lag=10, max_steps=1000)
    window.add(1, ["a"], [episode(3)])
    assert window.select(1) == [] and len(window) == 0


def test_learner_replays_recent_batches_lists_them_and_archives_each_game_once(tmp_path):
    names = fill(tmp_path, 4, steps=5, policy_version=0)
    with running(tmp_path, batch_files=1, replay_passes=2, replay_max_lag=10) as learner:
        wait_until(lambda: stat(learner, "model_version") == 4, what="model version 4")

    store = ModelStore(tmp_path)
    metas = [store.load(version).meta for version in range(1, 5)]
    # Each version trains one new game, and the last two published batches again.
    assert [list(m.batch) for m in metas] == [[n] for n in names]
    assert [m.extra.get("replayed", []) for m in metas] == [
        [],
        names[:1],
        names[:2],
        names[1:3],
    ]
    assert store.latest_version() == 4
    records = read_metrics(tmp_path, "batch")
    assert [r["batch/samples"] for r in records] == [5, 5, 5, 5]
    assert [r["train/replay_ratio"] for r in records] == [0.0, 1.0, 2.0, 2.0]
    # Played by version 0; replayed by versions 1, 2, 3: 1..3 versions behind.
    assert [r["train/replay_version_diff_max"] for r in records] == [0, 1, 2, 3]
    # Exactly once: every game archived once, none left anywhere else.
    assert Spool(tmp_path).counts() == SpoolCounts(
        buffer=0, processing=0, archive=4, stale=0, quarantine=0
    )
    assert names_in(TrainingRoot(tmp_path).archive) == sorted(names)
