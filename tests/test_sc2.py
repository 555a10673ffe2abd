"""StarCraft II on real recorded game states, without the game: a real burnysc2 ``BotAI``
is put into the first step of a real game on each of the 8 ladder maps (tests/data/sc2,
see its README), then ``sc2_state``, the shaped rewards, the saved episodes (checked and
trained on by the real CLI), the model pick-up between games, the example Zerg bot's
five strategies, and ``bgtrain run --game sc2`` without the game are checked on it."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import lzma
import math
import multiprocessing
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

pytest.importorskip("sc2")  # the [sc2] extra (burnysc2)

from sc2.client import Client
from sc2.data import Race, Result
from sc2.game_data import GameData
from sc2.game_info import GameInfo
from sc2.game_state import GameState
from sc2.ids.ability_id import AbilityId
from sc2.ids.unit_typeid import UnitTypeId
from sc2.position import Point2

from bgtrain import ModelStore, TrainingRoot, load_episode
from bgtrain.game.policy import Policy
from bgtrain.integrations.sc2 import (
    STATE_FIELDS,
    GameNotStartedError,
    LearningBot,
    RewardSettings,
    Strategy,
    sc2_state,
)
from bgtrain.integrations.sc2.game import LADDER_MAPS, load_bot_class
from bgtrain.integrations.sc2.settings import DEFAULT_BOT
from bgtrain.store.episode import Episode

from .helpers import bgtrain_cli, cli_env

REPO = Path(__file__).resolve().parent.parent
#: The recorded states ship with the tests (MIT, from burnysc2; see its README).
SC2_DATA = REPO / "tests" / "data" / "sc2"
MAPS = (
    "2000AtmospheresAIE",
    "AbyssalReefLE",
    "AcropolisLE",
    "BelShirVestigeLE",
    "BerlingradAIE",
    "CactusValleyLE",
    "HonorgroundsLE",
    "ProximaStationLE",
)
LOOPS_PER_SECOND = 22.4
TOWN_HALLS = {UnitTypeId.COMMANDCENTER.value, UnitTypeId.HATCHERY.value}
WORKERS = {UnitTypeId.SCV.value, UnitTypeId.DRONE.value}
#: Units added to a recorded state that are copied from its town hall, not from a worker.
STRUCTURES = frozenset({UnitTypeId.COMMANDCENTER, UnitTypeId.HATCHERY, UnitTypeId.SPAWNINGPOOL})
CLI_TIMEOUT_S = 120


# --------------------------------------------------------------------------- real game states


class Recorded(NamedTuple):
    """The three protobuf messages of a game's first step, as the game sent them."""

    game_data: Any  # sc2api_pb2.Response (data)
    game_info: Any  # sc2api_pb2.Response (game_info)
    observation: Any  # sc2api_pb2.ResponseObservation


def recorded_checksums() -> dict[str, str]:
    """``observations/NAME.xz`` -> sha256, from the repository's ``SHA256SUMS``."""
    lines = (SC2_DATA / "SHA256SUMS").read_text("utf-8").splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def load_recorded(map_name: str) -> Recorded:
    name = f"observations/{map_name}.xz"
    path = SC2_DATA / name
    if not path.is_file():
        pytest.fail(f"no recorded game state at {path}")
    data = path.read_bytes()
    # A pickle runs code as it loads: unpickle only the very files shipped with the tests.
    if hashlib.sha256(data).hexdigest() != recorded_checksums().get(name):
        pytest.fail(f"{path} is not the recorded state listed in {SC2_DATA / 'SHA256SUMS'}")
    return Recorded(*pickle.loads(lzma.decompress(data)))


def copy_message(message: Any) -> Any:
    twin = type(message)()
    twin.CopyFrom(message)
    return twin


class OfflineClient(Client):
    """Answers the two questions burnysc2's ``build``/``expand_now`` ask the game, from the
    recorded map: can a building stand here (its footprint on the placement grid, clear of
    buildings and resources; creep is not checked, the recordings start as Terran) and how
    far is it (straight line). Anything else would reach for the missing game and fail."""

    def __init__(self, bot: LearningBot) -> None:
        super().__init__(True)
        self.bot = bot

    async def _query_building_placement_fast(
        self, ability: AbilityId, positions: list, ignore_resources: bool = True
    ) -> list[bool]:
        r = self.bot.game_data.abilities[ability.value]._proto.footprint_radius
        blockers = (
            self.bot.structures
            | self.bot.enemy_structures
            | self.bot.mineral_field
            | self.bot.vespene_geyser
        )
        answers = []
        for p in positions:
            cells = [
                (x, y)
                for x in range(round(p.x - r), round(p.x + r))
                for y in range(round(p.y - r), round(p.y + r))
            ]
            on_ground = all(self.bot.game_info.placement_grid[cell] for cell in cells)
            clear = not any(
                abs(p.x - u.position.x) < r + (u.footprint_radius or u.radius)
                and abs(p.y - u.position.y) < r + (u.footprint_radius or u.radius)
                for u in blockers
            )
            answers.append(on_ground and clear)
        return answers

    async def query_pathing(self, start: Any, end: Point2) -> float | None:
        return start.position.distance_to(end)


def put_in_state(
    bot: LearningBot,
    recorded: Recorded,
    observation: Any = None,
    game_info: Any = None,
    *,
    first_step: bool = False,
) -> LearningBot:
    """Put ``bot`` into the recorded game's state, as burnysc2's game loop would."""
    game_info = game_info or recorded.game_info
    bot._initialize_variables()
    bot._prepare_start(
        client=OfflineClient(bot) if first_step else Client(True),
        player_id=1,
        game_info=GameInfo(game_info.game_info),
        game_data=GameData(recorded.game_data.data),
    )
    bot._prepare_step(
        state=GameState(observation or recorded.observation), proto_game_info=game_info
    )
    if first_step:
        bot._prepare_first_step()  # start location, expansions and ramps, as before on_start
    else:
        bot._find_expansion_locations()
    return bot


