"""The game loop of one game process: play, record, pull the newest model between games.

numpy only (guarantee: game processes never import torch). Stops when the shared stop
event is set: a game in progress is then saved as cut short (``terminated=False``).
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from ..games import describe, flat, make_env, outcome_of
from ..models import ModelStore
from ..policy import Policy, UniformPolicy
from ..recorder import EpisodeRecorder
from ..spool import episode_entries

logger = logging.getLogger(__name__)

PACING_POLL_S = 0.005


class StopFlag(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class GameSlots(Protocol):
    """A shared budget of games: ``take()`` is False when none is left."""

    def take(self) -> bool: ...


@dataclass(frozen=True)
class ActorConfig:
    root: Path
    env: str
    actor_id: int
    seed: int | None = None
    compress: bool = False
    #: Pause before a new game while this many games already wait in the buffer (none:
    #: never). A simulator can outrun any learner; games it cannot train on in time only
    #: go stale, and their CPU is the learner's on a small machine.
    max_waiting: int | None = None


class GameReport(NamedTuple):
    """Sent to the run after every game."""

    actor_id: int
    total_reward: float
    length: int
    policy_version: int | None
    outcome: str
    terminated: bool
    finished_at: float


def play(config: ActorConfig, stop: StopFlag, slots: GameSlots, report: Any) -> int:
    """Play games until ``stop`` or no slot is left; returns the number of games saved."""
    env = make_env(config.env)
    info = describe(env, config.env)
    store = ModelStore(config.root)
    policy: Policy | UniformPolicy = UniformPolicy(info.n_actions, seed=config.seed)
    recorder = EpisodeRecorder(
        config.root, actor=f"a{config.actor_id}", env=config.env, policy_version=None
    )
    games = 0
    try:
        while not stop.is_set() and _wait_for_room(config, stop) and slots.take():
            model = store.load_if_newer(policy.version)
            if model is not None:
                policy = Policy.from_model(model)
                policy.seed(None if config.seed is None else config.seed + games)
                recorder.policy_version = model.version
            seed = None if config.seed is None else config.seed + 7919 * games
            obs, _ = env.reset(seed=seed)
            obs = flat(obs)
            total, terminated, step_info = 0.0, False, {}
            while not stop.is_set():
                action, logp = policy.act(obs)
                next_obs, reward, terminated, truncated, step_info = env.step(action)
                recorder.record(obs, action, reward, logp)
                total += float(reward)
                obs = flat(next_obs)
                if terminated or truncated:
                    break
            length = recorder.steps
            if length == 0:
                break
            # Stopped mid-game: saved all the same, as cut short, with its last state.
            outcome = outcome_of(total, step_info, info.reward_threshold)
            recorder.finish(
                outcome,
                terminated=bool(terminated),
                last_state=None if terminated else obs,
                n_actions=info.n_actions,
            )
            games += 1
            report.put(
                GameReport(
                    config.actor_id,
                    total,
                    length,
                    policy.version,
                    outcome,
                    bool(terminated),
                    time.time(),
                )
            )
    finally:
        recorder.close()
        env.close()
    return games


def _wait_for_room(config: ActorConfig, stop: StopFlag) -> bool:
    """Wait while the buffer is full (``max_waiting``); ``False`` if stopped meanwhile."""
    if config.max_waiting is None:
        return True
    buffer = config.root / "data" / "buffer"
    while len(episode_entries(buffer)) >= config.max_waiting:
        if stop.wait(PACING_POLL_S):
            return False
    return True


def actor_process_main(config: ActorConfig, stop: Any, slots: Any, report: Any) -> None:
    """Entry point of a game process: Ctrl+C is the run's to handle (it sets ``stop``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    play(config, stop, slots, report)
