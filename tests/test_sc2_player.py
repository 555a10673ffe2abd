"""The example Zerg bot plays like a player: a chosen strategy is held, attacks go as a
group, supply is made ahead of need, queens inject and defend, every strategy but ALL_IN
expands; and ``map_control`` is computed on arrays. Checked on the recorded game states
(tests/data/sc2) and on mid- and late-game states built from them (bench/sc2_decision.py
builds the 200-unit late game the benchmark measures)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sc2")  # the [sc2] extra (burnysc2)

from bench.sc2_decision import ENEMY, add_units, late_game, set_fields
from sc2.data import Result
from sc2.game_state import GameState
from sc2.ids.ability_id import AbilityId
from sc2.ids.unit_typeid import UnitTypeId as U
from sc2.position import Point2

from bgtrain import TrainingRoot
from bgtrain.integrations.sc2 import Strategy
from bgtrain.integrations.sc2.state import map_control
from bgtrain.integrations.sc2.zerg_bot import (
    AGGRESSIVE_ATTACK,
    Hold,
    ZergBot,
    group_attacks,
    overlords_to_make,
    plan_released,
)

from .test_sc2 import (
    MAPS,
    load_recorded,
    only_episode,
    orders,
    put_in_state,
    targets,
    zerg_start,
)

# --------------------------------------------------------------------------- states


def zerg_bot(
    root: Path,
    recorded: Any,
    add: Iterable[tuple[U, Point2]] = (),
    enemies: Iterable[tuple[U, Point2]] = (),
    bot: ZergBot | None = None,
    **changes: Any,
) -> ZergBot:
    """A Zerg bot (new, or ``bot`` for its next step) in the recorded start with ``add``
    of ours and ``enemies`` of the enemy's added."""
    observation, game_info = zerg_start(recorded, add=list(add), **changes)
    observation, hostile = add_units(observation, enemies)
    set_fields(observation, hostile, alliance=ENEMY, owner=2)
    if bot is not None:
        bot._prepare_step(GameState(observation), game_info)
        bot.actions.clear()  # what _after_step does once it has sent them
        bot.unit_tags_received_action.clear()
        return bot
    return put_in_state(ZergBot(root), recorded, observation, game_info, first_step=True)


def late_bot(root: Path, recorded: Any, threats: int = 6) -> ZergBot:
    observation, game_info = late_game(recorded, threats=threats)
    return put_in_state(ZergBot(root), recorded, observation, game_info, first_step=True)


def spots(bot: ZergBot) -> tuple[Point2, Point2, Point2]:
    """The main hatchery, the rally point in front of it, the enemy's start."""
    return bot.townhalls.first.position, bot.rally_point(), bot.enemy_start_locations[0]


def natural_of(bot: ZergBot) -> Point2:
    """The expansion nearest to the main (not the main itself)."""
    home = bot.townhalls.first.position
    return min(
        (p for p in bot.expansion_locations_list if p.distance_to(home) > 10), key=home.distance_to
    )