def changed(
    observation: Any,
    *,
    seconds: float | None = None,
    minerals: int | None = None,
    vespene: int | None = None,
    food_used: int | None = None,
    food_cap: int | None = None,
    add: Iterable[tuple[UnitTypeId, Point2]] = (),
) -> Any:
    """A copy of a recorded observation with other numbers, and more units of our own."""
    obs = copy_message(observation)
    common = obs.observation.player_common
    if seconds is not None:
        obs.observation.game_loop = round(seconds * LOOPS_PER_SECOND)
    for name, value in (
        ("minerals", minerals),
        ("vespene", vespene),
        ("food_used", food_used),
        ("food_cap", food_cap),
    ):
        if value is not None:
            setattr(common, name, value)
    units = obs.observation.raw_data.units
    structure = next(u for u in units if u.unit_type in TOWN_HALLS)
    unit = next(u for u in units if u.unit_type in WORKERS)
    tag = max(u.tag for u in units)
    for type_id, position in add:
        tag += 1
        new = units.add()
        new.CopyFrom(structure if type_id in STRUCTURES else unit)
        new.unit_type, new.tag = type_id.value, tag
        new.pos.x, new.pos.y = position
        new.ClearField("orders")
        new.assigned_harvesters = new.ideal_harvesters = 0
        new.energy = 50 if type_id == UnitTypeId.QUEEN else 0
    return obs


def zerg_start(recorded: Recorded, **changes: Any) -> tuple[Any, Any]:
    """The recorded start as a Zerg player starts: the command center a hatchery, the 12
    SCVs drones (mining as they were), 3 larvae and an overlord, supply 12/14."""
    game_info = copy_message(recorded.game_info)
    game_info.game_info.player_info[0].race_actual = Race.Zerg.value
    obs = copy_message(recorded.observation)
    for u in obs.observation.raw_data.units:
        if u.alliance == 1:
            zerg = UnitTypeId.HATCHERY if u.unit_type in TOWN_HALLS else UnitTypeId.DRONE
            u.unit_type = zerg.value
    hatchery = next(u for u in obs.observation.raw_data.units if u.unit_type in TOWN_HALLS)
    x, y = hatchery.pos.x, hatchery.pos.y
    start_units = [(UnitTypeId.LARVA, Point2((x - 1 + i, y - 3))) for i in range(3)]
    start_units.append((UnitTypeId.OVERLORD, Point2((x, y + 4))))
    add = [*start_units, *changes.pop("add", ())]
    changes.setdefault("food_cap", 14)  # a hatchery's 6 and an overlord's 8
    return changed(obs, add=add, **changes), game_info


@pytest.fixture(scope="module")
def zerg_bot_class() -> type[LearningBot]:
    return load_bot_class(f"{REPO}/examples/sc2_zerg_bot.py:ZergBot")


def zerg_bot(cls: type[LearningBot], root: Path, recorded: Recorded, **changes: Any):
    observation, game_info = zerg_start(recorded, **changes)
    return put_in_state(cls(root), recorded, observation, game_info, first_step=True)


# --------------------------------------------------------------------------- sc2_state


def test_every_map_that_bgtrain_run_picks_has_a_recorded_state() -> None:
    assert sorted(MAPS) == sorted(LADDER_MAPS)
    assert all((SC2_DATA / "observations" / f"{name}.xz").is_file() for name in MAPS)


def test_the_recorded_states_ship_with_the_tests_with_their_licence() -> None:
    shipped = sorted(p.name for p in (SC2_DATA / "observations").iterdir())
    assert shipped == sorted(f"{name}.xz" for name in MAPS)
    observations = [key for key in recorded_checksums() if key.startswith("observations/")]
    assert sorted(observations) == [f"observations/{name}" for name in shipped]
    licence = (SC2_DATA / "LICENSE-python-sc2.txt").read_text("utf-8")
    assert licence.startswith("MIT License") and "Hannes Karppila" in licence
    size = sum(p.stat().st_size for p in (SC2_DATA / "observations").iterdir())
    assert size < 512 * 1024  # small test data: 447,628 bytes


def test_state_fields_are_the_documented_fifteen_in_order() -> None:
    assert [name for name, _ in STATE_FIELDS] == [
        "minerals",
        "vespene",
        "supply_used",
        "supply_cap",
        "workers",
        "own_army_units",
        "visible_enemy_units",
        "townhalls",
        "game_time_s",
        "known_enemy_townhalls",
        "finished_upgrades",
        "larva",
        "map_control",
        "own_army_hp",
        "visible_enemy_army_hp",
    ]


@pytest.mark.parametrize("map_name", MAPS)
def test_sc2_state_holds_the_real_values_of_the_game_start(map_name: str, tmp_path: Path) -> None:
    recorded = load_recorded(map_name)
    bot = put_in_state(LearningBot(tmp_path / "root"), recorded)
    assert re.sub(r"[^A-Za-z0-9]", "", bot.game_info.map_name).startswith(map_name)

    state = sc2_state(bot)

    assert state.dtype == np.float32 and state.shape == (15,)
    assert np.isfinite(state).all()
    values = dict(zip([name for name, _ in STATE_FIELDS], state.tolist(), strict=True))
    assert 0.0 < values.pop("map_control") <= 1.0  # our units stand on our side of the map
    expected = {
        "minerals": 50 / 2000,
        "vespene": 0.0,
        "supply_used": 12 / 200,
        "supply_cap": 15 / 200,
        "workers": 12 / 100,
        "own_army_units": 0.0,
        "visible_enemy_units": 0.0,
        "townhalls": 1 / 10,
        "game_time_s": 0.0,
        "known_enemy_townhalls": 0.0,
        "finished_upgrades": 0.0,
        "larva": 0.0,  # a Terran start
        "own_army_hp": 0.0,
        "visible_enemy_army_hp": 0.0,
    }
    assert values == pytest.approx(expected, abs=1e-7)
    assert not (tmp_path / "root").exists()  # building a bot writes nothing


