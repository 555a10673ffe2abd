"""The seed system's import path: ``from bgtrain.agent import RLAgent``."""

from bgtrain.compat.agent import RLAgent

__all__ = ["RLAgent"]
