"""Games to play: any Gymnasium id, or ``package.module:factory`` for a custom game.

Only what the game loop needs: make the environment, flatten observations to float32,
check what a game returns, say the outcome of a game, and check that a root's model fits
a game. numpy and gymnasium only: game processes import this.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
import sys
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from bgtrain.errors import BgtrainError, GameStepError, ModelMismatchError
from bgtrain.game.defaults import DEFAULT_STEP_LIMIT
from bgtrain.store.episode import MAX_ABS_VALUE
from bgtrain.store.models import ModelMeta

logger = logging.getLogger(__name__)

#: Colour codes in Gymnasium's warnings: a log line is plain text.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


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
    #: The game's first action (``Discrete(n, start)``): the game is sent
    #: ``action_start + i`` for the action index ``i`` (0..n-1) files and models hold.
    action_start: int = 0
    #: The game's own step limit (the env spec's ``max_episode_steps``), if any.
    max_episode_steps: int | None = None

    def step_limit(self, limit: int | None = None) -> int:
        """Steps after which a game is cut short: ``limit`` if given, else the game's own
        limit, else :data:`DEFAULT_STEP_LIMIT`."""
        if limit is not None:
            return limit
        return self.max_episode_steps or DEFAULT_STEP_LIMIT

    def shape_text(self) -> str:
        return _shape_text(self.obs_dim, self.n_actions)


def make_env(env: str, **kwargs: Any) -> gym.Env:
    """A Gymnasium id (``CartPole-v1``) or ``package.module:factory`` (called with no args)."""
    if ":" in env and not env.startswith("gymnasium"):
        module_name, _, factory_name = env.partition(":")
        module = _import_game_module(module_name, env)
        factory = getattr(module, factory_name, None)
        if not callable(factory):
            raise GameError(f"{module_name!r} has no callable {factory_name!r} (--env {env})")
        return factory(**kwargs)
    return _make_gymnasium(env, **kwargs)


def _import_game_module(module_name: str, env: str) -> types.ModuleType:
    """The module of ``--env module:factory``, found as ``python -m`` finds one: in the
    current folder too (the ``bgtrain`` script's import path holds the script's folder,
    not the current one)."""
    module = _try_import(module_name, env)
    here = str(Path.cwd())
    if module is None and here not in sys.path:
        # Last on the path, so that a file here never hides an installed package; kept
        # there, so that the game's own imports of its sibling modules work later too.
        sys.path.append(here)
        importlib.invalidate_caches()
        module = _try_import(module_name, env)
    if module is not None:
        return module
    top = module_name.split(".")[0]
    raise GameError(
        f"cannot import {module_name!r} for --env {env}: no module {module_name!r} in the "
        f"current folder ({here}) nor on the import path. Run bgtrain from the folder that "
        f"holds {top}.py (or the package {top}/), or add that folder to PYTHONPATH"
    )


def _try_import(module_name: str, env: str) -> types.ModuleType | None:
    """The module, ``None`` if it is not found, :class:`GameError` if it is found but
    cannot be imported (a module it imports is missing, or it raises ImportError)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _is_the_module(exc, module_name):
            return None
        raise GameError(f"cannot import {module_name!r} for --env {env}: {exc}") from None
    except ImportError as exc:
        raise GameError(f"cannot import {module_name!r} for --env {env}: {exc}") from None


def _is_the_module(exc: ModuleNotFoundError, module_name: str) -> bool:
    """Whether ``exc`` says ``module_name`` (or a package on its way) is missing, rather
    than a module it imports."""
    parts = module_name.split(".")
    return exc.name in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _make_gymnasium(env: str, **kwargs: Any) -> gym.Env:
    """``gym.make(env)``, its warnings logged as one line each (Gymnasium's carry ANSI
    colour codes and its source line), an id it no longer has answered with the one to
    use."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            made = gym.make(env, **kwargs)
        except gym.error.DeprecatedEnv:
            raise GameError(_deprecated(env)) from None
        except gym.error.Error as exc:
            raise GameError(
                f"unknown game {env!r}: {str(exc).rstrip('.')}. Use a Gymnasium id "
                "(e.g. CartPole-v1) or package.module:factory"
            ) from None
    for warning in caught:
        logger.warning("%s: %s", env, _ANSI.sub("", str(warning.message)).strip())
    return made


def _deprecated(env: str) -> str:
    """What to do about a Gymnasium id of a version it no longer has (``Taxi-v3``)."""
    namespace, name, _ = gym.envs.registration.parse_env_id(env)
    newest = gym.envs.registration.find_highest_version(namespace, name)
    current = gym.envs.registration.get_env_id(namespace, name, newest)
    return (
        f"{env} is an old version that Gymnasium {gym.__version__} no longer has: "
        f"use --env {current}"
    )


def info_of_env(env: gym.Env, env_id: str) -> GameInfo:
    """What bgtrain needs to know of a made game: its shapes, reward threshold and step
    limit. Raises :class:`GameError` for a game it cannot play (actions not Discrete,
    observations not a Box)."""
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise GameError(
            f"{env_id} has action space {env.action_space}; bgtrain plays games with a "
            "Discrete action space"
        )
    shape = getattr(env.observation_space, "shape", None)
    if not shape:
        raise GameError(_not_a_box(env_id, env.observation_space))
    spec = getattr(env, "spec", None)
    threshold = getattr(spec, "reward_threshold", None) if spec is not None else None
    max_steps = getattr(spec, "max_episode_steps", None) if spec is not None else None
    return GameInfo(
        env_id,
        int(np.prod(shape)),
        int(env.action_space.n),
        None if threshold is None else float(threshold),
        action_start=int(getattr(env.action_space, "start", 0)),
        max_episode_steps=None if max_steps is None else int(max_steps),
    )


def _not_a_box(env_id: str, space: gym.Space) -> str:
    """Why a game whose observations are not an array is refused, and the usual answer:
    Gymnasium's FlattenObservation makes a Box of any space (one-hot for Discrete)."""
    if ":" in env_id and not env_id.startswith("gymnasium"):
        how = "wrap what your factory returns in gymnasium.wrappers.FlattenObservation"
    else:
        how = (
            "make a factory return gymnasium.wrappers.FlattenObservation("
            f"gymnasium.make({env_id!r})) and pass --env module:factory"
        )
    one_hot = " (one-hot)" if isinstance(space, gym.spaces.Discrete) else ""
    return (
        f"{env_id} has observation space {space}; need a Box. To flatten it to one{one_hot}, {how}"
    )