# --------------------------------------------------------------------------- rewards, episodes


class ScriptedGame(NamedTuple):
    bot: LearningBot
    seen: list[np.ndarray]  # sc2_state at each decision
    chosen: list[int]  # the strategy chosen at each decision


def play_scripted_game(root: Path, recorded: Recorded) -> ScriptedGame:
    """Five decisions 4.5 game seconds apart on the real start of Abyssal Reef, with
    between them: a base gained, a supply block, 20 marines made, marines and base lost."""
    bot = put_in_state(LearningBot(root), recorded)
    natural = min(
        (p for p in bot.expansion_locations_list if p.distance_to(bot.townhalls.first) > 10),
        key=lambda p: p.distance_to(bot.townhalls.first),
    )
    hall = (UnitTypeId.COMMANDCENTER, natural)
    marines = [(UnitTypeId.MARINE, natural.towards(bot.game_info.map_center, 3))] * 20
    start = recorded.observation
    script = [
        changed(start),
        changed(start, seconds=4.5, add=[hall]),  # +0.3: a base gained
        changed(start, seconds=9.0, add=[hall], food_used=15),  # -0.1: 15/15, blocked
        changed(start, seconds=13.5, add=[hall, *marines], food_used=32, food_cap=38),
        changed(start, seconds=18.0, minerals=400),  # -0.5 (army -20 x 0.05) -0.3 (base)
    ]
    asyncio.run(bot.on_start())
    seen, chosen = [], []
    for iteration, observation in enumerate(script):
        bot._prepare_step(GameState(observation), recorded.game_info)
        seen.append(sc2_state(bot))
        asyncio.run(bot.on_step(iteration))
        chosen.append(int(bot.strategy))
    return ScriptedGame(bot, seen, chosen)


def only_episode(folder: Path) -> tuple[Path, Episode]:
    files = sorted(folder.glob("*.npz"))
    assert len(files) == 1, files
    return files[0], load_episode(files[0], obs_dim=15, n_actions=5)


def test_decisions_record_what_the_bot_saw_chose_and_earned(tmp_path: Path) -> None:
    root = TrainingRoot(tmp_path / "root")
    game = play_scripted_game(root.path, load_recorded("AbyssalReefLE"))

    asyncio.run(game.bot.on_end(Result.Victory))

    path, ep = only_episode(root.buffer)
    assert path.name.startswith("game_") and path.name.endswith("_Victory.npz")
    np.testing.assert_array_equal(ep.states, np.stack(game.seen))
    assert ep.states[1][7] == pytest.approx(0.2)  # two town halls
    assert ep.states[3][5] == pytest.approx(0.2)  # 20 army units
    assert ep.states[4][8] == pytest.approx(18.0 / 1000, abs=1e-4)  # game time
    assert ep.actions.tolist() == game.chosen
    # The reward after each decision: base +0.3, blocked -0.1, army +1.0 clipped to +0.5,
    # army -1.0 clipped to -0.5 and a base lost -0.3, and the victory's +10 on the last.
    np.testing.assert_allclose(ep.rewards, [0.3, -0.1, 0.5, -0.8, 10.0], atol=1e-6)
    np.testing.assert_allclose(ep.logp, np.full(5, math.log(1 / 5)), rtol=1e-6)  # no model yet
    assert ep.terminated and ep.last_state is None and ep.policy_version is None
    assert ep.meta["outcome"] == "Victory"
    assert ep.meta["env"] == "sc2" and ep.meta["n_actions"] == 5


def test_reward_settings_change_the_shaping(tmp_path: Path) -> None:
    recorded = load_recorded("AbyssalReefLE")
    rewards = RewardSettings(base=1.0, supply_blocked=-2.0, army_clip=0.25, defeat=-7.0)
    bot = put_in_state(LearningBot(tmp_path / "root", rewards=rewards), recorded)
    asyncio.run(bot.on_start())
    bot.decide()
    blocked_with_a_base = changed(
        recorded.observation,
        add=[(UnitTypeId.COMMANDCENTER, Point2((20, 20)))]
        + [(UnitTypeId.MARINE, Point2((21, 21)))] * 10,
        food_used=15,
    )
    bot._prepare_step(GameState(blocked_with_a_base), recorded.game_info)
    bot.decide()

    asyncio.run(bot.on_end(Result.Defeat))

    _, ep = only_episode(TrainingRoot(tmp_path / "root").buffer)
    # A base +1, army +0.5 clipped to 0.25, blocked -2; at the end defeat -7 (no blocked
    # term there: burnysc2 ends the game before the next observation).
    np.testing.assert_allclose(ep.rewards, [1.0 + 0.25 - 2.0, -7.0], atol=1e-6)


def test_army_supply_reward_counts_each_zerg_unit_at_its_own_supply(tmp_path: Path) -> None:
    recorded = load_recorded("AbyssalReefLE")
    bot = put_in_state(LearningBot(tmp_path / "root"), recorded)
    asyncio.run(bot.on_start())
    bot.decide()
    rewards = []
    for army in (
        [UnitTypeId.ZERGLING] * 10,  # 5 supply: +0.25
        [UnitTypeId.ZERGLING] * 6 + [UnitTypeId.BANELING] * 4,  # banelings, 5 supply: 0
        [UnitTypeId.ZERGLING] * 6 + [UnitTypeId.ROACH] * 2,  # 7 supply: +0.1
        [UnitTypeId.ZERGLING] * 6 + [UnitTypeId.RAVAGER] * 2,  # roaches morphed, 9: +0.1
    ):
        near_home = bot.townhalls.first.position.offset((3, 3))
        observation = changed(recorded.observation, add=[(t, near_home) for t in army])
        bot._prepare_step(GameState(observation), recorded.game_info)
        rewards.append(bot.shaped_reward())

    assert rewards == pytest.approx([0.25, 0.0, 0.1, 0.1])


