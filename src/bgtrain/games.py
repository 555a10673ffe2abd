"""Games to play: any Gymnasium id, or ``package.module:factory`` for a custom game.

Only what the game loop needs: make the environment, flatten observations to float32,
and say the outcome of a game. numpy and gymnasium only: game processes import this.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from .errors import BgtrainError

DEFAULT_ENV = "CartPole-v1"


class GameError(BgtrainError):
    """A game that cannot be made or played by bgtrain."""


@dataclass(frozen=True)
class GameInfo:
    """What the runner needs to know of a game before playing it."""

    env_id: str
    obs_dim: int
    n_actions: int
    #: Return that counts as solved/Victory (the env spec's ``reward_threshold``), if any.
    reward_threshold: float | None


def make_env(env: str, **kwargs: Any) -> gym.Env:
    """A Gymnasium id (``CartPole-v1``) or ``package.module:factory`` (called with no args)."""
    if ":" in env and not env.startswith("gymnasium"):
        module_name, _, factory_name = env.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise GameError(f"cannot import {module_name!r} for --env {env}: {exc}") from None
        factory = getattr(module, factory_name, None)
        if not callable(factory):
            raise GameError(f"{module_name!r} has no callable {factory_name!r} (--env {env})")
        return factory(**kwargs)
    try:
        return gym.make(env, **kwargs)
    except gym.error.Error as exc:
        raise GameError(
            f"unknown game {env!r}: {str(exc).rstrip('.')}. Use a Gymnasium id "
            "(e.g. CartPole-v1) or package.module:factory"
        ) from None


def describe(env: gym.Env, env_id: str) -> GameInfo:
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise GameError(
            f"{env_id} has action space {env.action_space}; bgtrain plays games with a "
            "Discrete action space"
        )
    shape = getattr(env.observation_space, "shape", None)
    if not shape:
        raise GameError(f"{env_id} has observation space {env.observation_space}; need a Box")
    spec = getattr(env, "spec", None)
    threshold = getattr(spec, "reward_threshold", None) if spec is not None else None
    return GameInfo(env_id, int(np.prod(shape)), int(env.action_space.n), threshold)


def game_info(env_id: str) -> GameInfo:
    env = make_env(env_id)
    try:
        return describe(env, env_id)
    finally:
        env.close()


def outcome_of(total_reward: float, info: dict[str, Any], threshold: float | None) -> str:
    """``Victory`` when the return reaches the threshold, else ``Defeat``; a game that says
    its own outcome (``info["outcome"]`` at the end) is believed."""
    own = info.get("outcome")
    if isinstance(own, str) and own:
        return own
    if threshold is None:
        return "Unknown"
    return "Victory" if total_reward >= threshold else "Defeat"


def flat(obs: Any) -> np.ndarray:
    return np.asarray(obs, dtype=np.float32).reshape(-1)