def around(center: Point2, n: int, step: float = 0.8) -> list[Point2]:
    return [center.offset((step * (i % 4) - 1.2, step * (i // 4) - 1.2)) for i in range(n)]


def unit_targets(bot: ZergBot, unit_type: U) -> list[Any]:
    return [a.target for a in bot.actions if a.unit.type_id == unit_type]


def step(bot: ZergBot, strategy: Strategy) -> ZergBot:
    asyncio.run(bot.play(strategy))
    return bot


# --------------------------------------------------------------------------- held strategies


class ScriptedModel:
    """Proposes the given strategies in turn, one per question (as a policy's ``act``)."""

    def __init__(self, strategies: Iterable[Strategy]) -> None:
        self.proposals = iter(strategies)
        self.asked = 0

    def act(self, state: np.ndarray) -> tuple[int, float]:
        self.asked += 1
        return int(next(self.proposals)), math.log(1 / len(Strategy))


@pytest.mark.parametrize("map_name", ["AbyssalReefLE", "AcropolisLE"])
def test_a_chosen_strategy_is_held_for_20_game_seconds(map_name: str, tmp_path: Path) -> None:
    """Before: the model's choice every 4 s was played at once (ECONOMY, ALL_IN, ...)."""
    root = TrainingRoot(tmp_path / "root")
    recorded = load_recorded(map_name)
    bot = zerg_bot(root.path, recorded)
    asyncio.run(bot.on_start())
    model = ScriptedModel([Strategy.ECONOMY, Strategy.ALL_IN] * 10)
    bot._policy = model
    played = []
    for iteration, seconds in enumerate([0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44]):
        zerg_bot(root.path, recorded, bot=bot, seconds=seconds, minerals=50)
        asyncio.run(bot.on_step(iteration))
        played.append(bot.strategy)

    E, A = Strategy.ECONOMY, Strategy.ALL_IN
    assert played == [E] * 5 + [A] * 5 + [E] * 2  # a choice at 0, 20 and 40 s
    assert model.asked == 3
    asyncio.run(bot.on_end(Result.Victory))
    _, ep = only_episode(root.buffer)
    assert ep.actions.tolist() == [0, 4, 0]  # what was played, as it was played


@pytest.mark.parametrize(
    ("held_for", "goal_met", "attacking", "released"),
    [
        (4.0, False, False, False),  # the minimum time
        (19.9, False, True, False),
        (20.0, False, False, True),
        (4.0, True, False, True),  # its goal met: nothing left for it to do
        (40.0, False, True, False),  # its attack under way
        (90.0, False, True, True),  # ... for at most 90 s
    ],
)
def test_when_a_held_strategy_is_released(held_for, goal_met, attacking, released) -> None:
    """Before: no hold at all (the decision did not exist: ImportError)."""
    assert plan_released(held_for, goal_met, attacking, Hold()) is released


def test_tech_is_released_once_its_buildings_and_upgrades_are_under_way(tmp_path: Path) -> None:
    """Late game: TECH's buildings stand; it is held until its upgrades are under way."""
    recorded = load_recorded("AbyssalReefLE")
    bot = late_bot(tmp_path / "root", recorded)
    bot.strategy, bot.plan_since = Strategy.TECH, bot.time
    assert not bot.goal_met(Strategy.TECH) and not bot.plan_is_released()
    researched = orders(step(bot, Strategy.TECH))
    assert researched[AbilityId.RESEARCH_GLIALREGENERATION] == 1
    assert researched[AbilityId.RESEARCH_ZERGMISSILEWEAPONSLEVEL1] == 1
    assert researched[AbilityId.RESEARCH_GROOVEDSPINES] == 1

    observation, game_info = late_game(recorded)
    research = {
        U.ROACHWARREN.value: AbilityId.RESEARCH_GLIALREGENERATION,
        U.EVOLUTIONCHAMBER.value: AbilityId.RESEARCH_ZERGMISSILEWEAPONSLEVEL1,
        U.HYDRALISKDEN.value: AbilityId.RESEARCH_GROOVEDSPINES,
    }
    for unit in observation.observation.raw_data.units:
        if unit.alliance == 1 and unit.unit_type in research:
            unit.orders.add(ability_id=research[unit.unit_type].value, progress=0.5)
    bot._prepare_step(GameState(observation), game_info)
    assert bot.goal_met(Strategy.TECH) and bot.plan_is_released()  # after 0 s


# --------------------------------------------------------------------------- attacks


def test_group_attacks_with_hysteresis() -> None:
    """Before: AGGRESSIVE attacked at 12 units and came home at 11 (ImportError here)."""
    rule = AGGRESSIVE_ATTACK
    assert [group_attacks(False, 0, n, rule) for n in (12, 15, 16)] == [False, False, True]
    assert [group_attacks(True, n, 0, rule) for n in (15, 8, 7)] == [True, True, False]


@pytest.mark.parametrize("map_name", MAPS)
def test_aggressive_leaves_at_16_stays_out_at_10_and_comes_home_below_8(
    map_name: str, tmp_path: Path
) -> None:
    """Before: 10 lings out (fewer than 12) were called back; 12 scattered lings left."""
    recorded = load_recorded(map_name)
    root = tmp_path / "root"
    home, rally, enemy = spots(zerg_bot(root, recorded))
    pool = (U.SPAWNINGPOOL, home.offset((0, -7)))
    scattered = [(U.ZERGLING, rally.towards(enemy, 3 * i)) for i in range(12)]
    bot = step(zerg_bot(root, recorded, [pool, *scattered], food_used=18), Strategy.AGGRESSIVE)
    assert enemy not in unit_targets(bot, U.ZERGLING)  # 12 strung out: they gather first

    lings = [(U.ZERGLING, p) for p in around(rally, 16)]
    bot = step(zerg_bot(root, recorded, [pool, *lings], food_used=20), Strategy.AGGRESSIVE)
    assert unit_targets(bot, U.ZERGLING) == [enemy] * 16

    halfway = [(U.ZERGLING, p) for p in around(rally.towards(enemy, 30), 10)]
    zerg_bot(root, recorded, [pool, *halfway], bot=bot, food_used=17)
    assert unit_targets(step(bot, Strategy.AGGRESSIVE), U.ZERGLING) == [enemy] * 10

    zerg_bot(root, recorded, [pool, *halfway[:7]], bot=bot, food_used=15)
    back = [a for a in step(bot, Strategy.AGGRESSIVE).actions if a.unit.type_id == U.ZERGLING]
    assert [(a.ability, a.target) for a in back] == [(AbilityId.MOVE_MOVE, rally)] * 7
    assert bot.attacks_ended == 1 and bot.goal_met(Strategy.AGGRESSIVE)


def test_all_in_sends_new_units_in_packs_not_one_at_a_time(tmp_path: Path) -> None:
    """Before: each new ling ran to the enemy alone as soon as it hatched."""
    recorded = load_recorded("AbyssalReefLE")
    root = tmp_path / "root"
    _, rally, enemy = spots(zerg_bot(root, recorded))
    out = [(U.ZERGLING, p) for p in around(rally, 8)]
    bot = step(zerg_bot(root, recorded, out, food_used=16), Strategy.ALL_IN)
    assert unit_targets(bot, U.ZERGLING) == [enemy] * 8

    far = [(U.ZERGLING, p) for p in around(rally.towards(enemy, 40), 8)]
    one_new = (U.ZERGLING, rally)
    zerg_bot(root, recorded, [*far, one_new], bot=bot, food_used=17)
    ordered = unit_targets(step(bot, Strategy.ALL_IN), U.ZERGLING)
    assert ordered[:8] == [enemy] * 8 and ordered[8:] in ([], [rally])  # it waits at home

    pack = [(U.ZERGLING, p) for p in around(rally, 4)]
    zerg_bot(root, recorded, [*far, *pack], bot=bot, food_used=18)
    ordered = unit_targets(step(bot, Strategy.ALL_IN), U.ZERGLING)
    middle = Point2(np.median([p for _, p in far + pack], axis=0))
    assert len(ordered) == 12  # the pack walks to the group, then on with it
    assert all(t.distance_to(middle) < 0.01 for t in ordered[8:]), ordered[8:]


def test_a_unit_ahead_of_the_group_waits_for_it(tmp_path: Path) -> None:
    """Before: every unit attack-moved to the target, the fastest first."""
    recorded = load_recorded("BelShirVestigeLE")
    root = tmp_path / "root"
    _, rally, enemy = spots(zerg_bot(root, recorded))
    group = [(U.ZERGLING, p) for p in around(rally, 15)]
    ahead = (U.ZERGLING, rally.towards(enemy, 25))
    bot = step(zerg_bot(root, recorded, [*group, ahead], food_used=20), Strategy.ALL_IN)
    ordered = unit_targets(bot, U.ZERGLING)
    assert ordered[:15] == [enemy] * 15
    assert ordered[15].distance_to(rally) < 3  # back to the group's middle


def test_late_game_aggressive_attacks_as_one_group(tmp_path: Path) -> None:
    """The 200-unit late game: 50 fighting units gathered in front of the main leave
    together while the home's defence (the queens) handles the marines at the third."""
    bot = step(late_bot(tmp_path / "root", load_recorded("AbyssalReefLE")), Strategy.AGGRESSIVE)
    army_targets = {
        a.target.tag if hasattr(a.target, "tag") else a.target
        for a in bot.actions
        if a.unit.type_id in (U.ZERGLING, U.ROACH, U.HYDRALISK)
    }
    assert len(bot.attack_group) == bot.army.amount == 50
    assert len(army_targets) == 1  # one target for all: the nearest enemy building


# --------------------------------------------------------------------------- supply


def test_overlords_to_make_cover_what_can_be_produced() -> None:
    assert overlords_to_make(12, 14, 0, capacity=5) == 1  # the start: 3 larva, a hatchery
    assert overlords_to_make(30, 38, 0, capacity=15) == 1
    assert overlords_to_make(30, 38, 8, capacity=15) == 0  # one on its way covers it
    assert overlords_to_make(100, 110, 0, capacity=30) == 3
    assert overlords_to_make(190, 200, 0, capacity=30) == 0  # the cap is reached
    assert overlords_to_make(180, 192, 0, capacity=30) == 1  # only up to 200


@pytest.mark.parametrize("map_name", MAPS)
def test_overlords_are_made_ahead_of_need(map_name: str, tmp_path: Path) -> None:
    """Before: only once supply left < 1 + bases (here 8 left, 2 bases: none)."""
    recorded = load_recorded(map_name)
    root = tmp_path / "root"
    start = step(zerg_bot(root, recorded, minerals=100), Strategy.ECONOMY)
    assert orders(start)[AbilityId.LARVATRAIN_OVERLORD] == 1  # 12/14 and 3 larva

    home, _, _ = spots(start)
    natural = natural_of(start)
    mid = [(U.HATCHERY, natural), (U.SPAWNINGPOOL, home.offset((0, -7)))]
    mid += [(U.QUEEN, home.offset((3, 0))), (U.QUEEN, natural.offset((3, 0)))]
    mid += [(U.LARVA, home.offset((i - 2, -3))) for i in range(4)]
    bot = zerg_bot(root, recorded, mid, minerals=400, food_used=30, food_cap=38)
    assert (bot.supply_left, bot.larva.amount, bot.production_capacity()) == (8, 7, 15)
    assert orders(step(bot, Strategy.ECONOMY))[AbilityId.LARVATRAIN_OVERLORD] == 1


def test_no_overlord_while_the_supply_on_its_way_covers_production(tmp_path: Path) -> None:
    bot = late_bot(tmp_path / "root", load_recorded("AbyssalReefLE"))
    assert (bot.supply_left, bot.production_capacity()) == (35, 25)
    assert not orders(step(bot, Strategy.ECONOMY))[AbilityId.LARVATRAIN_OVERLORD]


# --------------------------------------------------------------------------- queens


@pytest.mark.parametrize("map_name", MAPS)
def test_queens_inject_a_hatchery_each_and_fight_at_their_base(
    map_name: str, tmp_path: Path
) -> None:
    """Before: both queens injected the hatchery nearest to them, and never fought."""
    recorded = load_recorded(map_name)
    root = tmp_path / "root"
    home, _, _ = spots(zerg_bot(root, recorded))
    natural = natural_of(zerg_bot(root, recorded))
    queens = [(U.QUEEN, home.offset((3, 0))), (U.QUEEN, home.offset((-3, 0)))]
    bot = step(zerg_bot(root, recorded, [(U.HATCHERY, natural), *queens]), Strategy.ECONOMY)
    injected = targets(bot, AbilityId.EFFECT_INJECTLARVA)
    assert sorted(h.tag for h in injected) == sorted(bot.townhalls.tags)

    marines = [(U.MARINE, home.offset((5, 5))), (U.MARINE, home.offset((6, 5)))]
    bot = step(zerg_bot(root, recorded, queens, enemies=marines), Strategy.ECONOMY)
    fights = targets(bot, AbilityId.ATTACK)
    assert len(fights) == 2 and {t.type_id for t in fights} == {U.MARINE}


def test_late_game_the_queen_at_the_attacked_base_fights(tmp_path: Path) -> None:
    bot = step(late_bot(tmp_path / "root", load_recorded("AbyssalReefLE")), Strategy.TECH)
    by_queen = {a.unit.tag: a for a in bot.actions if a.unit.type_id == U.QUEEN}
    fighting = [a for a in by_queen.values() if a.ability == AbilityId.ATTACK]
    injecting = [a for a in by_queen.values() if a.ability == AbilityId.EFFECT_INJECTLARVA]
    assert len(fighting) == 1 and fighting[0].target.type_id == U.MARINE
    assert len(injecting) == 3 and len({a.target.tag for a in injecting}) == 3


# --------------------------------------------------------------------------- expansions


@pytest.mark.parametrize("map_name", MAPS)
def test_every_strategy_but_all_in_expands(map_name: str, tmp_path: Path) -> None:
    """Before: only ECONOMY took a new base."""
    recorded = load_recorded(map_name)
    root = tmp_path / "root"
    home, _, _ = spots(zerg_bot(root, recorded))
    drones = [(U.DRONE, home.offset((i - 1, 4))) for i in range(3)]  # 15 drones
    pool = (U.SPAWNINGPOOL, home.offset((0, -7)))
    expanded = {}
    for strategy in Strategy:
        bot = zerg_bot(root, recorded, [*drones, pool], minerals=1000, food_used=15)
        expanded[strategy] = orders(step(bot, strategy))[AbilityId.ZERGBUILD_HATCHERY]
    assert expanded == {s: int(s is not Strategy.ALL_IN) for s in Strategy}


# --------------------------------------------------------------------------- map_control


def map_control_reference(bot: ZergBot) -> float:
    """The per-pair loop map_control was (kept here to check the arrays against)."""
    own = [u.position for u in bot.units] + [s.position for s in bot.structures]
    if not own:
        return 0.0
    enemy = [u.position for u in bot.enemy_units] + [s.position for s in bot.enemy_structures]
    if not enemy:
        enemy = list(bot.enemy_start_locations)
    locations = list(bot.expansion_locations_list)
    ours = sum(
        1
        for loc in locations
        if min(loc.distance_to_point2(p) for p in own)
        < min(loc.distance_to_point2(p) for p in enemy)
    )
    return ours / len(locations)


@pytest.mark.parametrize("map_name", MAPS)
def test_map_control_on_arrays_is_the_per_pair_loop(
    map_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a loop over every (location, unit) pair: 1.0 ms on the 200-unit state."""
    recorded = load_recorded(map_name)
    bots = [
        put_in_state(ZergBot(tmp_path / "root"), recorded),  # the recorded Terran start
        zerg_bot(tmp_path / "root", recorded),
        late_bot(tmp_path / "root", recorded, threats=6),
        late_bot(tmp_path / "root", recorded, threats=40),  # 34 more marines at our third
    ]
    late = bots[2]
    assert len(late.all_own_units) + len(late.enemy_units) + len(late.enemy_structures) == 200
    expected = [map_control_reference(bot) for bot in bots]

    pairs = []
    monkeypatch.setattr(Point2, "distance_to_point2", lambda *a: pairs.append(a) or 0.0)
    assert [map_control(bot) for bot in bots] == expected
    assert pairs == []  # no Python distance per pair: one matrix
