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


class _Game(gymnasium.Env):
    """A small game of ``length`` steps: the observation counts the steps, the reward is
    +1 for action index 1 and 0 for action index 0 (a greedy model learns it fast)."""

    observation_space = gymnasium.spaces.Box(-1e3, 1e3, shape=(4,), dtype=np.float32)
    action_space = gymnasium.spaces.Discrete(2)
    length = 10

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        return np.array([self.t, 1.0, 0.0, 0.0], dtype=np.float32)

    def _reward(self, index: int) -> float:
        return float(index)

    def step(self, action):
        self.t += 1
        return self._obs(), self._reward(int(action)), self.t >= self.length, False, {}


class ShiftedActions(_Game):
    """``Discrete(3, start=-1)``: the game's actions are -1, 0 and 1. An action outside
    them raises, as a game checking its input would. Every action received is appended
    to the file named by $BGTRAIN_TEST_ACTIONS (if set)."""

    action_space = gymnasium.spaces.Discrete(3, start=-1)

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        log = os.environ.get("BGTRAIN_TEST_ACTIONS")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"{int(action)}\n")
        self.t += 1
        return self._obs(), float(action), self.t >= self.length, False, {}


def shifted_actions() -> gymnasium.Env:
    return ShiftedActions()


class OddValues(_Game):
    """Every ``every``-th game (counted per process) returns ``value`` in observation[1]
    (or as the reward, with ``where="reward"``) at step ``at``; other games are normal."""

    def __init__(self, value: float, every: int = 3, at: int = 5, where: str = "obs"):
        self.value, self.every, self.at, self.where = value, every, at, where
        self.games = 0

    def reset(self, *, seed=None, options=None):
        self.games += 1
        return super().reset(seed=seed, options=options)

    def _odd_now(self) -> bool:
        return self.games % self.every == 0 and self.t == self.at

    def _obs(self) -> np.ndarray:
        obs = super()._obs()
        if self.where == "obs" and self._odd_now():
            obs[1] = self.value
        return obs

    def _reward(self, index: int) -> float:
        return self.value if self.where == "reward" and self._odd_now() else float(index)


def nan_every_third_game() -> gymnasium.Env:
    """NaN in observation[1] at step 5 of games 3, 6, 9...: 3 of every 9 games."""
    return OddValues(float("nan"))


def nan_always() -> gymnasium.Env:
    """Every game returns a NaN observation at step 2."""
    return OddValues(float("nan"), every=1, at=2)


class WrongShape(_Game):
    """Game 2 returns 3 numbers at step 4, though its observation space says 4."""

    games = 0

    def reset(self, *, seed=None, options=None):
        WrongShape.games += 1
        return super().reset(seed=seed, options=options)

    def _obs(self) -> np.ndarray:
        obs = super()._obs()
        return obs[:3] if WrongShape.games == 2 and self.t == 4 else obs


def wrong_shape_once() -> gymnasium.Env:
    return WrongShape()


def four_inputs_three_actions() -> gymnasium.Env:
    """Same observations as CartPole-v1 (4) but 3 actions."""
    game = _Game()
    game.action_space = gymnasium.spaces.Discrete(3)
    return game


class Negative(_Game):
    """Reward -10 per step for action index 0, -9 for action index 1; 10 steps. Random
    play scores about -95, a greedy model that learned action 1 scores -90. Its spec's
    threshold is -91: negative like Acrobot-v1's -100, and below half of it (-45.5), which
    no game of it can reach."""

    spec = gymnasium.envs.registration.EnvSpec(
        "bgtrain-tests/Negative-v0", reward_threshold=-91.0, max_episode_steps=10
    )

    def _reward(self, index: int) -> float:
        return float(index) - 10.0


def negative_threshold() -> gymnasium.Env:
    return Negative()


class NeverEnding(_Game):
    """Never ends by itself and has no TimeLimit wrapper, but its spec says 30 steps: the
    game loop must cut it there by default."""

    spec = gymnasium.envs.registration.EnvSpec("bgtrain-tests/NeverEnding-v0", max_episode_steps=30)
    length = 10**12


def never_ending_with_a_limit() -> gymnasium.Env:
    return NeverEnding()


class EndlessFast(_Game):
    """Never ends, no limit of its own, no pause per step."""

    length = 10**12


def endless_fast() -> gymnasium.Env:
    return EndlessFast()


def one_step() -> gymnasium.Env:
    """A game of one step (many games per second: memory over many games)."""
    game = _Game()
    game.length = 1
    return game


def inf_reward_every_third_game() -> gymnasium.Env:
    """An infinite reward at step 5 of games 3, 6, 9..."""
    return OddValues(float("inf"), where="reward")


def huge_observation_every_third_game() -> gymnasium.Env:
    """3e38 in observation[1] at step 5 of games 3, 6, 9...: finite in float32, but far
    beyond what an episode file accepts."""
    return OddValues(3e38)


class SlowCartPole(gymnasium.Wrapper):
    """CartPole-v1 at 5 ms a step: a slow game, whose learner idles between games."""

    def step(self, action):
        time.sleep(0.005)  # a frame of a real game
        return self.env.step(action)


def slow_cartpole() -> gymnasium.Env:
    return SlowCartPole(gymnasium.make("CartPole-v1"))


class BigObservation(_Game):
    """20 steps of 20,000 observation values: 80 KB a step, over 1.5 MiB a game. Over a
    ``--max-file-mb 1`` as CarRacing's images (105.6 MiB a game) are over the default 64."""

    observation_space = gymnasium.spaces.Box(-1e3, 1e3, shape=(20_000,), dtype=np.float32)
    length = 20

    def _obs(self) -> np.ndarray:
        return np.full(20_000, self.t, dtype=np.float32)


def big_observation() -> gymnasium.Env:
    return BigObservation()
