"""Custom games for ``bgtrain run --env tests.games_for_tests:FACTORY`` (module:factory).

Each factory is called with no arguments in every game process and must return a
Gymnasium environment with a Discrete action space and a Box observation space.
"""

from __future__ import annotations

import gymnasium


def acrobot() -> gymnasium.Env:
    """Acrobot-v1: 6 observations and 3 actions, unlike the default CartPole-v1 (4, 2)."""
    return gymnasium.make("Acrobot-v1")
