"""What a game returns, and how long it runs, as the game loop sees it (in-process, real
games and a real recorder): odd values refused with a clear reason and every game
accounted for, every Discrete action range, a step limit, games paced by what still waits
for the learner, and a game loop that keeps nothing per game."""

from __future__ import annotations

import gc
import queue
import threading
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import bgtrain.game.recorder as recorder_module
from bgtrain import TrainingRoot, load_episode
from bgtrain.errors import GameStepError
from bgtrain.game.evaluation import evaluate
from bgtrain.game.gymnasium_games import (
    DEFAULT_STEP_LIMIT,
    GameInfo,
    checked_observation,
    game_info,
)
from bgtrain.game.policy import Policy
from bgtrain.runner.actor import ActorConfig, GameReport, UnsavedGame, play
from bgtrain.store.spool import episode_entries

from .helpers import wait_until

GAMES = "tests.games_for_tests"


class Slots:
    """A budget of ``n`` games, as the fleet's shared one."""

    def __init__(self, n: int) -> None:
        self.left = n

    def take(self) -> bool:
        if self.left == 0:
            return False
        self.left -= 1
        return True

    def spent(self) -> bool:
        return self.left == 0


def play_games(root: Path, env: str, games: int, **config) -> list[GameReport]:
    """The game loop on ``games`` games; a loop still going after 30 s is stopped (and the
    test fails on what it reported), so a game that never ends cannot hang the test."""
    reports: queue.Queue = queue.Queue()
    stop = threading.Event()
    loop = threading.Thread(
        target=play, args=(ActorConfig(root, env, 0, seed=3, **config), stop, Slots(games), reports)
    )
    loop.start()
    loop.join(30)
    stop.set()
    loop.join(30)
    return [reports.get_nowait() for _ in range(reports.qsize())]


def saved_episodes(root: Path) -> list:
    return [load_episode(Path(e.path)) for e in episode_entries(TrainingRoot(root).buffer)]


def model_policy(obs_dim: int, n_actions: int, env: str) -> Policy:
    """A model's numpy policy (as a game process loads it), made for ``env``."""
    from .test_policy import meta, model_arrays

    return Policy(model_arrays(0, obs_dim, n_actions), meta(obs_dim, n_actions, extra={"env": env}))


# --------------------------------------------------------------------------- odd values

ODD_GAMES = {
    "nan_every_third_game": "observation[1] = nan at step 5; a recorded game holds finite "
    "numbers only",
    "inf_reward_every_third_game": "reward inf at step 5; a recorded game holds finite "
    "numbers only",
    "huge_observation_every_third_game": "observation[1] = 3e+38 at step 5; a recorded game "
    "holds values within +-1e+09 (scale the game's values down)",
}


@pytest.mark.parametrize("factory", sorted(ODD_GAMES))
def test_a_game_returning_odd_values_is_refused_by_name_and_the_others_are_saved(tmp_path, factory):
    env = f"{GAMES}:{factory}"
    reports = play_games(tmp_path / "root", env, 9)

    assert len(reports) == 9  # every game played is reported
    refused = [r for r in reports if r.refused]
    assert [r.refused for r in refused] == [f"{env} returned {ODD_GAMES[factory]}"] * 3
    assert all(r.outcome == "Refused" and r.length == 4 for r in refused)  # 4 steps kept
    episodes = saved_episodes(tmp_path / "root")
    assert len(episodes) == 6 == len(reports) - len(refused)
    assert all(np.isfinite(ep.states).all() and ep.length == 10 for ep in episodes)


def test_a_wrongly_sized_observation_is_refused_by_name(tmp_path):
    env = f"{GAMES}:wrong_shape_once"
    reports = play_games(tmp_path / "root", env, 3)

    assert [r.refused for r in reports] == [
        "",
        f"{env} returned an observation of 3 numbers at step 4; its observation space has 4",
        "",
    ]
    assert len(saved_episodes(tmp_path / "root")) == 2


def test_checked_observation_names_the_reset_and_values_too_large_for_float32():
    info = GameInfo("g", 2, 2, None)
    with pytest.raises(GameStepError) as excinfo:
        checked_observation([0.0, 1e39], info, 0)
    assert str(excinfo.value) == (
        "g returned observation[1] = 1e+39 at reset; a recorded game holds values within "
        "+-1e+09 (scale the game's values down)"
    )
    with pytest.raises(GameStepError, match=r"^g returned an observation that is not numbers"):
        checked_observation(["a", "b"], info, 2)


