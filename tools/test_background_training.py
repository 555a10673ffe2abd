#!/usr/bin/env python
"""The seed system's four-test suite, on a temporary root (never your local_training/).

    python tools/test_background_training.py

1. experience data save/load   2. RLAgent batch training and model save
3. learner processes 5 files, archives 5, leaves the buffer empty   4. learner lifecycle
Exit code 1 if any test fails.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import numpy as np

from bgtrain import EpisodeRecorder, ModelStore, Spool, load_episode
from bgtrain.agent import RLAgent
from bgtrain.learner import BackgroundParallelLearner
from bgtrain.store.models import read_model_file

SEED_STATS_KEYS = (
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
)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


def record_games(root: Path, n: int, steps: int = 30) -> list[Path]:
    rng = np.random.default_rng(0)
    with EpisodeRecorder(root, actor="test", env="seed-test") as recorder:
        for _ in range(n):
            for _ in range(steps):
                recorder.record(rng.random(15), int(rng.integers(5)), float(rng.random()), -1.6)
            recorder.finish("Victory")
    return sorted(root.joinpath("data", "buffer").glob("*.npz"))


def test_experience_data_save_load(root: Path) -> None:
    rng = np.random.default_rng(1)
    states = rng.random((40, 15)).astype(np.float32)
    actions = rng.integers(0, 5, 40)
    rewards = rng.random(40).astype(np.float32)
    with EpisodeRecorder(root, actor="test") as recorder:
        for s, a, r in zip(states, actions, rewards, strict=True):
            recorder.record(s, int(a), float(r))
        path = recorder.finish("Victory")
    check(path is not None and path.exists(), "the recorded game was not written")
    episode = load_episode(path)
    check(episode.states.shape == (40, 15), f"states shape {episode.states.shape}")
    check(np.array_equal(episode.states, states), "states differ after load")
    check(np.array_equal(episode.actions, actions), "actions differ after load")
    check(np.allclose(episode.rewards, rewards), "rewards differ after load")
    check(path.name.endswith("_Victory.npz"), f"name does not say the outcome: {path.name}")
    legacy = root / "exp_20250101_000000_ep1.npz"  # the seed's own writer
    np.savez_compressed(legacy, states=states, actions=actions, rewards=rewards)
    check(load_episode(legacy).length == 40, "a seed-format file did not load")


def test_rl_agent_batch_training(root: Path) -> None:
    model_path = root / "models" / "rl_agent_model.npz"
    agent = RLAgent(learning_rate=0.001, model_path=model_path)
    state = np.ones(15, dtype=np.float32)
    before = np.mean([agent.get_action(state) == 0 for _ in range(400)])
    for _ in range(8):
        actions = np.random.default_rng().integers(0, 5, 40)
        experiences = [
            {"states": np.ones((1, 15)), "actions": [a], "rewards": [1.0 if a == 0 else -1.0]}
            for a in actions
        ]
        stats = agent.train_from_batch(experiences)
        check(math.isfinite(stats["loss"]), f"loss is {stats['loss']}")
        check(stats["steps"] == 40 and stats["games"] == 40, f"stats {stats}")
    after = np.mean([agent.get_action(state) == 0 for _ in range(400)])
    check(
        after > before + 0.2, f"the rewarded action did not become likelier ({before} -> {after})"
    )
    check(agent.save_model(), "save_model() returned False")
    model = read_model_file(model_path)
    check(model.version == 1, f"saved model has version {model.version}")


def test_background_learner_processing(root: Path) -> None:
    record_games(root, 5)
    learner = BackgroundParallelLearner(root=root, verbose=False, n_epochs=2)
    learner.start()
    try:
        wait_until(lambda: learner.get_stats()["files_processed"] >= 5, 60, "5 files trained")
    finally:
        learner.stop()
    counts = Spool(root).counts()
    check(counts.archive == 5, f"archived {counts.archive}, expected 5")
    check(counts.buffer == 0, f"buffer holds {counts.buffer}, expected 0")
    check(ModelStore(root).latest_version() is not None, "no model was published")


def test_background_learner_lifecycle(root: Path) -> None:
    learner = BackgroundParallelLearner(root=root, verbose=False)
    check(learner.start(), "start() returned False")
    try:
        check(learner.running, "not running after start()")
        stats = learner.get_stats()
        missing = [k for k in SEED_STATS_KEYS if k not in stats]
        check(not missing, f"get_stats() lacks {missing}")
    finally:
        learner.stop()
    check(not learner.running, "still running after stop()")


TESTS = [
    ("Experience Data Save/Load", test_experience_data_save_load),
    ("RLAgent Batch Training", test_rl_agent_batch_training),
    ("Background Learner Processing", test_background_learner_processing),
    ("Background Learner Lifecycle", test_background_learner_lifecycle),
]


def mark(ok: bool) -> str:
    symbol = "\u2713" if ok else "\u2717"
    try:
        symbol.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        symbol = "[OK]" if ok else "[X]"
    return symbol


def main() -> int:
    print("=" * 70)
    print("BACKGROUND TRAINING SYSTEM TEST")
    print("=" * 70)
    failures = 0
    for number, (name, test) in enumerate(TESTS, start=1):
        print(f"\n[TEST {number}] {name}")
        with tempfile.TemporaryDirectory(prefix="bgtrain-test-") as tmp:
            try:
                test(Path(tmp) / "local_training")
            except Exception as exc:
                failures += 1
                print(f"{mark(False)} Test {number} FAILED: {exc}")
                traceback.print_exc()
            else:
                print(f"{mark(True)} Test {number} PASSED")
    print("\n" + "=" * 70)
    if failures:
        print(f"{failures} of {len(TESTS)} TESTS FAILED {mark(False)}")
    else:
        print(f"ALL TESTS PASSED {mark(True)}")
    print("=" * 70)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
