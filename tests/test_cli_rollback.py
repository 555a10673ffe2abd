"""``bgtrain rollback VERSION`` from a shell."""

from __future__ import annotations

import numpy as np

from bgtrain import ModelStore, TrainingRoot

from .helpers import bgtrain_cli, tiny_model, write_episode


def test_rollback_republishes_the_old_weights_as_the_newest_version(tmp_path):
    store = ModelStore(tmp_path)
    for value in (1.0, 2.0, 3.0):
        arrays, meta = tiny_model(value)
        store.publish(arrays, meta)
    out = bgtrain_cli("rollback", "--root", tmp_path, "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        f"rolled back: version 2 republished as version 4 (was 3) in {store.path}"
    )
    latest = ModelStore(tmp_path).load()
    assert latest.version == 4
    assert latest.meta.extra["rolled_back_from"] == 2
    np.testing.assert_array_equal(latest.arrays["w0"], np.full((4, 8), 2.0, np.float32))


def test_rollback_to_a_missing_version_says_which_exist(tmp_path):
    store = ModelStore(tmp_path)
    arrays, meta = tiny_model()
    store.publish(arrays, meta)
    out = bgtrain_cli("rollback", "--root", tmp_path, "7", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"error: version 7 is not in {tmp_path / 'models' / 'history'} (available: 1)"
    )
    assert ModelStore(tmp_path).latest_version() == 1


def test_rollback_keeps_the_history_size_the_roots_learner_used(tmp_path):
    """It pruned models/history/ to the default 50 versions whatever the learner kept."""
    root = TrainingRoot(tmp_path / "root")
    for i in range(5):
        write_episode(root.buffer, f"game_{i}.npz", steps=4, tag=float(i))
    learned = bgtrain_cli(
        "learn", "--root", root.path, "--exit-when-idle", "--history-size", "3",
        "--batch-files", "1", "--n-epochs", "1", "--poll-interval", "0.2",
        cwd=tmp_path,
    )  # fmt: skip
    assert learned.returncode == 0, learned.stdout + learned.stderr
    store = ModelStore(root.path)
    assert store.versions() == [3, 4, 5]

    out = bgtrain_cli("rollback", "--root", root.path, "4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert store.versions() == [4, 5, 6]
