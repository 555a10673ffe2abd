"""The local fleet of game processes: every game a process saves is reported, even the
game in progress when the fleet is stopped."""

from __future__ import annotations

from pathlib import Path

from bgtrain import TrainingRoot, load_episode
from bgtrain.runner.actor import ActorConfig
from bgtrain.runner.fleet import LocalFleet
from bgtrain.spool import episode_entries

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
