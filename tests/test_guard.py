"""The collapse guard: its rule on windows of returns, and a learner that goes back to the
best version's weights when the games collapse (and says so)."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from bgtrain import ModelStore, TrainingRoot
from bgtrain.learn.guard import Collapse, CollapseGuard, NewBest

from .helpers import wait_until, write_episode
from .test_learner import game_name, read_metrics, running, set_mtime, stat


def games(returns, version):
    return [(r, version) for r in returns]


def test_the_first_window_is_the_baseline_and_the_first_best():
    guard = CollapseGuard(window=4, drop=0.5)
    assert guard.observe(games([20, 22, 24, 22], 0)) == NewBest(0, 22.0, np.sqrt(2) / 2)
    assert guard.baseline == 22.0 and guard.baseline_std == pytest.approx(np.sqrt(2))


def test_a_window_half_way_back_to_the_baseline_after_the_best_is_a_collapse():
    guard = CollapseGuard(window=4, drop=0.5)
    guard.observe(games([20, 22, 24, 22], 0))
    assert guard.observe(games([200] * 4, 5)) == NewBest(5, 200.0, 0.0)
    assert guard.threshold == pytest.approx(111.0)
    # Games still played by version 5 are the best's own: not a collapse.
    assert guard.observe(games([100] * 4, 5)) is None
    assert guard.observe(games([112] * 4, 6)) is None  # above 111
    # The window slides game by game: [112, 110, 110, 110] already averages below.
    assert guard.observe(games([110] * 4, 7)) == Collapse(5, 200.0, 110.5, 22.0)


def test_negative_returns_work_as_well():
    guard = CollapseGuard(window=2, drop=0.5)
    guard.observe(games([-500, -500], 0))
    guard.observe(games([-100, -100], 3))
    assert guard.threshold == -300.0
    assert guard.observe(games([-320, -320], 4)) == Collapse(3, -100.0, -320.0, -500.0)


def test_ups_and_downs_of_an_untrained_model_are_not_progress_to_guard():
    guard = CollapseGuard(window=4, drop=0.5)
    guard.observe(games([10, 30, 10, 30], 0))  # mean 20, std 10
    guard.observe(games([35] * 4, 1))  # best by 15 < 2 std
    assert guard.observe(games([0] * 4, 2)) is None


def test_after_a_restore_only_games_played_from_then_on_are_judged():
    guard = CollapseGuard(window=2, drop=0.5)
    guard.observe(games([0, 0], 0))
    guard.observe(games([100, 100], 1))
    assert isinstance(guard.observe(games([10, 10], 2)), Collapse)
    guard.restored()
    assert guard.observe(games([10], 3)) is None  # not a full window yet


def test_a_restored_model_is_measured_anew_so_a_lucky_best_is_not_chased():
    """Seen in a CartPole run: v13's window of 85 was luck; restored 75 times, its games
    kept scoring about 45 and the learner never got past v13."""
    guard = CollapseGuard(window=2, drop=0.5)
    guard.observe(games([0, 0], 0))
    guard.observe(games([100, 100], 1))
    assert isinstance(guard.observe(games([10, 10], 2)), Collapse)
    guard.restored()
    assert guard.observe(games([40, 40], 3)) == NewBest(3, 40.0, 0.0)
    assert guard.observe(games([35, 35], 4)) is None  # not a collapse of the new best


def test_a_continued_root_guards_the_model_it_continues_from():
    first = CollapseGuard(window=2, drop=0.5)
    first.observe(games([20, 20], 0))
    first.observe(games([500, 500], 9))
    later = CollapseGuard(window=2, drop=0.5)
    assert later.resume(first.state(), version=12)
    assert later.best == NewBest(12, 500.0, 0.0)
    assert later.observe(games([25, 25], 13)) == Collapse(12, 500.0, 25.0, 20.0)
    assert not CollapseGuard(2, 0.5).resume({"baseline": None}, 3)


def write_games(root, start, returns, version, steps=4):
    """One game per return (rewards spread over ``steps``), played by ``version``."""
    buffer = TrainingRoot(root).buffer
    for i, ret in enumerate(returns):
        path = write_episode(
            buffer, game_name(start + i), steps=steps, tag=ret / steps, policy_version=version
        )
        set_mtime(path, 100 - (start + i))  # claimed oldest first: in this order


def test_learner_goes_back_to_the_best_version_when_the_games_collapse(tmp_path, capsys, caplog):
    # Window of 2 games, one game a batch: two games at 1, two at 50 played by v2 (the
    # best), then two at 2 played by v3: a collapse, seen when v6 is published.
    settings = {"batch_files": 1, "guard_games": 2, "replay_passes": 0}
    write_games(tmp_path, 0, [1.0, 1.0], version=0)
    write_games(tmp_path, 2, [50.0, 50.0], version=2)
    write_games(tmp_path, 4, [2.0, 2.0], version=3)
    with running(tmp_path, verbose=True, **settings) as learner:
        wait_until(lambda: learner.counters.guard_restores == 1, what="a restore")
        assert learner.model_version == 6
        assert learner.algorithm.optimizer.param_groups[0]["lr"] == learner.settings.learning_rate
        restored = learner.algorithm.net.export()
    store = ModelStore(tmp_path)
    best = store.load(2).arrays
    for name, values in restored.items():  # v2's weights, exactly
        np.testing.assert_array_equal(values, best[name], err_msg=name)
    events = read_metrics(tmp_path, "guard")
    assert [(e["restored_version"], e["at_version"], e["recent_mean"]) for e in events] == [
        (2, 6, 2.0)
    ]
    assert (
        "[BG_LEARNER] [WARN] Collapse guard: the last 2 games averaged 2.0 (best 50.0, first "
        "games 1.0); back to model v2's weights" in capsys.readouterr().out
    )
    # Said once, on the console: a log record too would show twice where a run prints both.
    assert not [r for r in caplog.records if "back to model v2" in r.getMessage()]


def test_a_continued_learner_goes_back_to_the_model_it_started_from(tmp_path):
    settings = {"batch_files": 1, "guard_games": 2, "replay_passes": 0}
    write_games(tmp_path, 0, [1.0, 1.0], version=0)
    write_games(tmp_path, 2, [50.0, 50.0], version=2)
    with running(tmp_path, **settings) as learner:
        wait_until(lambda: stat(learner, "model_version") == 4, what="model version 4")
    assert ModelStore(tmp_path).load(4).meta.extra["guard"]["recent_mean"] == 50.0

    # Continued: v4 is in charge; its successors' games collapse.
    write_games(tmp_path, 4, [50.0], version=4)
    write_games(tmp_path, 5, [2.0, 2.0], version=5)
    with running(tmp_path, **settings) as learner:
        wait_until(lambda: learner.counters.guard_restores == 1, what="a restore")
        assert learner.model_version == 7
        restored = learner.algorithm.net.export()
    v4 = ModelStore(tmp_path).load(4).arrays
    for name, values in restored.items():
        np.testing.assert_array_equal(values, v4[name], err_msg=name)
    assert [e["restored_version"] for e in read_metrics(tmp_path, "guard")] == [4]
    # The next model says where it came back from.
    write_games(tmp_path, 7, [3.0], version=7)
    with running(tmp_path, **settings) as learner:
        wait_until(lambda: stat(learner, "model_version") == 8, what="model version 8")
    assert ModelStore(tmp_path).load(8).meta.extra.get("restored_from") is None


def test_a_lucky_window_is_not_the_bar_a_learning_model_must_keep():
    """Seen in a CartPole run: the first windows averaged 29, a lucky one 69 (returns
    spread 20-120), the next 48: the guard went back eight times (and halved the learning
    rate each time, as it did then). A drop within 4 standard errors of the best window
    is no collapse."""
    guard = CollapseGuard(window=4, drop=0.5)
    guard.observe(games([29, 29, 30, 29], 0))
    lucky = [29, 120, 87, 50]  # the best window slides over the last baseline game
    best = guard.observe(games([120, 87, 50, 20], 3))
    assert best == NewBest(3, 71.5, pytest.approx(statistics.pstdev(lucky) / 2))
    assert guard.threshold == pytest.approx(50.375)
    assert guard.observe(games([48, 49, 48, 48], 5)) is None  # below 50.375, within luck
    assert guard.observe(games([0, 0, 0, 0], 6)) == Collapse(3, 71.5, 0.0, 29.25)