def test_victory_and_defeat_are_saved_checked_and_trained_on(tmp_path: Path) -> None:
    root = TrainingRoot(tmp_path / "root")
    recorded = load_recorded("AbyssalReefLE")
    asyncio.run(play_scripted_game(root.path, recorded).bot.on_end(Result.Victory))
    asyncio.run(play_scripted_game(root.path, recorded).bot.on_end(Result.Defeat))
    files = sorted(root.buffer.glob("*.npz"))
    defeat = next(p for p in files if p.name.endswith("_Defeat.npz"))
    ep = load_episode(defeat, obs_dim=15, n_actions=5)
    assert ep.meta["outcome"] == "Defeat"
    assert ep.rewards[-1] == pytest.approx(-5.0)  # the same last state: the defeat alone
    assert ep.rewards[:-1].tolist() == pytest.approx([0.3, -0.1, 0.5, -0.8])

    checked = bgtrain_cli("check", *files, "--obs-dim", "15", "--n-actions", "5", cwd=tmp_path)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 OK, 0 bad" in checked.stdout
    assert "Victory" in checked.stdout and "Defeat" in checked.stdout

    learned = bgtrain_cli(
        "learn", "--root", root.path, "--exit-when-idle", "--n-epochs", "2", cwd=tmp_path
    )

    assert learned.returncode == 0, learned.stdout + learned.stderr
    model = ModelStore(root).load()
    assert (model.meta.version, model.meta.obs_dim, model.meta.n_actions) == (1, 15, 5)
    assert sorted(model.meta.batch) == sorted(p.name for p in files)
    assert not list(root.buffer.glob("*.npz"))
    assert sorted(p.name for p in root.archive.rglob("*.npz")) == sorted(p.name for p in files)


def test_a_crashed_game_is_saved_as_cut_short_once(tmp_path: Path) -> None:
    root = TrainingRoot(tmp_path / "root")
    recorded = load_recorded("AbyssalReefLE")
    bot = put_in_state(LearningBot(root), recorded)
    asyncio.run(bot.on_start())
    asyncio.run(bot.on_step(0))
    later = changed(recorded.observation, seconds=5.0, minerals=235)
    bot._prepare_step(GameState(later), recorded.game_info)
    asyncio.run(bot.on_step(1))

    bot.abandon_game("the game crashed")
    asyncio.run(bot.on_end(Result.Defeat))  # burnysc2 may still report a result: ignored
    bot.abandon_game("the game was left before its end")  # run_sc2's finally: ignored

    path, ep = only_episode(root.buffer)
    assert ep.length == 2 and not ep.terminated
    np.testing.assert_array_equal(ep.last_state, sc2_state(bot))  # to bootstrap from
    assert ep.last_state[0] == pytest.approx(235 / 2000)
    assert ep.rewards.tolist() == [0.0, 0.0]  # nothing happened, and no end reward
    assert ep.meta["reason"] == "the game crashed"
    assert "Victory" not in path.name and "Defeat" not in path.name


def test_a_game_that_failed_before_its_first_step_saves_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = LearningBot(tmp_path / "root")  # run_game failed: no game state ever arrived

    with caplog.at_level(logging.INFO):
        assert bot.abandon_game("the game failed: no map") is None
    assert not list(tmp_path.rglob("*.npz"))
    # Nothing to save, and nothing said (a user saw two lines about a game never played).
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


# --------------------------------------------------------------------------- one bot, many games


def play_game(
    bot: LearningBot,
    recorded: Recorded,
    steps: Iterable[tuple[float, int]],
    result: Result | None,
) -> None:
    """One game as burnysc2 7 plays it on a bot object (``_play_game_ai``): the bot's
    variables reset and its first step prepared, ``on_start``, then each step (game
    seconds, minerals) and ``on_step``, then ``on_end`` (``None``: the game never ended,
    as when ``run_game`` raised)."""
    put_in_state(bot, recorded, first_step=True)
    asyncio.run(bot.on_start())
    for iteration, (seconds, minerals) in enumerate(steps):
        observation = changed(recorded.observation, seconds=seconds, minerals=minerals)
        bot._prepare_step(GameState(observation), recorded.game_info)
        asyncio.run(bot.on_step(iteration))
    if result is not None:
        asyncio.run(bot.on_end(result))


def episodes_by_outcome(root: TrainingRoot) -> dict[str, Episode]:
    files = sorted(root.buffer.glob("*.npz"))
    episodes = [load_episode(p, obs_dim=15, n_actions=5) for p in files]
    by_outcome = {
        ep.meta["outcome"] + ("" if ep.terminated else " cut short"): ep for ep in episodes
    }
    assert len(by_outcome) == len(files), [p.name for p in files]
    return by_outcome


def test_a_bot_object_that_plays_a_second_game_saves_it_as_its_own_episode(
    tmp_path: Path,
) -> None:
    root = TrainingRoot(tmp_path / "root")
    bot = LearningBot(root)  # reused, as burnysc2's series and run_multiple_games do
    play_game(
        bot, load_recorded("AbyssalReefLE"), [(0.0, 50), (4.5, 100), (9.0, 150)], Result.Victory
    )
    publish_model(root)  # picked up at the start of the next game
    play_game(bot, load_recorded("AcropolisLE"), [(0.0, 75), (2.0, 80), (4.5, 300)], Result.Defeat)

    games = episodes_by_outcome(root)

    assert sorted(games) == ["Defeat", "Victory"]
    first, second = games["Victory"], games["Defeat"]
    assert first.states[:, 0].tolist() == pytest.approx([50 / 2000, 100 / 2000, 150 / 2000])
    assert first.states[:, 8].tolist() == pytest.approx([0.0, 0.0045, 0.009], abs=1e-4)
    np.testing.assert_allclose(first.rewards, [0.0, 0.0, 10.0], atol=1e-6)
    assert first.policy_version is None
    # The second game's own decisions, from its own start: one every 4 game seconds.
    assert second.states[:, 0].tolist() == pytest.approx([75 / 2000, 300 / 2000])
    assert second.states[:, 8].tolist() == pytest.approx([0.0, 0.0045], abs=1e-4)
    np.testing.assert_allclose(second.rewards, [0.0, -5.0], atol=1e-6)
    assert second.terminated and second.policy_version == bot.policy_version == 1
    assert first.meta["actor"] == second.meta["actor"]  # one bot, one actor


