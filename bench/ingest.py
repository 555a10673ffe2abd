"""6. Spool ingest: claim + load + validate + archive, against a bare ``np.load`` loop."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bgtrain import Spool, TrainingRoot
from bgtrain.store.episode import build_episode, load_episode, save_episode

from .harness import Row

NAME = "ingest"
TITLE = "6. Spool ingest"
TARGET = ">= 0.7 of the rate of a bare np.load loop over the same files"


def _make_files(folder: Path, n: int, steps: int, compress: bool) -> list[Path]:
    rng = np.random.default_rng(0)
    episode = build_episode(
        rng.random((steps, 8), dtype=np.float32),
        rng.integers(0, 4, steps),
        rng.random(steps, dtype=np.float32),
        logp=np.full(steps, -1.3, np.float32),
        policy_version=3,
        meta={"outcome": "Victory", "env": "bench"},
    )
    folder.mkdir(parents=True, exist_ok=True)
    first = save_episode(episode, folder / "game_0.npz", compress=compress)
    paths = [first]
    for i in range(1, n):
        paths.append(folder / f"game_{i}.npz")
        shutil.copyfile(first, paths[-1])
    return paths


def _spool_rate(tmp: Path, n: int, steps: int, compress: bool) -> tuple[float, float]:
    root = TrainingRoot(tmp / "root").ensure()
    paths = _make_files(root.buffer, n, steps, compress)
    size = sum(p.stat().st_size for p in paths)
    spool = Spool(root)
    started = time.perf_counter()
    while claimed := spool.claim(max_files=10):
        for path in claimed:
            load_episode(path)
        spool.archive(claimed)
    elapsed = time.perf_counter() - started
    shutil.rmtree(root.path)
    return n / elapsed, size / elapsed / 1e6


def _bare_rate(tmp: Path, n: int, steps: int, compress: bool) -> tuple[float, float]:
    folder = tmp / "bare"
    paths = _make_files(folder, n, steps, compress)
    size = sum(p.stat().st_size for p in paths)
    started = time.perf_counter()
    for path in paths:
        with np.load(path) as data:
            for key in data.files:
                data[key]
    elapsed = time.perf_counter() - started
    shutil.rmtree(folder)
    return n / elapsed, size / elapsed / 1e6


def run(quick: bool) -> list[Row]:
    repeats = 3 if quick else 5
    rows = []
    for steps in (20, 2000):
        for compress in (False, True):
            n = (200 if steps == 20 else 50) if quick else (2000 if steps == 20 else 400)
            ours, bare, ours_mb = [], [], []
            with tempfile.TemporaryDirectory() as tmp:
                for _ in range(repeats):
                    rate, mb = _spool_rate(Path(tmp), n, steps, compress)
                    ours.append(rate)
                    ours_mb.append(mb)
                    bare.append(_bare_rate(Path(tmp), n, steps, compress)[0])
            med, peer = float(np.median(ours)), float(np.median(bare))
            label = (
                f"{steps}-step episodes, {'compressed' if compress else 'stored'} "
                f"(MB/s {np.median(ours_mb):.1f})"
            )
            rows.append(
                Row(
                    label,
                    "episodes/s",
                    med,
                    min(ours),
                    max(ours),
                    peer="bare np.load",
                    peer_median=peer,
                    ratio=med / peer,
                    target=">= 0.7",
                    met=med / peer >= 0.7,
                )
            )
    return rows
