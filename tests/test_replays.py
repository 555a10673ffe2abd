"""StarCraft II replays as demonstration episodes (``bgtrain sc2 replays``), on the two
professional replays shipped in tests/data/sc2/replays (see its README).

The expected numbers were read from the replays with sc2reader directly (its unit objects'
start, finish and death loops, and the PlayerStatsEvents), not from bgtrain's code."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bgtrain.integrations.sc2.bot import RewardSettings, Strategy
from bgtrain.integrations.sc2.replays import (
    Moment,
    ReplayError,
    convert_replays,
    read_game,
    shaped_rewards,
)
from bgtrain.integrations.sc2.state import STATE_FIELDS
from bgtrain.store.episode import build_episode, load_episode

from .helpers import bgtrain_cli, cli_env

DATA = Path(__file__).parent / "data" / "sc2"
REPLAYS = DATA / "replays"
GAME1 = REPLAYS / "20220224-GAME1-SerralvsDark-ZvsZ-2000AtmospheresLE.SC2Replay"
GAME2 = REPLAYS / "20220227-GAME2-ReynorvsSerral-ZvsZ-BerlingradLE.SC2Replay"
SCALE = {name: scale for name, scale in STATE_FIELDS}

#: (replay, player, decision, supply used, supply cap, workers, army units). Decision k is
#: at 4 k game seconds (15: 1:00, 30: 2:00). Workers are the drones alive less those
#: turning into a building (Serral's three spine crawlers at 2:00 of game 2, Dark's one
#: in game 1); army units are zerglings here.
EXPECTED = [
    (GAME1, "Dark", 15, 14, 14, 14, 0),
    (GAME1, "Serral", 15, 17, 22, 15, 0),
    (GAME1, "Dark", 30, 21, 22, 13, 12),
    (GAME1, "Serral", 30, 20, 22, 20, 0),
    (GAME2, "Reynor", 15, 18, 22, 15, 0),
    (GAME2, "Serral", 15, 14, 14, 14, 0),
    (GAME2, "Reynor", 30, 19, 22, 19, 0),
    (GAME2, "Serral", 30, 20, 22, 11, 12),
]


def test_the_shipped_replays_are_the_ones_their_sums_name():
    sums = dict(
        reversed(line.split("  ", 1)) for line in (DATA / "SHA256SUMS").read_text().splitlines()
    )
    for replay in (GAME1, GAME2):
        digest = hashlib.sha256(replay.read_bytes()).hexdigest()
        assert sums[f"replays/{replay.name}"] == digest


@pytest.mark.parametrize(("replay", "player", "k", "used", "cap", "workers", "army"), EXPECTED)
def test_supply_workers_and_army_are_what_the_replay_says(
    replay, player, k, used, cap, workers, army
):
    game = read_game(replay)
    side = next(p for p in game.players if p.name == player)
    moment = side.moments[k]

    assert moment.get("game_time_s") == pytest.approx(4.0 * k)
    assert (moment.get("supply_used"), moment.get("supply_cap")) == (used, cap)
    assert moment.get("workers") == workers
    assert moment.get("own_army_units") == army


def test_every_player_starts_as_a_zerg_game_starts():
    for replay in (GAME1, GAME2):
        for side in read_game(replay).players:
            start = side.moments[0]
            assert start.get("minerals") == 50
            assert (start.get("supply_used"), start.get("supply_cap")) == (12, 14)
            assert start.get("workers") == 12
            assert start.get("larva") == 3
            assert start.get("townhalls") == 1
            # Sprays, the GameHeart mode and the overlord dance are no upgrades.
            assert start.get("finished_upgrades") == 0


def test_the_replay_facts_and_results_reach_the_episode_meta(tmp_path):
    report = convert_replays([GAME1], tmp_path)

    assert len(report.episodes) == 2
    episodes = {load_episode(p).meta["player"]: load_episode(p) for p in report.episodes}
    serral, dark = episodes["Serral"], episodes["Dark"]
    assert serral.meta["source"] == "demonstration" and serral.is_demonstration
    assert serral.meta["race"] == "Zerg"
    assert serral.meta["map"] == "2000 Atmospheres LE"
    assert serral.meta["game_build"] == 86383
    assert serral.meta["replay"] == GAME1.name
    assert (serral.outcome, dark.outcome) == ("Victory", "Defeat")
    assert serral.logp is None and serral.terminated
    # 179 game seconds: 45 decisions, 4 s apart.
    assert serral.length == dark.length == 45
    # The states are the moments, scaled as sc2_state scales them (2:00: Dark's 12 lings).
    assert dark.states[30, 5] == pytest.approx(12 / SCALE["own_army_units"])
    assert dark.states[30, 4] == pytest.approx(13 / SCALE["workers"])
    # The end reward is RewardSettings': +10 for the winner, -5 for the loser.
    assert serral.rewards[-1] >= 10 - 0.5 - 0.3 * 2
    assert dark.rewards[-1] <= -5 + 0.5 + 0.3 * 2


def test_the_rewards_are_the_bots_terms_from_the_same_numbers():
    def moment(townhalls: float, army_supply: float, used: float, cap: float) -> Moment:
        values = [0.0] * len(STATE_FIELDS)
        values[7], values[2], values[3] = townhalls, used, cap
        return Moment(tuple(values), army_supply, cap - used)

    moments = [moment(1, 0, 14, 14), moment(2, 4, 20, 20), moment(2, 30, 30, 30)]
    rewards = shaped_rewards(moments, "Victory", RewardSettings())

    # +0.3 a base, +4 x 0.05 army supply, -0.1 supply-blocked at the next decision;
    # then +26 x 0.05 clipped to 0.5, no supply-blocked term at the end, +10 victory.
    assert rewards.tolist() == pytest.approx([0.3 + 0.2 - 0.1, 0.5 + 10.0])


def test_the_labels_are_the_bots_strategies():
    game = read_game(GAME2)
    serral = next(p for p in game.players if p.name == "Serral")
    labels = [s.name for s in serral.labels]

    assert set(labels) <= {s.name for s in Strategy}
    # Serral's 12 pool and spine rush in game 2: economy first, then the spines (at
    # 1:52) and the all-in with everything at Reynor's base.
    assert labels[:4] == ["ECONOMY"] * 4
    assert labels[28] == "DEFENSIVE"
    assert labels.count("ALL_IN") == 18


def test_the_cli_converts_the_replays_and_bgtrain_check_accepts_them(tmp_path):
    result = bgtrain_cli("sc2", "replays", REPLAYS, "--root", tmp_path / "root", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("2 replays: 4 episodes in ")
    assert "0 quarantined" in result.stdout
    folder = tmp_path / "root" / "data" / "demonstrations"
    files = sorted(folder.glob("*.npz"))
    assert [f.name for f in files] == [
        "demo_20220224-GAME1-SerralvsDark-ZvsZ-2000AtmospheresLE_p1-Dark_Defeat.npz",
        "demo_20220224-GAME1-SerralvsDark-ZvsZ-2000AtmospheresLE_p2-Serral_Victory.npz",
        "demo_20220227-GAME2-ReynorvsSerral-ZvsZ-BerlingradLE_p1-Reynor_Defeat.npz",
        "demo_20220227-GAME2-ReynorvsSerral-ZvsZ-BerlingradLE_p2-Serral_Victory.npz",
    ]
    assert not (tmp_path / "root" / "data" / "buffer").exists() or not any(
        (tmp_path / "root" / "data" / "buffer").iterdir()
    )
    check = bgtrain_cli("check", *files, "--obs-dim", "15", "--n-actions", "5", cwd=tmp_path)
    assert check.returncode == 0, check.stdout
    assert check.stdout.splitlines()[-1] == "4 OK, 0 bad"
    assert "45 steps, obs_dim 15" in check.stdout and "Victory" in check.stdout


def test_one_players_side_only(tmp_path):
    result = bgtrain_cli(
        "sc2", "replays", GAME1, GAME2, "--player", "serral", "--root", tmp_path, cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "data" / "demonstrations").glob("*.npz"))
    assert [load_episode(f).meta["player"] for f in files] == ["Serral", "Serral"]
    assert all(load_episode(f).outcome == "Victory" for f in files)


def _bad_replays(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    garbage = folder / "garbage.SC2Replay"
    garbage.write_bytes(b"not a replay at all" * 100)
    cut = folder / "cut.SC2Replay"
    cut.write_bytes(GAME1.read_bytes()[:1000])
    return garbage, cut


def test_a_bad_replay_is_copied_into_quarantine_with_its_reason(tmp_path):
    garbage, cut = _bad_replays(tmp_path / "mine")
    before = {p: p.read_bytes() for p in (garbage, cut)}

    result = bgtrain_cli("sc2", "replays", tmp_path / "mine", "--root", tmp_path, cwd=tmp_path)

    assert result.returncode == 1  # nothing could be converted
    assert result.stdout.startswith("2 replays: 0 episodes in ")
    assert "2 quarantined" in result.stdout
    # The user's files are where they were, unchanged; quarantine/ holds copies.
    assert {p: p.read_bytes() for p in (garbage, cut)} == before
    quarantine = tmp_path / "data" / "quarantine"
    assert (quarantine / "garbage.SC2Replay").read_bytes() == before[garbage]
    reason = json.loads((quarantine / "garbage.SC2Replay.reason.json").read_text())
    import sc2reader

    assert reason["reason"] == (
        f"not a replay sc2reader {sc2reader.__version__} can parse (MPQError: Unable to "
        "construct the MPQArchive: Invalid file header.)"
    )
    assert reason["from"] == str(garbage.resolve())
    assert reason["copied"] is True
    cut_reason = json.loads((quarantine / "cut.SC2Replay.reason.json").read_text())
    assert cut_reason["reason"].startswith(f"not a replay sc2reader {sc2reader.__version__}")


def test_a_replay_quarantined_twice_keeps_one_copy(tmp_path):
    garbage, _ = _bad_replays(tmp_path / "mine")
    convert_replays([garbage], tmp_path)
    convert_replays([garbage], tmp_path)

    assert sorted(p.name for p in (tmp_path / "data" / "quarantine").iterdir()) == [
        "garbage.SC2Replay",
        "garbage.SC2Replay.reason.json",
    ]


def test_an_unknown_unit_type_is_a_reason_naming_it():
    from bgtrain.integrations.sc2.replays import _World

    class Event:
        unit = None

    with pytest.raises(ReplayError) as caught:
        _World(build=None).kind_of(Event(), "NewUnitOfPatch99")
    import sc2reader

    assert caught.value.reason == (
        f"unit type 'NewUnitOfPatch99' not found in sc2reader {sc2reader.__version__}'s "
        "data for this game build: update it (pip install -U sc2reader)"
    )


def test_a_folder_of_forty_replays_shows_progress_and_finishes(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(19):
        for replay in (GAME1, GAME2):
            shutil.copyfile(replay, folder / f"{i:02d}-{replay.name}")
    _bad_replays(folder / "bad")

    started = time.perf_counter()
    result = bgtrain_cli("sc2", "replays", folder, "--root", tmp_path / "root", cwd=tmp_path)
    seconds = time.perf_counter() - started

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("40 replays: 76 episodes in ")
    assert "2 quarantined" in result.stdout
    assert "replays: 40/40" in result.stderr  # the progress line (stderr, not a terminal)
    assert len(list((tmp_path / "root" / "data" / "demonstrations").glob("*.npz"))) == 76
    print(f"40 replays converted in {seconds:.1f} s (the whole command)")


def test_the_replays_command_never_imports_torch(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None\n"  # import torch now fails
        "from bgtrain.cli import main\n"
        f"code = main(['sc2', 'replays', {str(GAME1)!r}, '--root', {str(tmp_path)!r}])\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "data" / "demonstrations").glob("*.npz"))) == 2


def test_an_episode_without_a_source_is_an_own_game():
    own = build_episode(np.zeros((2, 3)), [0, 1], [0.0, 1.0], meta={"outcome": "Victory"})
    demo = build_episode(np.zeros((2, 3)), [0, 1], [0.0, 1.0], meta={"source": "demonstration"})

    assert (own.source, own.is_demonstration) == (None, False)
    assert (demo.source, demo.is_demonstration) == ("demonstration", True)