def test_a_game_that_never_ended_is_saved_cut_short_when_the_bot_starts_another(
    tmp_path: Path,
) -> None:
    root = TrainingRoot(tmp_path / "root")
    bot = LearningBot(root)
    play_game(bot, load_recorded("AbyssalReefLE"), [(0.0, 50), (4.5, 120)], None)
    play_game(bot, load_recorded("AcropolisLE"), [(0.0, 75)], Result.Victory)

    games = episodes_by_outcome(root)

    assert sorted(games) == ["Tie cut short", "Victory"]
    unfinished = games["Tie cut short"]
    assert unfinished.states[:, 0].tolist() == pytest.approx([50 / 2000, 120 / 2000])
    # It bootstraps from its own last decision's state, not from the next game's start.
    np.testing.assert_array_equal(unfinished.last_state, unfinished.states[-1])
    assert unfinished.rewards.tolist() == [0.0, 0.0]
    assert unfinished.meta["reason"] == "a new game started on this bot before this one ended"
    assert games["Victory"].states[:, 0].tolist() == pytest.approx([75 / 2000])


class ForgetfulBot(LearningBot):
    async def on_start(self) -> None:  # does not call super().on_start()
        pass


@pytest.mark.parametrize("first_result", [Result.Victory, None])
def test_a_second_game_that_skipped_learning_bots_on_start_is_refused_loudly(
    first_result: Result | None, tmp_path: Path
) -> None:
    root = TrainingRoot(tmp_path / "root")
    bot = ForgetfulBot(root)
    play_game(bot, load_recorded("AbyssalReefLE"), [(0.0, 50), (4.5, 100)], first_result)

    with pytest.raises(GameNotStartedError) as refused:
        play_game(bot, load_recorded("AcropolisLE"), [(0.0, 75)], Result.Victory)

    assert str(refused.value) == (
        "a new game began on this ForgetfulBot but LearningBot.on_start did not run for it, "
        "so its decisions would be lost or mixed into the last game: call "
        "`await super().on_start()` in ForgetfulBot.on_start"
    )
    # The first game is saved either way: ended, or cut short when the next one began.
    [(outcome, first)] = episodes_by_outcome(root).items()
    assert outcome == ("Victory" if first_result is not None else "Tie cut short")
    assert first.states[:, 0].tolist() == pytest.approx([50 / 2000, 100 / 2000])


# --------------------------------------------------------------------------- models


def publish_model(root: TrainingRoot, obs_dim: int = 15, n_actions: int = 5) -> int:
    from bgtrain.learn import algorithms

    trainer = algorithms.create(None, obs_dim, n_actions)
    return ModelStore(root).publish(trainer.export(), trainer.meta()).version


def play_one_decision(root: TrainingRoot, recorded: Recorded) -> tuple[LearningBot, Episode]:
    before = set(root.buffer.glob("*.npz"))
    bot = put_in_state(LearningBot(root), recorded)
    asyncio.run(bot.on_start())
    asyncio.run(bot.on_step(0))
    asyncio.run(bot.on_end(Result.Victory))
    [new] = set(root.buffer.glob("*.npz")) - before
    return bot, load_episode(new, obs_dim=15, n_actions=5)


def test_the_newest_model_is_picked_up_between_games(tmp_path: Path) -> None:
    root = TrainingRoot(tmp_path / "root")
    recorded = load_recorded("AbyssalReefLE")
    first = publish_model(root)

    bot, ep = play_one_decision(root, recorded)

    assert bot.policy_version == first == ep.policy_version == 1
    policy = Policy.from_model(ModelStore(root).load(first))
    expected_logp = policy.log_probs(ep.states)[np.arange(ep.length), ep.actions]
    np.testing.assert_allclose(ep.logp, expected_logp, rtol=1e-5, atol=1e-6)

    second = publish_model(root)
    bot, ep = play_one_decision(root, recorded)
    assert bot.policy_version == second == ep.policy_version == 2

    publish_model(root, obs_dim=4, n_actions=2)  # another game's model: not for this bot
    bot, ep = play_one_decision(root, recorded)
    assert bot.policy_version is None and ep.policy_version is None
    assert ep.logp.tolist() == pytest.approx([math.log(1 / 5)])


# --------------------------------------------------------------------------- the Zerg bot


def orders(bot: LearningBot) -> Counter[AbilityId]:
    """What the bot ordered this step: burnysc2 keeps the commands in ``bot.actions``
    until ``_after_step`` sends them to the game."""
    return Counter(action.ability for action in bot.actions)


def targets(bot: LearningBot, ability: AbilityId) -> list[Any]:
    return [action.target for action in bot.actions if action.ability == ability]


def test_the_default_bot_of_bgtrain_run_is_the_example(zerg_bot_class) -> None:
    assert load_bot_class(DEFAULT_BOT).__name__ == zerg_bot_class.__name__ == "ZergBot"
    assert zerg_bot_class.play is not LearningBot.play


