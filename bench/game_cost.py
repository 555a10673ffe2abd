"""7. Cost to the game: what recording and numpy inference add to a game loop."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from bgtrain.game.recorder import EpisodeRecorder

from .harness import Row, per_call_us, repeat

NAME = "game_cost"
TITLE = "7. Cost to the game"
TARGET = (
    "record() <= 2 µs; finish() holds the game thread <= 100 µs; numpy act() >= 3x faster "
    "than the torch forward at batch 1; recording adds <= 5% to a game loop"
)


def _policy_pair():
    """The numpy Policy and the torch network of the same fresh model (CartPole-sized)."""
    import torch

    from bgtrain.game.policy import Policy
    from bgtrain.learn import algorithms

    trainer = algorithms.create(None, 4, 2)
    policy = Policy(trainer.export(), trainer.meta(version=1))
    return policy, trainer, torch


def run(quick: bool) -> list[Row]:
    repeats = 3 if quick else 7
    calls = 20_000 if quick else 200_000
    rows: list[Row] = []
    state = np.array([0.01, -0.02, 0.03, 0.04], dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        recorder = EpisodeRecorder(Path(tmp), actor="bench")

        def record_cost() -> float:
            us = per_call_us(lambda: recorder.record(state, 1, 1.0, -0.69), calls)
            recorder._reset()  # drop the long game: only the call cost is measured
            return us

        med, low, high = repeat(record_cost, repeats)
        rows.append(
            Row(
                "record() per call",
                "µs",
                med,
                low,
                high,
                target="<= 2 µs",
                met=med <= 2.0,
                ratio=None,
            )
        )

        def finish_cost() -> float:
            for _ in range(500):  # a whole CartPole game
                recorder.record(state, 1, 1.0, -0.69)
            started = time.perf_counter()
            recorder.finish("Victory")
            return (time.perf_counter() - started) * 1e6

        samples = [finish_cost() for _ in range(repeats * 5)]
        recorder.close()
        med, low, high = float(np.median(samples)), min(samples), max(samples)
        rows.append(
            Row(
                "finish() on the game thread (500-step game)",
                "µs",
                med,
                low,
                high,
                target="<= 100 µs",
                met=med <= 100.0,
            )
        )

    policy, trainer, torch = _policy_pair()
    obs = torch.from_numpy(state[None])

    def torch_act() -> None:
        with torch.no_grad():
            logits, _ = trainer.net(obs)
            torch.distributions.Categorical(logits=logits).sample()

    act_calls = calls // 10
    np_med, np_low, np_high = repeat(
        lambda: per_call_us(lambda: policy.act(state), act_calls), repeats
    )
    th_med, _, _ = repeat(lambda: per_call_us(torch_act, act_calls), repeats)
    rows.append(
        Row(
            "act() numpy, batch 1",
            "µs",
            np_med,
            np_low,
            np_high,
            peer="torch forward",
            peer_median=th_med,
            ratio=th_med / np_med,
            target=">= 3x faster",
            met=th_med / np_med >= 3.0,
        )
    )

    env = gym.make("CartPole-v1")
    games = 20 if quick else 100

    def loop(record: bool) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            recorder = EpisodeRecorder(Path(tmp), actor="bench") if record else None
            started = time.perf_counter()
            steps = 0
            for g in range(games):
                obs_, _ = env.reset(seed=g)
                while True:
                    action, logp = policy.act(obs_)
                    nxt, reward, terminated, truncated, _ = env.step(action)
                    if recorder is not None:
                        recorder.record(obs_, action, reward, logp)
                    obs_ = nxt
                    steps += 1
                    if terminated or truncated:
                        break
                if recorder is not None:
                    recorder.finish("Defeat")
            elapsed = time.perf_counter() - started
            if recorder is not None:
                recorder.close()
        return elapsed / steps * 1e6

    plain = [loop(False) for _ in range(repeats)]
    recorded = [loop(True) for _ in range(repeats)]
    p_med, r_med = float(np.median(plain)), float(np.median(recorded))
    overhead = (r_med - p_med) / p_med * 100
    rows.append(
        Row(
            "game loop with recording, per step",
            "µs",
            r_med,
            min(recorded),
            max(recorded),
            peer="same loop without",
            peer_median=p_med,
            ratio=r_med / p_med,
            target="overhead <= 5%",
            met=overhead <= 5.0,
        )
    )
    env.close()
    return rows
