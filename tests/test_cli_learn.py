"""``bgtrain learn`` as a subprocess: the seed's files and texts, --exit-when-idle,
SIGTERM stops it cleanly, and --config with flags winning over the file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bgtrain import LearnerLock, ModelStore, Spool, TrainingRoot

from .helpers import bgtrain_argv, bgtrain_cli, wait_until, write_episode


def write_seed_file(folder: Path, name: str, steps: int, rng: np.random.Generator) -> str:
    """A file as the seed system wrote them: 15-dim float32 states, actions 0..4, rewards."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        folder / name,
        states=rng.standard_normal((steps, 15)).astype(np.float32),
        actions=rng.integers(0, 4, steps).astype(np.int64),  # 4 is never played here
        rewards=rng.standard_normal(steps).astype(np.float32),
    )
    return name


def set_ages(folder: Path, names: list[str]) -> None:
    """mtimes one second apart, oldest first, so the claim order is the list's order."""
    now = time.time()
    for i, name in enumerate(names):
        when = now - 100 + i
        os.utime(folder / name, (when, when))


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.npz"))


def test_learn_trains_seed_files_quarantines_a_bad_one_and_exits_when_idle(tmp_path):
    root = TrainingRoot(tmp_path / "root")
    rng = np.random.default_rng(0)
    seed_files = [
        write_seed_file(root.buffer, "game_20250101_120000_Victory.npz", 6, rng),
        write_seed_file(root.buffer, "game_20250101_120100_Defeat.npz", 4, rng),
        write_seed_file(root.buffer, "exp_20250101_120200_ep1.npz", 5, rng),
        write_seed_file(root.buffer, "exp_20250101_120300_ep2.npz", 3, rng),
    ]
    bad = "game_20250101_120400_Victory.npz"
    (root.buffer / bad).write_bytes(b"this is not an npz file")
    set_ages(root.buffer, [*seed_files[:2], bad, *seed_files[2:]])

    result = bgtrain_cli(
        "learn",
        "--root",
        root.path,
        "--exit-when-idle",
        "--n-epochs",
        "2",
        "--n-actions",
        "5",
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert "[OK] Background parallel learner initialized and started" in out
    assert "[INFO] Experience replay training will run in background" in out
    assert f"[INFO] Monitoring directory: {root.buffer}" in out
    assert "Batch Training Complete" in root.training_log.read_text("utf-8")
    assert names_in(root.archive) == sorted(seed_files)
    assert sorted(os.listdir(root.quarantine)) == [bad, f"{bad}.reason.json"]
    reason = json.loads((root.quarantine / f"{bad}.reason.json").read_text("utf-8"))
    assert reason["name"] == bad and reason["reason"]
    assert list(root.buffer.iterdir()) == []
    assert list(root.processing.iterdir()) == []
    model = ModelStore(root.path).load()
    assert model.version == 1
    assert (model.meta.obs_dim, model.meta.n_actions) == (15, 5)
    assert sorted(model.meta.batch) == sorted(seed_files)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_sigterm_stops_the_learner_cleanly_and_loses_no_file(tmp_path):
    root = TrainingRoot(tmp_path / "root")
    written = [
        write_episode(root.buffer, f"game_20260101_00000{i}_000_a_Victory.npz", steps=4).name
        for i in range(3)
    ]
    store = ModelStore(root.path)
    proc = subprocess.Popen(
        bgtrain_argv("learn", "--root", root.path, "--poll-interval", "0.2", "--n-epochs", "2"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: store.latest_version() is not None or proc.poll() is not None,
            timeout=60,
            what="the first model",
        )
        assert proc.poll() is None, proc.communicate()
        # More games land; SIGTERM may find a batch in hand.
        written += [
            write_episode(root.buffer, f"game_20260101_00001{i}_000_b_Defeat.npz", steps=4).name
            for i in range(4)
        ]
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    assert proc.returncode == 0, err
    assert took < 15
    assert "[BG_LEARNER] Stopping after the batch in hand" in out
    assert list(root.processing.iterdir()) == []
    counts = Spool(root.path).counts()
    assert counts.processing == 0
    assert counts.buffer + counts.archive + counts.quarantine + counts.stale == len(written)
    everywhere = names_in(root.buffer) + names_in(root.archive)
    assert sorted(everywhere) == sorted(written)
    trained = set().union(*(store.load(v).meta.batch for v in store.versions()))
    assert trained == set(names_in(root.archive))
    LearnerLock(root.path).acquire().release()  # the lock is free


def test_config_file_settings_apply_and_flags_override_them(tmp_path):
    root = TrainingRoot(tmp_path / "root")
    names = [
        write_episode(root.buffer, f"game_20260101_00000{i}_000_a_Victory.npz", steps=3).name
        for i in range(5)
    ]
    set_ages(root.buffer, names)
    config = tmp_path / "bgtrain.toml"
    config.write_text(
        "[learner]\nbatch_files = 2\nn_epochs = 2\nhidden_sizes = [16]\nverbose = false\n",
        encoding="utf-8",
    )

    result = bgtrain_cli(
        "learn",
        "--root",
        root.path,
        "--config",
        config,
        "--batch-files",
        "3",
        "--exit-when-idle",
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    store = ModelStore(root.path)
    first, second = store.load(1).meta, store.load(2).meta
    assert first.batch == tuple(names[:3])  # the flag's 3, not the file's 2
    assert second.batch == tuple(names[3:])
    assert first.layer_sizes == (16,)  # from the file
    assert first.hyperparameters["n_epochs"] == 2
    # The model records the algorithm's settings, not the learner's own knobs.
    assert "batch_files" not in first.hyperparameters
    assert "verbose" not in first.hyperparameters
    assert store.latest_version() == 2
    assert names_in(root.archive) == sorted(names)
    # verbose = false in the file: no STATUS REPORT block on stdout
    assert "[BACKGROUND LEARNER] STATUS REPORT" not in result.stdout