@pytest.mark.parametrize("map_name", MAPS)
def test_zerg_strategies_open_the_game_differently(
    map_name: str, tmp_path: Path, zerg_bot_class
) -> None:
    recorded = load_recorded(map_name)
    ordered: dict[Strategy, Counter[AbilityId]] = {}
    bots = {}
    for strategy in Strategy:
        bot = zerg_bot(zerg_bot_class, tmp_path / "root", recorded, minerals=1000)
        assert (bot.supply_left, bot.larva.amount, bot.workers.amount) == (2, 3, 12)
        asyncio.run(bot.play(strategy))
        ordered[strategy], bots[strategy] = orders(bot), bot

    assert len({frozenset(o.items()) for o in ordered.values()}) == 5, ordered
    start = bots[Strategy.ECONOMY].start_location
    for strategy, o in ordered.items():  # never more than the 2 free supply feeds
        assert o[AbilityId.LARVATRAIN_DRONE] <= 2, strategy
    eco, aggro = ordered[Strategy.ECONOMY], ordered[Strategy.AGGRESSIVE]
    defensive, tech = ordered[Strategy.DEFENSIVE], ordered[Strategy.TECH]
    all_in = ordered[Strategy.ALL_IN]
    # ECONOMY: drones, and a hatchery on the nearest free expansion.
    assert eco[AbilityId.LARVATRAIN_DRONE] == 2 and eco[AbilityId.ZERGBUILD_HATCHERY] == 1
    [spot] = targets(bots[Strategy.ECONOMY], AbilityId.ZERGBUILD_HATCHERY)
    expansions = bots[Strategy.ECONOMY].expansion_locations_list
    assert min(spot.distance_to(p) for p in expansions) < 1.5 and spot.distance_to(start) > 10
    assert not eco[AbilityId.ZERGBUILD_SPAWNINGPOOL]
    # AGGRESSIVE: the pool at once, a couple of drones to pay for the lings.
    assert aggro[AbilityId.ZERGBUILD_SPAWNINGPOOL] == 1 and aggro[AbilityId.LARVATRAIN_DRONE]
    assert not aggro[AbilityId.ZERGBUILD_HATCHERY] and not aggro[AbilityId.ZERGBUILD_EXTRACTOR]
    # DEFENSIVE: the pool (queens, spines) and an evolution chamber (carapace).
    assert defensive[AbilityId.ZERGBUILD_SPAWNINGPOOL] == 1
    assert defensive[AbilityId.ZERGBUILD_EVOLUTIONCHAMBER] == 1
    # TECH: both geysers of the main, and the pool that the lair needs.
    assert tech[AbilityId.ZERGBUILD_EXTRACTOR] == 2 and tech[AbilityId.ZERGBUILD_SPAWNINGPOOL] == 1
    geysers = targets(bots[Strategy.TECH], AbilityId.ZERGBUILD_EXTRACTOR)
    assert len({g.tag for g in geysers}) == 2 and all(g.distance_to(start) < 10 for g in geysers)
    # ALL_IN: the pool and not one more drone.
    assert all_in[AbilityId.ZERGBUILD_SPAWNINGPOOL] == 1 and not all_in[AbilityId.LARVATRAIN_DRONE]
    # Buildings stand on buildable ground, each in a place of its own.
    for strategy, bot in bots.items():
        spots = [
            a.target
            for a in bot.actions
            if a.ability.name.startswith("ZERGBUILD_") and isinstance(a.target, Point2)
        ]
        placeable = asyncio.run(
            bot.client._query_building_placement_fast(AbilityId.ZERGBUILD_SPAWNINGPOOL, spots)
        )
        assert all(placeable), (strategy, spots)
        assert len({p.rounded for p in spots}) == len(spots), (strategy, spots)


