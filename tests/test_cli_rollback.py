"""``bgtrain rollback VERSION`` from a shell."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from bgtrain import ModelStore

from .helpers import tiny_model


def bgtrain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bgtrain", *args], capture_output=True, text=True, timeout=60
    )


def test_rollback_republishes_the_old_weights_as_the_newest_version(tmp_path):
    store = ModelStore(tmp_path)
    for value in (1.0, 2.0, 3.0):
        arrays, meta = tiny_model(value)
        store.publish(arrays, meta)
    out = bgtrain("rollback", "--root", str(tmp_path), "2")
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
    out = bgtrain("rollback", "--root", str(tmp_path), "7")
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"error: version 7 is not in {tmp_path / 'models' / 'history'} (available: 1)"
    )
    assert ModelStore(tmp_path).latest_version() == 1
