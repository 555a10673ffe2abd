"""13. StarCraft II ladder step with background learning: does training beside a ladder
game slow the bot's steps?

On the AI Arena ladder a step has about 40 ms, and the bot's ladder mode starts a learner
process during each game (``LearningBot(ladder=...)``: ``bgtrain learn --exit-when-idle``
on ``data/``, niced, one torch thread). Here the example Zerg bot in ladder mode is put
(as the tests do) into the synthetic 200-unit late-game state of benchmark 12, and its
``on_step`` is timed step after step, a decision every 11 steps (4 game seconds at
burnysc2's 8 game loops a step) and the game saved as it goes every 5 decisions:

- without a learner;
- with the ladder's learner training on earlier games in ``data/`` (synthetic games of
  the bot's 15 values, enough to keep it training through the whole series; a series the
  learner did not outlast is not counted).

burnysc2's own parsing of the observation is not counted (the same for any bot). Each
repeat is a series of steps; its p99 is a value, the table shows the median of the
repeats' p99s, without and with the learner in turn.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .harness import Row

NAME = "ladder_step"
TITLE = "13. StarCraft II ladder step with background learning"
TARGET = "p99 step with the learner <= 40 ms and <= 1.2x without"
BUDGET_MS = 40.0
MAX_RATIO = 1.2
#: burnysc2 steps 8 game loops (0.36 game s): a decision every 4 game seconds is every 11.
STEPS_PER_DECISION = 11
#: The learner's start (Python, torch) before a series is timed beside it.
LEARNER_START_S = 60.0


def _bot(data: Path) -> tuple[Any, Any, Any]:
    """The example Zerg bot in ladder mode, in the late-game state; its observation and
    game info (each step prepares a fresh state from them, as burnysc2 does)."""
    from tests.test_sc2 import load_recorded, put_in_state

    from bgtrain.integrations.sc2.settings import LadderSettings
    from bgtrain.integrations.sc2.zerg_bot import ZergBot

    from .sc2_decision import MAP, late_game

    recorded = load_recorded(MAP)
    observation, game_info = late_game(recorded)
    settings = LadderSettings(data_dir=data, background_learning=False, opening_minutes=0)
    bot = put_in_state(ZergBot(ladder=settings), recorded, observation, game_info, first_step=True)
    asyncio.run(bot.on_start())
    return bot, observation, game_info


def _seed_games(data: Path, games: int, steps: int) -> None:
    """Earlier games for the learner: ``games`` of ``steps`` decisions each."""
    from datetime import datetime

    from bgtrain.store.episode import build_episode, episode_file_name, save_episode
    from bgtrain.store.root import TrainingRoot

    buffer = TrainingRoot(data).buffer
    buffer.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(list(buffer.glob("*.npz"))))
    for i in range(games):
        episode = build_episode(
            rng.random((steps, 15), dtype=np.float32),
            rng.integers(0, 5, steps),
            rng.normal(size=steps),
            logp=np.full(steps, np.log(0.2), dtype=np.float32),
            meta={"outcome": "Victory" if i % 2 else "Defeat", "env": "sc2"},
        )
        save_episode(episode, buffer / episode_file_name(datetime.now(), f"bench{i}", "Tie"))


def _series(bot: Any, observation: Any, game_info: Any, steps: int) -> list[float]:
    """Milliseconds of each of ``steps`` calls of ``on_step``."""
    from sc2.game_state import GameState

    times = []
    for i in range(steps):
        bot._prepare_step(GameState(observation), game_info)
        if i % STEPS_PER_DECISION == 0:
            bot._next_decision = 0.0  # the game time of the state stands still
        iteration = -1 if bot._last_iteration is None else bot._last_iteration
        started = time.perf_counter()
        asyncio.run(bot.on_step(iteration + 1))
        times.append((time.perf_counter() - started) * 1000)
        bot.actions.clear()  # what _after_step does once it has sent them
        bot.unit_tags_received_action.clear()
    return times


def _with_learner(bot: Any, observation: Any, game_info: Any, steps: int) -> list[float] | None:
    """A series timed while the ladder's learner trains (``None``: it ended first)."""
    from bgtrain.integrations.sc2.ladder import LadderLearner
    from bgtrain.integrations.sc2.settings import LadderSettings
    from bgtrain.store.counters import HEARTBEAT_NAME, read_heartbeat

    (bot.ladder.root.state / HEARTBEAT_NAME).unlink(missing_ok=True)  # the last one's
    learner = LadderLearner(bot.ladder.root, LadderSettings(data_dir=bot.ladder.root.path))
    assert learner.start()
    try:
        deadline = time.monotonic() + LEARNER_START_S
        while time.monotonic() < deadline:  # until it trains (torch imported, a batch in)
            beat = read_heartbeat(bot.ladder.root.path)
            if beat is not None and beat.state != "idle":
                break
            time.sleep(0.1)
        times = _series(bot, observation, game_info, steps)
        return times if learner.running else None
    finally:
        learner.stop(timeout=30.0)


def run(quick: bool) -> list[Row]:
    steps, repeats = (60, 1) if quick else (1500, 3)
    games, game_steps = (20, 200) if quick else (300, 300)
    without: list[float] = []
    beside: list[float] = []
    p50s: tuple[list[float], list[float]] = ([], [])
    with tempfile.TemporaryDirectory(prefix="bench-ladder-") as tmp:
        data = Path(tmp) / "data"
        bot, observation, game_info = _bot(data)
        _series(bot, observation, game_info, 20)  # warm-up
        for _ in range(repeats):
            alone = _series(bot, observation, game_info, steps)
            _seed_games(data, games, game_steps)
            trained = _with_learner(bot, observation, game_info, steps)
            if trained is None:
                continue
            without.append(float(np.percentile(alone, 99)))
            beside.append(float(np.percentile(trained, 99)))
            p50s[0].append(float(np.median(alone)))
            p50s[1].append(float(np.median(trained)))
    if not beside:
        raise RuntimeError("the learner never outlasted a series: give it more games")
    ours, peer = float(np.median(beside)), float(np.median(without))
    ratio = ours / peer
    return [
        Row(
            "bot step p99, the ladder's learner training beside it",
            "ms",
            ours,
            min(beside),
            max(beside),
            peer="no learner",
            peer_median=peer,
            ratio=ratio,
            target=TARGET,
            met=ours <= BUDGET_MS and ratio <= MAX_RATIO,
            values=beside,
            peer_values=without,
        ),
        Row(
            "bot step p50, the ladder's learner training beside it",
            "ms",
            float(np.median(p50s[1])),
            min(p50s[1]),
            max(p50s[1]),
            peer="no learner",
            peer_median=float(np.median(p50s[0])),
            ratio=float(np.median(p50s[1])) / float(np.median(p50s[0])),
            values=p50s[1],
            peer_values=p50s[0],
        ),
    ]
