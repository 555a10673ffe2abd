"""8. Freshness: from a game landing in the buffer to a model trained on it (idle learner),
and from a published model to a game process playing it."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from bgtrain import EpisodeRecorder, ModelStore
from bgtrain.game.policy import Policy

from .harness import Row

NAME = "freshness"
TITLE = "8. Freshness"
TARGET = "land -> published model <= 0.5 s (idle learner); publish -> playing <= one game"


def _wait(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("freshness benchmark: timed out")
        time.sleep(0.001)


def _land_to_model(root: Path, repeats: int) -> list[float]:
    from bgtrain.learn.learner import BackgroundLearner

    learner = BackgroundLearner(root, verbose=False, poll_interval=60.0, n_epochs=2)
    store = ModelStore(root)
    rng = np.random.default_rng(0)
    seconds = []
    learner.start()
    try:
        for i in range(repeats + 1):  # the first one warms torch up and is not counted
            _wait(lambda: learner.idle)
            version = store.latest_version()
            with EpisodeRecorder(root, actor="bench") as recorder:
                for _ in range(30):
                    recorder.record(rng.random(4), int(rng.integers(2)), 1.0, -0.69)
                recorder.finish("Defeat")
                started = time.perf_counter()
            _wait(lambda before=version: store.latest_version() != before)
            if i:
                seconds.append(time.perf_counter() - started)
    finally:
        learner.stop()
    return seconds


def _publish_to_playing(root: Path, publishes: int) -> tuple[list[float], list[int]]:
    """A game loop (CartPole, numpy policy, a model check between games) while another
    thread publishes versions: seconds until a game starts on each new version, and how
    many games started on an older version after it was published."""
    from bgtrain.learn import algorithms

    trainer = algorithms.create(None, 4, 2)
    store = ModelStore(root)
    store.publish(trainer.export(), trainer.meta())
    starts: list[tuple[float, int]] = []  # (time, version) of every game start
    published: list[tuple[float, int]] = []
    done = threading.Event()

    def play() -> None:
        env, version, policy = gym.make("CartPole-v1"), None, None
        while not done.is_set():
            model = store.load_if_newer(version)
            if model is not None:
                policy, version = Policy.from_model(model), model.version
            starts.append((time.perf_counter(), version))
            obs, _ = env.reset()
            while True:
                obs, _, terminated, truncated, _ = env.step(policy.act(obs)[0])
                if terminated or truncated:
                    break

    player = threading.Thread(target=play)
    player.start()
    try:
        rng = np.random.default_rng(1)
        for _ in range(publishes):
            time.sleep(rng.uniform(0.02, 0.08))  # publishes land at random points of games
            meta = store.publish(trainer.export(), trainer.meta())
            published.append((time.perf_counter(), meta.version))
        time.sleep(0.2)
    finally:
        done.set()
        player.join()
    delays, stale_games = [], []
    for at, version in published:
        later = [(t, v) for t, v in starts if t >= at]
        first = next(t for t, v in later if v is not None and v >= version)
        delays.append(first - at)
        stale_games.append(sum(1 for t, v in later if t < first))
    return delays, stale_games


def run(quick: bool) -> list[Row]:
    repeats = 5 if quick else 20
    with tempfile.TemporaryDirectory() as tmp:
        land = _land_to_model(Path(tmp) / "a", repeats)
        delays, stale = _publish_to_playing(Path(tmp) / "b", repeats)
    med = float(np.median(land))
    return [
        Row(
            "land -> published model, idle learner",
            "s",
            med,
            min(land),
            max(land),
            target="<= 0.5 s",
            met=med <= 0.5,
        ),
        Row(
            "publish -> a game starts on it",
            "s",
            float(np.median(delays)),
            min(delays),
            max(delays),
        ),
        Row(
            "games started on the old model after a publish (max)",
            "games",
            float(np.median(stale)),
            min(stale),
            max(stale),
            target="<= 1",
            met=max(stale) <= 1,
        ),
    ]
