"""The guarantees of DESIGN.md that span components, each proven end to end.

Guarantee 4 (no torn model) is in test_models.py, 5 (one learner) in test_lock.py, and
the bad-input half of 6 and 7 in test_episode.py; here: 1, 2, 3, 6 and 7 through a real
learner cycle, with real crashes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bgtrain import ModelMeta, ModelStore, Spool, TrainingRoot
from bgtrain.learn.pipeline import BatchLimits, TrainedModel, recover_root, run_batch
from bgtrain.store.episode import load_episode

from .crash_worker import CRASH_EXIT
from .helpers import write_episode

WORKER = Path(__file__).with_name("crash_worker.py")
N_EPISODES = 7


def run_worker(root: Path, crash_at: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(WORKER.parent.parent / "src")}
    return subprocess.run(
        [sys.executable, str(WORKER), str(root), str(crash_at)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def fill_buffer(root: Path) -> dict[str, float]:
    """N episodes with distinct tags; returns name -> tag."""
    names = {}
    for i in range(N_EPISODES):
        name = f"game_20260101_00000{i}_000_a_Victory.npz"
        write_episode(TrainingRoot(root).buffer, name, steps=2 + i, tag=float(i + 1))
        os.utime(TrainingRoot(root).buffer / name, ns=(i * 10**9, i * 10**9))
        names[name] = float(i + 1)
    return names


def assert_each_episode_trained_exactly_once(root: Path, names: dict[str, float]) -> None:
    tr = TrainingRoot(root)
    # Guarantee 2: every episode is in archive/, nowhere else, and nothing else is left.
    archived = sorted(tr.archive.rglob("*.npz"))
    assert sorted(p.name for p in archived) == sorted(names)
    for path in archived:
        assert load_episode(path).rewards[0] == names[path.name]
    for folder in (tr.buffer, tr.processing, tr.stale, tr.quarantine):
        assert list(folder.iterdir()) == []
    assert [p for p in tr.path.rglob(".*")] == []  # no temp file left behind
    # Guarantee 3: each episode is in the batch of exactly one published version, and
    # every version in the history is whole and lists a non-empty batch.
    store = ModelStore(root)
    in_batches = Counter()
    versions = store.versions()
    assert versions == list(range(1, len(versions) + 1))
    assert store.latest_version() == versions[-1]
    for version in versions:
        model = store.load(version)
        assert model.meta.batch
        in_batches.update(model.meta.batch)
        # The weight is the sum of the batch's rewards: the model really saw that batch.
        expected = sum(names[n] * (2 + int(names[n]) - 1) for n in model.meta.batch)
        assert model.arrays["w"][0] == expected
    assert in_batches == Counter(list(names))


def test_a_learner_cycle_without_crash_trains_each_episode_once(tmp_path):
    names = fill_buffer(tmp_path)
    done = run_worker(tmp_path, 0)
    assert done.returncode == 0, done.stderr
    assert_each_episode_trained_exactly_once(tmp_path, names)
    assert Spool(tmp_path).counts() == (0, 0, N_EPISODES, 0, 0)


def test_a_crash_at_every_step_then_recovery_loses_nothing_and_trains_once(tmp_path):
    """Guarantees 2 and 3: kill the learner before each of its moves, restart it."""
    clean = run_worker(_fresh(tmp_path / "count", fill_buffer), 0)
    total_steps = int(clean.stdout.split()[-1])
    assert total_steps > 20  # claims, trains, publishes and archives of 3 batches
    for crash_at in range(1, total_steps + 1):
        root = tmp_path / f"crash{crash_at}"
        names = fill_buffer(root)
        crashed = run_worker(root, crash_at)
        assert crashed.returncode == CRASH_EXIT, (crash_at, crashed.stderr)
        restarted = run_worker(root, 0)
        assert restarted.returncode == 0, (crash_at, restarted.stderr)
        assert_each_episode_trained_exactly_once(root, names)


def test_crashing_again_during_recovery_is_still_safe(tmp_path):
    names = fill_buffer(tmp_path)
    for crash_at in (6, 1, 2, 3):  # mid-batch, then three crashes inside recovery
        assert run_worker(tmp_path, crash_at).returncode == CRASH_EXIT
    assert run_worker(tmp_path, 0).returncode == 0
    assert_each_episode_trained_exactly_once(tmp_path, names)


def fill_buffer_with_bad_files(root: Path) -> dict[str, float]:
    """The valid episodes of fill_buffer, plus two files that go to quarantine."""
    names = fill_buffer(root)
    buffer = TrainingRoot(root).buffer
    for i, name in enumerate(("game_bad_empty.npz", "game_bad_zip.npz")):
        (buffer / name).write_bytes(b"" if i == 0 else b"PK\x03\x04 truncated")
        os.utime(buffer / name, ns=((2 * i + 1) * 10**9, (2 * i + 1) * 10**9))  # mid-batch
    return names


def test_a_crash_at_every_step_never_leaves_a_set_aside_file_without_its_reason(tmp_path):
    """Guarantee 2 for quarantine: kill the learner before each of its moves, including
    between a file's move and its reason (before the fix a crash there left a quarantined
    file with no NAME.reason.json), restart it: each bad file is in quarantine/ once, with
    its reason, and each good one trained once."""
    clean = run_worker(_fresh(tmp_path / "count", fill_buffer_with_bad_files), 0)
    total_steps = int(clean.stdout.split()[-1])
    for crash_at in range(1, total_steps + 1):
        root = tmp_path / f"crash{crash_at}"
        names = fill_buffer_with_bad_files(root)
        assert run_worker(root, crash_at).returncode == CRASH_EXIT, crash_at
        assert run_worker(root, 0).returncode == 0, crash_at
        tr = TrainingRoot(root)
        quarantined = sorted(p.name for p in tr.quarantine.glob("*.npz"))
        assert quarantined == ["game_bad_empty.npz", "game_bad_zip.npz"], crash_at
        for name in quarantined:
            reason = Spool(root).reason(tr.quarantine / name)
            assert reason is not None and reason["name"] == name, (crash_at, name)
        archived = sorted(p.name for p in tr.archive.rglob("*.npz"))
        assert archived == sorted(names), crash_at
        in_batches = Counter()
        for version in ModelStore(root).versions():
            in_batches.update(ModelStore(root).load(version).meta.batch)
        assert in_batches == Counter(list(names)), crash_at


def _fresh(root: Path, fill) -> Path:
    fill(root)
    return root


def test_bad_files_are_quarantined_and_the_rest_of_the_batch_trains(tmp_path):
    """Guarantees 6 and 7 inside a learner cycle."""
    tr = TrainingRoot(tmp_path).ensure()
    good = [write_episode(tr.buffer, f"good{i}.npz", tag=1.0) for i in range(3)]
    (tr.buffer / "empty.npz").write_bytes(b"")
    (tr.buffer / "folder.npz").mkdir()
    (tr.buffer / "link.npz").symlink_to(good[0])
    np.savez(
        tr.buffer / "wrongdim.npz",
        states=np.zeros((3, 7), np.float32),
        actions=np.zeros(3, np.int64),
        rewards=np.zeros(3, np.float32),
    )
    trained_on: list[str] = []

    def train(batch):
        trained_on.extend(item.path.name for item in batch)
        return TrainedModel({"w": np.zeros(1)}, ModelMeta(version=0, obs_dim=4, n_actions=2))

    spool, store = Spool(tr), ModelStore(tr)
    result = run_batch(spool, store, train, BatchLimits(max_files=10, obs_dim=4, n_actions=2))
    assert sorted(trained_on) == ["good0.npz", "good1.npz", "good2.npz"]
    assert result.published.version == 1
    reasons = {p.name: spool.reason(p)["reason"] for p in result.quarantined}
    assert reasons == {
        "empty.npz": "empty file (0 bytes)",
        "folder.npz": "is a folder, not a file",
        "link.npz": "is a symbolic link; bgtrain never follows links",
        "wrongdim.npz": "obs_dim is 7, but this root's model expects 4",
    }
    # The link was moved as a link: its target (an archived episode) is untouched.
    assert (tr.quarantine / "link.npz").is_symlink()
    assert spool.counts() == (0, 0, 3, 0, 4)


def test_an_interrupted_training_returns_its_batch_to_the_buffer(tmp_path):
    tr = TrainingRoot(tmp_path).ensure()
    for i in range(3):
        write_episode(tr.buffer, f"g{i}.npz")

    def train(batch):
        raise KeyboardInterrupt

    spool, store = Spool(tr), ModelStore(tr)
    try:
        run_batch(spool, store, train)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interrupt was swallowed")
    assert spool.counts() == (3, 0, 0, 0, 0)
    assert store.latest_version() is None


def test_recover_root_cleans_only_the_learners_own_temp_files(tmp_path):
    tr = TrainingRoot(tmp_path).ensure()
    own = [
        tr.models / ".rl_agent_model.npz.1-ab.tmp",
        tr.history / ".x.npz.2-cd.tmp",
        tr.state / ".archive_index.json.3-ef.tmp",
    ]
    for path in own:
        path.write_bytes(b"partial")
    writer_temp = tr.buffer / ".game_x.npz.9-aa.tmp"  # a game may still be writing it
    writer_temp.write_bytes(b"partial")
    dead_writer_temp = tr.buffer / ".game_y.npz.8-0000abcd.tmp"  # its writer died an hour ago
    dead_writer_temp.write_bytes(b"partial")
    os.utime(dead_writer_temp, (time.time() - 3600, time.time() - 3600))
    recovery = recover_root(Spool(tr), ModelStore(tr), stale_temp_age=900)
    assert sorted(recovery.temps_removed) == sorted([*own, dead_writer_temp])
    assert writer_temp.exists()
