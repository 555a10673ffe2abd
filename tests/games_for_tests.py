"""Custom games for ``bgtrain run --env tests.games_for_tests:FACTORY`` (module:factory).

Each factory is called with no arguments in every game process and must return a
Gymnasium environment with a Discrete action space and a Box observation space.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import gymnasium
import numpy as np


def acrobot() -> gymnasium.Env:
    """Acrobot-v1: 6 observations and 3 actions, unlike the default CartPole-v1 (4, 2)."""
    return gymnasium.make("Acrobot-v1")


class EndlessGame(gymnasium.Env):
    """A game that never ends by itself; its first step creates the file named by
    $BGTRAIN_TEST_STARTED, so a test knows a game is in progress."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(4, dtype=np.float32), {}

    def step(self, action):
        marker = os.environ.get("BGTRAIN_TEST_STARTED")
        if marker:
            Path(marker).touch()
        time.sleep(0.002)  # a frame of a real game
        return np.zeros(4, dtype=np.float32), 1.0, False, False, {}


def endless() -> gymnasium.Env:
    return EndlessGame()