@pytest.mark.parametrize("map_name", MAPS)
def test_zerg_army_attacks_or_stays_home_by_strategy(
    map_name: str, tmp_path: Path, zerg_bot_class
) -> None:
    recorded = load_recorded(map_name)
    raw_units = recorded.observation.observation.raw_data.units
    hatchery = next(u for u in raw_units if u.unit_type in TOWN_HALLS)
    home = Point2((hatchery.pos.x, hatchery.pos.y))
    lings = [(UnitTypeId.ZERGLING, home.offset((i % 4 - 1.5, 3 + i // 4))) for i in range(16)]
    queen = (UnitTypeId.QUEEN, home.offset((-3, 0)))
    pool = (UnitTypeId.SPAWNINGPOOL, home.offset((0, -7)))
    ordered, bots = {}, {}
    for strategy in Strategy:
        bot = zerg_bot(
            zerg_bot_class,
            tmp_path / "root",
            recorded,
            minerals=1000,
            vespene=200,
            food_used=22,
            food_cap=30,
            add=[*lings, queen, pool],
        )
        asyncio.run(bot.play(strategy))
        ordered[strategy], bots[strategy] = orders(bot), bot

    enemy_start = bots[Strategy.ALL_IN].enemy_start_locations[0]
    for strategy, bot in bots.items():
        # Every strategy keeps the queen injecting the hatchery.
        [injected] = targets(bot, AbilityId.EFFECT_INJECTLARVA)
        assert injected.tag == bot.townhalls.first.tag, strategy
        ling_targets = [a.target for a in bot.actions if a.unit.type_id == UnitTypeId.ZERGLING]
        if strategy in (Strategy.AGGRESSIVE, Strategy.ALL_IN):  # 16 lings: a group is ready
            assert ling_targets == [enemy_start] * 16, strategy
            assert ordered[strategy][AbilityId.ATTACK] == 16
        else:  # the army stays home, at the rally point in front of the hatchery
            assert ling_targets, strategy
            assert all(t.distance_to(home) < 15 for t in ling_targets), strategy
    assert ordered[Strategy.ALL_IN][AbilityId.LARVATRAIN_ZERGLING] == 3
    assert not ordered[Strategy.ALL_IN][AbilityId.LARVATRAIN_DRONE]
    assert ordered[Strategy.AGGRESSIVE][AbilityId.LARVATRAIN_ZERGLING]
    assert ordered[Strategy.DEFENSIVE][AbilityId.TRAINQUEEN_QUEEN] == 1  # two per base
    assert ordered[Strategy.DEFENSIVE][AbilityId.ZERGBUILD_SPINECRAWLER] == 1
    assert ordered[Strategy.TECH][AbilityId.UPGRADETOLAIR_LAIR] == 1
    assert ordered[Strategy.TECH][AbilityId.ZERGBUILD_ROACHWARREN] == 1
    assert not ordered[Strategy.ECONOMY][AbilityId.LARVATRAIN_ZERGLING]

    few = zerg_bot(
        zerg_bot_class,
        tmp_path / "root",
        recorded,
        food_used=16,
        food_cap=30,
        add=[*lings[:4], pool],
    )
    asyncio.run(few.play(Strategy.AGGRESSIVE))
    assert few.army.amount == 4
    assert all(t.distance_to(home) < 15 for t in targets(few, AbilityId.ATTACK))  # too few


def test_zerg_bot_plays_a_game_through_the_burnysc2_hooks(tmp_path: Path, zerg_bot_class) -> None:
    root = TrainingRoot(tmp_path / "root")
    recorded = load_recorded("AbyssalReefLE")
    bot = zerg_bot(zerg_bot_class, root.path, recorded)
    asyncio.run(bot.on_start())
    for iteration, seconds in enumerate((0.0, 2.0, 4.5, 9.0, 20.5, 25.0)):
        observation, game_info = zerg_start(recorded, seconds=seconds, minerals=50 + 40 * iteration)
        bot._prepare_step(GameState(observation), game_info)
        asyncio.run(bot.on_step(iteration))
        bot.actions.clear()  # what _after_step does once it has sent them
        bot.unit_tags_received_action.clear()

    # burnysc2 calls on_end before it reads the last observation: the bot's own count of
    # the supply it just spent must not read as a supply block in the end reward.
    asyncio.run(bot.on_end(Result.Victory))

    _, ep = only_episode(root.buffer)
    # Decisions at 0 and 20.5 s: the model is asked every 4 game seconds, but the bot
    # holds the strategy it chose for 20 s (ZergBot.HOLD), and only a choice is recorded.
    assert ep.length == 2
    assert ep.states[:, 11].tolist() == pytest.approx([3 / 20] * 2)  # the larvae
    assert ep.rewards[-1] == pytest.approx(10.0)


# --------------------------------------------------------------------------- without the game


def test_run_sc2_without_the_game_says_what_to_do(tmp_path: Path) -> None:
    env = cli_env(SC2PATH=str(tmp_path / "no-game-here"))
    root = tmp_path / "root"

    result = bgtrain_cli(
        "run", "--game", "sc2", "--root", root, "--games", "1", cwd=tmp_path, env=env
    )

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: StarCraft II is not installed")
    assert "SC2PATH" in lines[0] and str(tmp_path / "no-game-here") in lines[0]
    assert "Traceback" not in result.stderr and "[OK]" not in result.stdout
    assert not root.exists()  # no learner, no game: nothing was started


def test_the_example_without_the_game_says_what_to_do(tmp_path: Path) -> None:
    env = {**os.environ, "SC2PATH": str(tmp_path / "no-game-here")}

    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "sc2_zerg_bot.py")],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env=env,
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert result.stderr.startswith("error: StarCraft II is not installed"), result.stderr
    assert "SC2PATH" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "local_training").exists()


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        (
            "difficulty",
            "Eazy",
            "must be one of VeryEasy, Easy, Medium, MediumHard, Hard, "
            "Harder, VeryHard, CheatVision, CheatMoney, CheatInsane (or none), got 'Eazy' "
            "(did you mean 'Easy'?)",
        ),
        (
            "race",
            "Zergg",
            "must be one of Random, Terran, Zerg, Protoss, got 'Zergg' (did you mean 'Zerg'?)",
        ),
        ("seed", -1, "must be from 0 to 4294967295 (or none), got -1"),
        ("games", 0, "must be at least 1 (or none), got 0"),
    ],
)
def test_sc2_run_settings_are_refused_before_the_game_starts(setting, value, message):
    """Before: taken silently, failing (or not) only once StarCraft II was running."""
    import sc2.data

    from bgtrain.errors import SettingsError
    from bgtrain.integrations.sc2.settings import ALL_DIFFICULTIES, Sc2RunConfig

    assert tuple(d.name for d in sc2.data.Difficulty) == ALL_DIFFICULTIES
    with pytest.raises(SettingsError) as refused:
        Sc2RunConfig(**{setting: value})
    assert str(refused.value) == f"setting '{setting}' {message}"


# --------------------------------------------------------------------------- the runner's wiring


class RecordedGames:
    """The games of ``run_sc2`` without StarCraft II: each puts the bot into a real
    recorded game state (of the map asked for), plays two decisions and ends it with a
    victory, as burnysc2 would; ``interrupt_in_game`` sends SIGINT to this process in
    the middle of that game, as a user's Ctrl+C."""

    def __init__(self, interrupt_in_game: int | None = None) -> None:
        self.interrupt_in_game = interrupt_in_game
        self.asked: list[tuple[str, str, str]] = []

    def check(self) -> None:
        """The game is "installed": these games need none."""

    def play(self, bot: LearningBot, map_name: str, race: str, difficulty: str) -> None:
        self.asked.append((map_name, race, difficulty))
        recorded = load_recorded(map_name)
        play_game(bot, recorded, [(0.0, 50)], result=None)
        if len(self.asked) == self.interrupt_in_game:
            signal.raise_signal(signal.SIGINT)  # the handler runs before this returns
        play_game_end(bot, recorded)


def play_game_end(bot: LearningBot, recorded: Recorded) -> None:
    later = changed(recorded.observation, seconds=5.0, minerals=60)
    bot._prepare_step(GameState(later), recorded.game_info)
    asyncio.run(bot.on_step(1))
    asyncio.run(bot.on_end(Result.Victory))


def sc2_config(root: Path, games: int) -> Any:
    from bgtrain.integrations.sc2.settings import Sc2RunConfig
    from bgtrain.learn.settings import LearnerSettings

    return Sc2RunConfig(
        root=root,
        bot="bgtrain.integrations.sc2.bot:LearningBot",
        games=games,
        map="AbyssalReefLE",
        difficulty="Easy",
        race="Terran",
        learner=LearnerSettings(n_epochs=1, verbose=False, seed=1),
    )