def game_info(env_id: str) -> GameInfo:
    env = make_env(env_id)
    try:
        return info_of_env(env, env_id)
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


# --------------------------------------------------------------------------- checks


def _when(step: int) -> str:
    return "at reset" if step == 0 else f"at step {step}"


def checked_observation(obs: Any, info: GameInfo, step: int) -> np.ndarray:
    """``obs`` as a new flat float32 array, or :class:`GameStepError` if a recorded game
    cannot hold it: not numbers, another size than the game's observation space, NaN,
    infinite or beyond +-``MAX_ABS_VALUE`` (what an episode file accepts). ``step`` 0 is
    the observation of ``reset``. A copy: a game may reuse its array for the next step."""
    try:
        raw = np.asarray(obs)
        # Through float64 unless already float32: a float64 of 1e39 must be refused as too
        # large, not silently become a float32 inf.
        state = np.array(raw if raw.dtype == np.float32 else raw.astype(np.float64)).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise GameStepError(
            f"{info.env_id} returned an observation that is not numbers {_when(step)} ({exc})"
        ) from None
    if state.shape != (info.obs_dim,):
        raise GameStepError(
            f"{info.env_id} returned an observation of {state.size} numbers {_when(step)}; "
            f"its observation space has {info.obs_dim}"
        )
    if not np.abs(state).max() <= MAX_ABS_VALUE:  # NaN fails the comparison too
        i = int(np.flatnonzero(~(np.abs(state) <= MAX_ABS_VALUE))[0])
        raise GameStepError(
            f"{info.env_id} returned observation[{i}] = {state[i]:g} {_when(step)}; "
            + _allowed(float(state[i]))
        )
    return state.astype(np.float32, copy=False)


def checked_reward(reward: Any, info: GameInfo, step: int) -> float:
    """``reward`` as a float, or :class:`GameStepError` if it is not one finite number
    within +-``MAX_ABS_VALUE`` (a one-element array counts as one number)."""
    if isinstance(reward, (int, float)):  # the usual case, and numpy's float64
        value = float(reward)
    else:
        arr = np.asarray(reward)
        if arr.dtype.kind not in "biuf" or arr.size != 1:
            raise GameStepError(
                f"{info.env_id} returned reward {reward!r} {_when(step)}; a reward is one number"
            )
        value = float(arr.reshape(()))
    if not abs(value) <= MAX_ABS_VALUE:
        raise GameStepError(
            f"{info.env_id} returned reward {value:g} {_when(step)}; " + _allowed(value)
        )
    return value


def _allowed(value: float) -> str:
    if not math.isfinite(value):
        return "a recorded game holds finite numbers only"
    return (
        f"a recorded game holds values within +-{MAX_ABS_VALUE:.0e} (scale the game's values down)"
    )


def check_model_fits(meta: ModelMeta, info: GameInfo, root: str | Path | None) -> None:
    """:class:`ModelMismatchError` unless the model of ``meta`` takes this game's
    observations and gives its number of actions (``root``: where the model is)."""
    if meta.obs_dim == info.obs_dim and meta.n_actions == info.n_actions:
        return
    made_for = meta.extra.get("env")
    made = f"made for {made_for}" if made_for else "made for another game"
    where = f"the model in --root {root}" if root is not None else "the model"
    raise ModelMismatchError(
        f"{where} (v{meta.version}) was {made} "
        f"({_shape_text(meta.obs_dim, meta.n_actions)}); {info.env_id} has "
        f"{info.shape_text()}. Use another --root for {info.env_id}"
        + (f", or --env {made_for}" if made_for and made_for != info.env_id else "")
    )


def _shape_text(obs_dim: int, n_actions: int) -> str:
    return (
        f"{obs_dim} observation{'s' * (obs_dim != 1)}, {n_actions} action{'s' * (n_actions != 1)}"
    )
