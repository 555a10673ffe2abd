"""Stable-Baselines3 PPO with rl-baselines3-zoo's tuned hyperparameters, trained until a
greedy evaluation reaches the game's reward threshold: the peer of benchmarks 1-4.

``python -m bench.peers.sb3_ppo --env CartPole-v1 --zoo CartPole-v1 --seed 1
--eval-every 5000 --seconds 300`` prints one JSON line: solved, steps, evaluations.
Evaluation is SB3's own ``EvalCallback`` (deterministic actions, 10 games) and its time
counts, as bgtrain's does. An entry with ``normalize`` runs as the zoo runs it: the
training games in a ``VecNormalize`` (observations and rewards, the entry's gamma), the
evaluation games in one that shares the training statistics (synced before each
evaluation) without updating them or scaling rewards.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any


def linear(start: float) -> Callable[[float], float]:
    """The zoo's ``lin_X``: X times the fraction of the budget left."""
    return lambda progress_remaining: progress_remaining * start


#: rl-baselines3-zoo hyperparams/ppo.yml (its DummyVecEnv, its ``n_timesteps`` budget;
#: ``normalize``: its VecNormalize wrapper). Unlisted settings are SB3's defaults, as in
#: the zoo (batch_size 64, learning_rate 3e-4, clip_range 0.2).
ZOO: dict[str, dict[str, Any]] = {
    "CartPole-v1": {
        "n_envs": 8,
        "n_timesteps": 100_000,
        "n_steps": 32,
        "batch_size": 256,
        "gae_lambda": 0.8,
        "gamma": 0.98,
        "n_epochs": 20,
        "ent_coef": 0.0,
        "learning_rate": linear(1e-3),
        "clip_range": linear(0.2),
    },
    "Acrobot-v1": {
        "normalize": True,
        "n_envs": 16,
        "n_timesteps": 1_000_000,
        "n_steps": 256,
        "gae_lambda": 0.94,
        "gamma": 0.99,
        "n_epochs": 4,
        "ent_coef": 0.0,
    },
    "LunarLander-v3": {
        "n_envs": 16,
        "n_timesteps": 1_000_000,
        "n_steps": 1024,
        "batch_size": 64,
        "gae_lambda": 0.98,
        "gamma": 0.999,
        "n_epochs": 4,
        "ent_coef": 0.01,
    },
}


def normalized(env: Any, eval_env: Any, gamma: float) -> tuple[Any, Any]:
    """The zoo's ``normalize: true``: observations and rewards of the training games
    normalised by running statistics (discounted with the algorithm's gamma); the
    evaluation games see observations scaled by the same statistics (``EvalCallback``
    copies them in before each evaluation) and their true rewards."""
    from stable_baselines3.common.vec_env import VecNormalize

    train = VecNormalize(env, gamma=gamma)
    evaluate = VecNormalize(eval_env, training=False, norm_reward=False, gamma=gamma)
    return train, evaluate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peers.sb3_ppo", description=__doc__)
    p.add_argument("--env", required=True, help="Gymnasium id or module:factory")
    p.add_argument("--zoo", required=True, choices=sorted(ZOO), help="hyperparameters to use")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--eval-every", type=int, required=True, help="game steps between evals")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--seconds", type=float, required=True, help="wall-clock cap")
    a = p.parse_args(argv)
    deadline = time.monotonic() + a.seconds

    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import (
        BaseCallback,
        CallbackList,
        EvalCallback,
        StopTrainingOnRewardThreshold,
    )
    from stable_baselines3.common.env_util import make_vec_env

    from bgtrain.game.gymnasium_games import game_info, make_env

    class WallClockCap(BaseCallback):
        def _on_step(self) -> bool:
            return time.monotonic() < deadline

    threshold = game_info(a.env).reward_threshold
    params = dict(ZOO[a.zoo])
    n_envs, budget = params.pop("n_envs"), params.pop("n_timesteps")
    normalize = params.pop("normalize", False)
    env = make_vec_env(lambda: make_env(a.env), n_envs=n_envs, seed=a.seed)
    eval_env = make_vec_env(lambda: make_env(a.env), n_envs=1, seed=10_000 + a.seed)
    if normalize:
        env, eval_env = normalized(env, eval_env, params.get("gamma", 0.99))
    evaluation = EvalCallback(
        eval_env,
        callback_on_new_best=StopTrainingOnRewardThreshold(threshold, verbose=0),
        n_eval_episodes=a.eval_episodes,
        eval_freq=max(1, a.eval_every // n_envs),  # counted in calls: n_envs steps each
        deterministic=True,
        verbose=0,
    )
    model = PPO("MlpPolicy", env, seed=a.seed, verbose=0, **params)
    model.learn(budget, callback=CallbackList([evaluation, WallClockCap()]))
    print(
        json.dumps(
            {
                "solved": bool(evaluation.best_mean_reward >= threshold),
                "steps": int(model.num_timesteps),
                "evaluations": evaluation.n_calls // evaluation.eval_freq,
                "best_mean": float(evaluation.best_mean_reward),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