def assert_the_learner_let_go(root: TrainingRoot) -> None:
    from bgtrain import LearnerLock

    assert multiprocessing.active_children() == []  # the learner process is gone
    LearnerLock(root.path).acquire().release()


def test_run_sc2_plays_its_games_beside_the_learner_the_engine_started(tmp_path: Path) -> None:
    from bgtrain.integrations.sc2.game import run_sc2

    root = TrainingRoot(tmp_path / "root")
    games, lines = RecordedGames(), []

    assert run_sc2(sc2_config(root.path, games=2), lines.append, games=games) == 0

    assert games.asked == [("AbyssalReefLE", "Terran", "Easy")] * 2
    assert lines[:6] == [
        "[OK] Background parallel learner initialized and started",
        "[INFO] Experience replay training will run in background",
        f"[INFO] Monitoring directory: {root.buffer}",
        "[SELECTED] Map: AbyssalReefLE",
        "[SELECTED] Opponent Race: Terran",
        "[SELECTED] Difficulty: Easy",
    ]
    completed = [line for line in lines if line.startswith("[GAME #")]
    assert [line.split(" (")[0] for line in completed] == [
        "[GAME #1] COMPLETED",
        "[GAME #2] COMPLETED",
    ]
    saved = [p for p in root.data.rglob("*.npz") if not p.name.startswith(".")]
    assert len(saved) == 2 and all(p.name.endswith("_Victory.npz") for p in saved)
    assert_the_learner_let_go(root)


def test_the_first_interrupt_ends_the_game_as_cut_short_and_stops_run_sc2(
    tmp_path: Path,
) -> None:
    from bgtrain.integrations.sc2.game import run_sc2

    root = TrainingRoot(tmp_path / "root")
    games, lines = RecordedGames(interrupt_in_game=2), []
    before = signal.getsignal(signal.SIGINT)

    assert run_sc2(sc2_config(root.path, games=5), lines.append, games=games) == 0

    assert len(games.asked) == 2  # no third game
    assert "\n[STOP] Training stopped by user." in lines
    assert not any(line.startswith("[GAME #2]") for line in lines)
    saved = [p for p in root.data.rglob("*.npz") if not p.name.startswith(".")]
    episodes = [load_episode(p, obs_dim=15, n_actions=5) for p in saved]  # trained or not
    assert sorted((ep.meta["outcome"], ep.terminated) for ep in episodes) == [
        ("Tie", False),
        ("Victory", True),
    ]
    cut = next(ep for ep in episodes if not ep.terminated)
    assert cut.meta["reason"] == "stopped by the user" and cut.last_state is not None
    assert signal.getsignal(signal.SIGINT) is before  # the run's handler is gone
    assert_the_learner_let_go(root)


def test_run_sc2_says_why_its_learner_could_not_start_before_any_game(tmp_path: Path) -> None:
    from bgtrain import LearnerLock
    from bgtrain.errors import BgtrainError
    from bgtrain.integrations.sc2.game import run_sc2

    root = TrainingRoot(tmp_path / "root")
    games, lines = RecordedGames(), []
    with LearnerLock(root.path), pytest.raises(BgtrainError) as refused:
        run_sc2(sc2_config(root.path, games=1), lines.append, games=games)

    assert str(refused.value).startswith(f"another learner already holds {root.path} (pid ")
    assert games.asked == [] and lines == []
    assert multiprocessing.active_children() == []


def test_run_sc2_runs_on_another_engine_whose_learner_its_seed_seeds(tmp_path: Path) -> None:
    """The engine seam with a second engine (the real learner and game loop, in this
    process); before, ``Sc2RunConfig(seed=...)`` left the network unseeded, unlike the
    ``--seed`` flag whose help says it seeds the network too."""
    from bgtrain.integrations.sc2.game import run_sc2
    from bgtrain.learn.settings import LearnerSettings

    from .test_engine import ThreadEngine

    root = TrainingRoot(tmp_path / "root")
    config = dataclasses.replace(
        sc2_config(root.path, games=2), seed=7, learner=LearnerSettings(n_epochs=1, verbose=False)
    )
    engine, games, lines = ThreadEngine(), RecordedGames(), []
    before = set(threading.enumerate())

    assert run_sc2(config, lines.append, engine=engine, games=games) == 0

    assert [t.name for t in threading.enumerate() if t not in before] == []
    assert engine.learner_settings is not None and engine.learner_settings.seed == 7
    assert not engine.learner_alive()
    assert lines[2] == f"[INFO] Monitoring directory: {root.buffer}"
    completed = [line.split(" (")[0] for line in lines if line.startswith("[GAME #")]
    assert completed == ["[GAME #1] COMPLETED", "[GAME #2] COMPLETED"]
    saved = [p for p in root.data.rglob("*.npz") if not p.name.startswith(".")]
    assert len(saved) == 2 and all(p.name.endswith("_Victory.npz") for p in saved)
    assert_the_learner_let_go(root)  # and no process was started


def test_the_default_bot_ships_in_the_package_not_in_the_examples(tmp_path: Path) -> None:
    """It was found at ``parents[4]`` of game.py, the source checkout's examples/: a
    package installed from a wheel has none. Here the package alone, copied as a wheel
    installs it, resolves it."""
    site = tmp_path / "site-packages"
    shutil.copytree(
        REPO / "src" / "bgtrain", site / "bgtrain", ignore=shutil.ignore_patterns("__pycache__")
    )
    code = (
        "import inspect; from bgtrain.integrations.sc2.game import load_bot_class; "
        "from bgtrain.integrations.sc2.settings import DEFAULT_BOT; "
        "print(inspect.getfile(load_bot_class(DEFAULT_BOT)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        cwd=tmp_path,
        env=cli_env(PYTHONPATH=str(site)),
    )

    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == site / "bgtrain" / "integrations" / "sc2" / "zerg_bot.py"