def test_evaluation_of_a_game_returning_nan_stops_with_its_reason(tmp_path):
    env = f"{GAMES}:nan_every_third_game"
    with pytest.raises(GameStepError) as excinfo:
        evaluate(model_policy(4, 2, env), env, episodes=3)
    assert str(excinfo.value) == f"{env} returned {ODD_GAMES['nan_every_third_game']}"


# --------------------------------------------------------------------------- actions


def test_a_game_with_actions_from_minus_one_gets_its_own_actions_and_files_hold_indices(
    tmp_path, monkeypatch
):
    log = tmp_path / "actions.txt"
    monkeypatch.setenv("BGTRAIN_TEST_ACTIONS", str(log))
    reports = play_games(tmp_path / "root", f"{GAMES}:shifted_actions", 6)

    assert [r.refused for r in reports] == [""] * 6
    sent = [int(line) for line in log.read_text().split()]
    assert set(sent) == {-1, 0, 1}  # the game's own range, every action used
    episodes = saved_episodes(tmp_path / "root")
    indices = np.concatenate([ep.actions for ep in episodes])
    assert set(indices.tolist()) == {0, 1, 2}
    for ep in episodes:  # the game's reward is the action it received: index - 1
        assert ep.rewards.tolist() == (ep.actions - 1).astype(np.float32).tolist()
    assert all(ep.meta["n_actions"] == 3 for ep in episodes)


def test_evaluation_sends_a_model_s_greedy_action_in_the_game_s_own_range(tmp_path, monkeypatch):
    log = tmp_path / "actions.txt"
    monkeypatch.setenv("BGTRAIN_TEST_ACTIONS", str(log))
    env = f"{GAMES}:shifted_actions"
    policy = model_policy(4, 3, env)
    result = evaluate(policy, env, episodes=1)

    sent = [int(line) for line in log.read_text().split()]
    first_state = np.array([0, 1, 0, 0], dtype=np.float32)
    assert sent[0] == policy.act_greedy(first_state) - 1
    assert result.returns == [float(sum(sent))]


def test_gymnasium_discrete_start_is_read_into_the_game_info():
    info = game_info(f"{GAMES}:shifted_actions")
    assert (info.n_actions, info.action_start) == (3, -1)
    assert game_info("CartPole-v1").action_start == 0


# --------------------------------------------------------------------------- step limit


def test_a_game_past_the_step_limit_is_saved_as_cut_short(tmp_path):
    reports = play_games(tmp_path / "root", f"{GAMES}:endless_fast", 2, max_game_steps=25)

    assert [(r.length, r.terminated) for r in reports] == [(25, False), (25, False)]
    for ep in saved_episodes(tmp_path / "root"):
        assert ep.length == 25 and not ep.terminated
        assert ep.last_state is not None and ep.last_state[0] == 25  # bootstraps from here


def test_the_step_limit_is_the_game_s_own_else_100000(tmp_path):
    assert game_info("CartPole-v1").step_limit() == 500
    assert game_info(f"{GAMES}:endless_fast").step_limit() == DEFAULT_STEP_LIMIT == 100_000
    assert game_info(f"{GAMES}:endless_fast").step_limit(7) == 7
    # A game whose spec says 30 steps but which never stops by itself is cut there.
    reports = play_games(tmp_path / "root", f"{GAMES}:never_ending_with_a_limit", 1)
    assert [(r.length, r.terminated) for r in reports] == [(30, False)]


def test_evaluation_of_a_game_that_never_ends_returns_with_its_games_cut_short():
    env = f"{GAMES}:endless_fast"
    result = evaluate(model_policy(4, 2, env), env, episodes=2, max_steps=40)

    assert (result.cut_short, result.step_limit) == (2, 40)
    assert result.as_dict()["cut_short"] == 2
    assert len(result.returns) == 2


# --------------------------------------------------------------------------- pacing, memory


@pytest.fixture
def stalled_disk(monkeypatch):
    """The recorder's writes wait until ``release`` is set; ``started``: one is waiting."""
    state = SimpleNamespace(started=threading.Event(), release=threading.Event())
    real_write = recorder_module.EpisodeRecorder._write_synced

    def slow_write(path, data):
        state.started.set()
        if not state.release.wait(30):
            raise TimeoutError("the test never released the writer")
        real_write(path, data)

    monkeypatch.setattr(recorder_module.EpisodeRecorder, "_write_synced", staticmethod(slow_write))
    yield state
    state.release.set()


