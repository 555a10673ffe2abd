"""Small builders shared by the tests (real files, real folders; nothing mocked)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bgtrain.episode import build_episode, save_episode
from bgtrain.models import ModelMeta


def write_episode(
    folder: Path, name: str, steps: int = 5, obs_dim: int = 4, tag: float = 0.0, **kwargs
) -> Path:
    """A valid episode whose rewards all equal ``tag`` (so it can be recognised later)."""
    folder.mkdir(parents=True, exist_ok=True)
    episode = build_episode(
        np.full((steps, obs_dim), tag, dtype=np.float32),
        np.zeros(steps, dtype=np.int64),
        np.full(steps, tag, dtype=np.float32),
        **kwargs,
    )
    return save_episode(episode, folder / name)


def tiny_model(value: float = 0.0, obs_dim: int = 4, n_actions: int = 2):
    """Arrays and meta of a stand-in model: every weight equals ``value``."""
    arrays = {
        "w0": np.full((obs_dim, 8), value, dtype=np.float32),
        "b0": np.full(8, value, dtype=np.float32),
    }
    return arrays, ModelMeta(version=0, obs_dim=obs_dim, n_actions=n_actions)
