"""A learner that dies (``os._exit``, no clean-up) just before its K-th file-system move.

Run as ``python crash_worker.py ROOT K`` (K = 0: never crash). It takes the lock, runs
start-up recovery, then trains batches of 3 until the buffer is empty. Every rename,
replace and training call counts as one step, so K = 1, 2, ... walks a crash through
every step of claim -> train -> publish -> archive (and through recovery itself).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from bgtrain import LearnerLock, ModelMeta, ModelStore, Spool
from bgtrain.learn.pipeline import BatchLimits, TrainedModel, recover_root, run_batch

CRASH_EXIT = 17


def main(root: str, crash_at: int) -> int:
    steps = 0

    def step() -> None:
        nonlocal steps
        steps += 1
        if steps == crash_at:
            os._exit(CRASH_EXIT)

    real_rename, real_replace = os.rename, os.replace

    def rename(src, dst, *args, **kwargs):
        step()
        return real_rename(src, dst, *args, **kwargs)

    def replace(src, dst, *args, **kwargs):
        step()
        return real_replace(src, dst, *args, **kwargs)

    os.rename, os.replace = rename, replace

    def train(batch):
        step()
        total = sum(item.episode.total_reward for item in batch)
        return TrainedModel({"w": np.array([total])}, ModelMeta(version=0, obs_dim=4, n_actions=2))

    with LearnerLock(root):
        spool, store = Spool(root), ModelStore(root, history_size=None)
        recover_root(spool, store)
        while run_batch(spool, store, train, BatchLimits(max_files=3)) is not None:
            pass
    print(f"STEPS {steps}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
