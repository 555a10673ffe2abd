"""The local fleet of game processes: every game a process saves is reported, even the
game in progress when the fleet is stopped."""

from __future__ import annotations

from pathlib import Path

from bgtrain import TrainingRoot, load_episode
from bgtrain.runner.actor import ActorConfig
from bgtrain.runner.fleet import LocalFleet
from bgtrain.store.spool import episode_entries

from .helpers import wait_until


def test_the_game_in_progress_at_stop_is_saved_and_reported(tmp_path: Path, monkeypatch):
    started = tmp_path / "started"
    monkeypatch.setenv("BGTRAIN_TEST_STARTED", str(started))  # the game process inherits it
    root = TrainingRoot(tmp_path / "root")
    fleet = LocalFleet()
    fleet.start([ActorConfig(root.path, "tests.games_for_tests:endless", 0, seed=1)], None)
    try:
        wait_until(started.exists, timeout=60, what="a game in progress")
    finally:
        fleet.stop(timeout=30)
    reports = fleet.reports(0)
    assert fleet.alive() == 0
    files = [Path(e.path) for e in episode_entries(root.buffer)]
    assert len(files) == len(reports) == 1
    episode = load_episode(files[0])
    assert not episode.terminated and episode.last_state is not None  # saved as cut short
    assert episode.length == reports[0].length >= 1
    assert not reports[0].terminated


def test_a_game_process_that_cannot_go_on_reports_its_error_as_one_line(tmp_path: Path):
    """A model that does not fit the game (published after the run's own check, e.g. by
    a rollback to a foreign model) stops the game process with its reason, not a numpy
    traceback, and before any game."""
    from bgtrain import LearnerLock, ModelStore
    from bgtrain.runner.actor import GameProcessError
    from bgtrain.store.models import ModelMeta

    from .test_policy import model_arrays

    root = TrainingRoot(tmp_path / "root")
    with LearnerLock(root.path):
        ModelStore(root.path).publish(
            model_arrays(0, 6, 3), ModelMeta(0, 6, 3, extra={"env": "Acrobot-v1"})
        )
    fleet = LocalFleet()
    fleet.start([ActorConfig(root.path, "CartPole-v1", 0, seed=1)], 5)
    try:
        wait_until(lambda: fleet.alive() == 0, timeout=60, what="the game process to stop")
    finally:
        fleet.stop(timeout=30)
    assert fleet.reports(0) == [
        GameProcessError(
            0,
            f"the model in --root {root.path} (v1) was made for Acrobot-v1 (6 observations, "
            "3 actions); CartPole-v1 has 4 observations, 2 actions. Use another --root for "
            "CartPole-v1, or --env Acrobot-v1",
        )
    ]
    assert episode_entries(root.buffer) == []