def test_games_still_being_written_count_as_waiting_for_the_learner(tmp_path, stalled_disk):
    root = tmp_path / "root"
    reports: queue.Queue = queue.Queue()
    stop = threading.Event()
    config = ActorConfig(root, f"{GAMES}:one_step", 0, seed=1, max_waiting=2)
    game_loop = threading.Thread(target=play, args=(config, stop, Slots(10), reports))
    game_loop.start()
    try:
        wait_until(lambda: reports.qsize() == 2, what="two games played")
        # Nothing is in buffer/ yet: both games wait for the disk, and for the learner.
        game_loop.join(0.5)
        assert game_loop.is_alive() and reports.qsize() == 2
        assert episode_entries(TrainingRoot(root).buffer) == []
    finally:
        stop.set()
        stalled_disk.release.set()
        game_loop.join(30)
    assert not game_loop.is_alive()
    assert len(episode_entries(TrainingRoot(root).buffer)) == reports.qsize() == 2


def test_a_finish_waits_once_the_disk_is_too_far_behind(tmp_path, stalled_disk):
    recorder = recorder_module.EpisodeRecorder(tmp_path / "root", actor="a")
    finished = []

    def games() -> None:
        for i in range(recorder_module.MAX_PENDING_WRITES + 1):
            recorder.record([float(i)], 0, 1.0)
            finished.append(recorder.finish("Victory"))

    loop = threading.Thread(target=games)
    loop.start()
    try:
        wait_until(lambda: len(finished) == recorder_module.MAX_PENDING_WRITES, what="finishes")
        loop.join(0.5)
        assert loop.is_alive() and len(finished) == recorder_module.MAX_PENDING_WRITES
    finally:
        stalled_disk.release.set()
        loop.join(30)
    assert len(recorder.close()) == len(finished) == recorder_module.MAX_PENDING_WRITES + 1


class _CountObjects:
    """A report sink that counts live objects by type after game ``first`` and ``last``
    (each once every game before it is on disk, so no write is in flight)."""

    def __init__(self, buffer: Path, first: int, last: int) -> None:
        self.buffer, self.points, self.games = buffer, (first, last), 0
        self.counts: list[Counter] = []

    def put(self, report: GameReport) -> None:
        self.games += 1
        if self.games - 1 in self.points:  # the game after: its finish() collected the rest
            gc.collect()
            self.counts.append(Counter(type(o).__qualname__ for o in gc.get_objects()))
        if self.games in self.points:
            wait_until(lambda: len(episode_entries(self.buffer)) == self.games, what="writes")


def test_the_game_loop_keeps_nothing_per_game(tmp_path):
    root = TrainingRoot(tmp_path / "root")
    first, last = 50, 250
    sink = _CountObjects(root.buffer, first, last)
    play(ActorConfig(root.path, f"{GAMES}:one_step", 0, seed=1), threading.Event(),
         Slots(last + 1), sink)  # fmt: skip

    before, after = sink.counts
    grown = {name: after[name] - before[name] for name in after}
    assert {name: n for name, n in grown.items() if n >= (last - first) // 4} == {}


def test_a_game_the_disk_refuses_is_reported_by_name_not_lost(tmp_path, monkeypatch):
    real_write = recorder_module.EpisodeRecorder._write_synced
    calls = []

    def full_disk_once(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(
        recorder_module.EpisodeRecorder, "_write_synced", staticmethod(full_disk_once)
    )
    reports = play_games(tmp_path / "root", f"{GAMES}:one_step", 3)

    games = [r for r in reports if isinstance(r, GameReport)]
    unsaved = [r for r in reports if isinstance(r, UnsavedGame)]
    assert len(games) == 3 and len(unsaved) == 1
    assert unsaved[0].reason == "[Errno 28] No space left on device"
    assert unsaved[0].name.startswith("game_") and unsaved[0].name.endswith("_a0_Unknown.npz")
    names = {Path(e.path).name for e in episode_entries(TrainingRoot(tmp_path / "root").buffer)}
    assert len(names) == 2 and unsaved[0].name not in names
