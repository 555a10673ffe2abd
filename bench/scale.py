"""9. Scale: a learner cycle and a monitor refresh with 100 vs 100,000 archived files."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bgtrain import ModelMeta, ModelStore, Spool, TrainingRoot
from bgtrain.learn.pipeline import BatchLimits, TrainedModel, run_batch
from bgtrain.monitor.snapshot import Watcher

from .harness import Row
from .ingest import _make_files

NAME = "scale"
TITLE = "9. Scale"
TARGET = "time with 100,000 archived files / time with 100 <= 1.2"
LINKS_PER_FILE = 50_000


def _fill_archive(root: TrainingRoot, n: int) -> None:
    """``n`` archived episodes (hard links to one file: the folder is what is measured)."""
    day = root.archive / "2026-01-01"
    day.mkdir(parents=True, exist_ok=True)
    source = _make_files(root.path / "src", 1, 20, False)[0]
    template = source.read_bytes()
    for i in range(n):
        if i % LINKS_PER_FILE == 0 and i:  # file systems cap the links to one file
            source = root.path / "src" / f"game_{i}.npz"
            source.write_bytes(template)
        os.link(source, day / f"game_{i:06d}.npz")


def _train(batch):
    total = sum(item.episode.total_reward for item in batch)
    return TrainedModel({"w": np.array([total])}, ModelMeta(version=0, obs_dim=8, n_actions=4))


def _measure(tmp: Path, archived: int, cycles: int) -> tuple[list[float], list[float]]:
    root = TrainingRoot(tmp / f"root{archived}").ensure()
    _fill_archive(root, archived)
    spool, store = Spool(root), ModelStore(root)
    watcher = Watcher(root)
    watcher.take()  # warm: a first look counts the archive once
    episode = (root.path / "src" / "game_0.npz").read_bytes()  # the first source file
    cycle_ms, refresh_ms = [], []
    for c in range(cycles):
        for i in range(10):  # a batch's worth of new games
            (root.buffer / f"new_{c}_{i}.npz").write_bytes(episode)
        started = time.perf_counter()
        run_batch(spool, store, _train, BatchLimits(max_files=10))
        cycle_ms.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        watcher.take()
        refresh_ms.append((time.perf_counter() - started) * 1e3)
    return cycle_ms, refresh_ms


def run(quick: bool) -> list[Row]:
    big = 5_000 if quick else 100_000
    cycles = 5 if quick else 15
    with tempfile.TemporaryDirectory() as tmp:
        small_cycle, small_refresh = _measure(Path(tmp), 100, cycles)
        big_cycle, big_refresh = _measure(Path(tmp), big, cycles)
    rows = []
    for label, small, large in (
        ("learner cycle (10 files)", small_cycle, big_cycle),
        ("monitor refresh", small_refresh, big_refresh),
    ):
        ratio = float(np.median(large) / np.median(small))
        rows.append(
            Row(
                f"{label}, {big:,} archived",
                "ms",
                float(np.median(large)),
                min(large),
                max(large),
                peer="100 archived",
                peer_median=float(np.median(small)),
                ratio=ratio,
                target="<= 1.2",
                met=ratio <= 1.2,
            )
        )
    return rows
