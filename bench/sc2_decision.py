"""12. StarCraft II decision cost: what the example Zerg bot spends of a ladder step.

AI Arena allows about 40 ms a step. The game cannot run here, so the bot is put (as the
tests do, tests/test_sc2.py) into a synthetic late-game state built from a real recorded
one (Abyssal Reef's first step): 200 units of the two players (4 hatcheries, one more
building, 56 drones, 54 fighting units, queens, overlords and tech of ours; two command
centers, SCVs, a bio army and tanks of the enemy's, some of it at our third base).
Each step is measured on a freshly prepared state, as burnysc2 prepares one a step:

- ``sc2_state`` (of which ``map_control``), what a decision reads;
- the bot's step, ``ZergBot.play`` (its play for each of the five strategies in turn);
- both together, as a decision step is (``decide`` with its state, then ``play``).

burnysc2's own parsing of the observation is not counted (it is the same for any bot).
Each repeat is a series of steps; its p90 is a value, the table shows the median of the
repeats' p90s.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .harness import Row

NAME = "sc2_decision"
TITLE = "12. StarCraft II decision cost"
TARGET = "decision step (sc2_state + the example bot's step) p90 <= 5 ms, 200 units"
TARGET_MS = 5.0
MAP = "AbyssalReefLE"
ENEMY = 4  # the raw observation's alliance of an enemy unit (sc2api Alliance.Enemy)


# ---------------------------------------------------------------------- synthetic states


def _recorded() -> Any:
    from tests.test_sc2 import load_recorded  # checks the shipped checksums first

    return load_recorded(MAP)


def add_units(observation: Any, units: Iterable[tuple[Any, Any]], **changes: Any) -> Any:
    """``observation`` with ``units`` of ours added, and the tags they got."""
    from tests.test_sc2 import changed

    units = list(units)
    first = max(u.tag for u in observation.observation.raw_data.units) + 1
    obs = changed(observation, add=units, **changes)
    return obs, range(first, first + len(units))


def set_fields(observation: Any, tags: Iterable[int], **fields: Any) -> None:
    wanted = set(tags)
    for unit in observation.observation.raw_data.units:
        if unit.tag in wanted:
            for name, value in fields.items():
                setattr(unit, name, value)


def _around(center: Any, n: int, spread: float, seed: int) -> list[Any]:
    from sc2.position import Point2

    offsets = np.random.default_rng(seed).uniform(-spread, spread, size=(n, 2))
    return [Point2((center.x + dx, center.y + dy)) for dx, dy in offsets]


def _bases(recorded: Any, game_info: Any, observation: Any) -> tuple[list, list, Any]:
    """Our 5 nearest expansions (the main first), the enemy's 2 and the map's centre."""
    from tests.test_sc2 import put_in_state

    from bgtrain.integrations.sc2.bot import LearningBot

    with tempfile.TemporaryDirectory() as tmp:
        bot = put_in_state(
            LearningBot(Path(tmp)), recorded, observation, game_info, first_step=True
        )
        spots = bot.expansion_locations_list
        ours = sorted(spots, key=lambda p: p.distance_to(bot.start_location))[:5]
        enemy_start = bot.enemy_start_locations[0]
        theirs = sorted(spots, key=lambda p: p.distance_to(enemy_start))[:2]
        return [bot.start_location, *ours[1:]], theirs, bot.game_info.map_center


def _geysers(observation: Any, near: Iterable[Any], n: int) -> list[Any]:
    from sc2.position import Point2

    units = observation.observation.raw_data.units
    spots = [Point2((u.pos.x, u.pos.y)) for u in units if u.vespene_contents > 0]
    return [g for base in near for g in sorted(spots, key=base.distance_to)[:n]]


def late_game(recorded: Any | None = None, *, threats: int = 6) -> tuple[Any, Any]:
    """A 12-minute state of 200 units (see the module's docstring): the observation and
    game info to put a Zerg bot into. ``threats`` of the enemy's 43 units are marines at
    our third base."""
    from sc2.ids.unit_typeid import UnitTypeId as U
    from tests.test_sc2 import zerg_start

    recorded = recorded or _recorded()
    observation, game_info = zerg_start(recorded)
    ours, theirs, centre = _bases(recorded, game_info, observation)
    ours, fifth = ours[:4], ours[4]
    main, front = ours[0], ours[0].towards(centre, 10)
    tech = (U.SPAWNINGPOOL, U.ROACHWARREN, U.EVOLUTIONCHAMBER, U.HYDRALISKDEN)
    own = [(U.HATCHERY, p) for p in [*ours[1:], fifth]]
    own += [(U.DRONE, p) for base in ours for p in _around(base, 11, 3, 4)]
    own += [(U.QUEEN, base.offset((2, 2))) for base in ours]
    own += [(U.OVERLORD, p) for p in _around(centre, 16, 30, 5)]
    own += [(t, main.towards(centre, 6).offset((3 * i - 6, 0))) for i, t in enumerate(tech)]
    own += [
        (U.SPINECRAWLER, base.towards(centre, 6).offset((3 * i, 0)))
        for base in ours
        for i in (-1, 1)
    ]
    own += [(U.EXTRACTOR, g) for g in _geysers(observation, ours[:2], 2)]
    own += [(U.LARVA, main.offset((i - 3, -3))) for i in range(6)]
    own += [(U.ZERGLING, p) for p in _around(front, 26, 4, 1)]
    own += [(U.ROACH, p) for p in _around(front, 16, 4, 2)]
    own += [(U.HYDRALISK, p) for p in _around(front, 8, 4, 3)]
    obs, added = add_units(observation, own, seconds=720, minerals=1200, vespene=600)
    set_fields(obs, [added[3]], build_progress=0.5)  # a fifth hatchery on its way
    set_fields(obs, [_main_hall(obs)], unit_type=U.LAIR.value)
    enemy = [(U.COMMANDCENTER, p) for p in theirs]
    enemy += [(U.SCV, p) for base in theirs for p in _around(base, 7, 3, 6)]
    enemy += [(U.MARINE, p) for p in _around(centre, 14, 6, 7)]
    enemy += [(U.MARAUDER, p) for p in _around(centre, 3, 6, 8)]
    enemy += [(U.SIEGETANK, p) for p in _around(theirs[1].towards(centre, 8), 4, 3, 9)]
    enemy += [(U.MARINE, p) for p in _around(ours[2], threats, 3, 10)]
    obs, hostile = add_units(obs, enemy)
    set_fields(obs, hostile, alliance=ENEMY, owner=2)
    _mining(obs)
    common = obs.observation.player_common
    common.food_used = 56 + 26 // 2 + 2 * 16 + 2 * 8 + 2 * 4  # drones, army, queens
    common.food_cap = 6 * 4 + 8 * 17  # 4 hatcheries, 17 overlords
    return obs, game_info


def _main_hall(observation: Any) -> int:
    from tests.test_sc2 import TOWN_HALLS

    units = observation.observation.raw_data.units
    return next(u.tag for u in units if u.alliance == 1 and u.unit_type in TOWN_HALLS)


def _mining(observation: Any) -> None:
    """Every drone gathering and every finished base saturated, as in a game that runs
    well (units are copied idle): burnysc2's ``distribute_workers`` then has nothing to
    move, as in most steps of a real game."""
    from sc2.ids.ability_id import AbilityId
    from sc2.ids.unit_typeid import UnitTypeId as U

    units = observation.observation.raw_data.units
    fields = [u for u in units if u.mineral_contents > 0]
    for unit in units:
        if unit.alliance != 1:
            continue
        if unit.unit_type == U.DRONE.value:
            field = min(
                fields, key=lambda m, u=unit: (m.pos.x - u.pos.x) ** 2 + (m.pos.y - u.pos.y) ** 2
            )
            del unit.orders[:]
            unit.orders.add(
                ability_id=AbilityId.HARVEST_GATHER_DRONE.value, target_unit_tag=field.tag
            )
        elif unit.unit_type in (U.HATCHERY.value, U.LAIR.value) and unit.build_progress == 1:
            unit.assigned_harvesters = unit.ideal_harvesters = 16
        elif unit.unit_type == U.EXTRACTOR.value:
            unit.assigned_harvesters = unit.ideal_harvesters = 3
            unit.vespene_contents = 2000


# ---------------------------------------------------------------------- the measurement


def _bot(recorded: Any, observation: Any, game_info: Any, root: Path) -> Any:
    """The example bot in the late-game state, playing the newest of the root's models (a
    fresh one: its cost is that of a trained one of the same size)."""
    from tests.test_sc2 import publish_model, put_in_state

    from bgtrain import TrainingRoot
    from bgtrain.integrations.sc2.zerg_bot import ZergBot

    publish_model(TrainingRoot(root))
    bot = put_in_state(ZergBot(root), recorded, observation, game_info, first_step=True)
    bot.load_newest_model()
    return bot


def _timed(prepare: Callable[[], None], work: Callable[[], object]) -> float:
    prepare()
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1e3


def _series(bot: Any, observation: Any, game_info: Any, steps: int) -> dict[str, list[float]]:
    """One repeat: ``steps`` steps, each figure on a freshly prepared state, ms."""
    from sc2.game_state import GameState

    from bgtrain.integrations.sc2.bot import Strategy
    from bgtrain.integrations.sc2.state import map_control, sc2_state

    loop = asyncio.new_event_loop()

    def fresh() -> None:
        bot._prepare_step(GameState(observation), game_info)
        bot.actions.clear()  # what burnysc2's _after_step does once it has sent them
        bot.unit_tags_received_action.clear()

    def decision_step() -> None:
        bot.plan_since = None  # no strategy held: the model is asked
        bot.decide()
        loop.run_until_complete(bot.play(bot.strategy))

    times: dict[str, list[float]] = {name: [] for name in FIGURES}
    try:
        for i in range(steps):
            strategy = list(Strategy)[i % len(Strategy)]
            times["map_control"].append(_timed(fresh, lambda: map_control(bot)))
            times["sc2_state"].append(_timed(fresh, lambda: sc2_state(bot)))
            step = _timed(fresh, lambda s=strategy: loop.run_until_complete(bot.play(s)))
            times["step"].append(step)
            times["decision step"].append(_timed(fresh, decision_step))
    finally:
        loop.close()
    return times


FIGURES = {
    "map_control": "map_control p90",
    "sc2_state": "sc2_state p90 (with map_control)",
    "step": "the example bot's step (play) p90, the 5 strategies in turn",
    "decision step": "decision step p90: decide (sc2_state, reward, model) + play",
}


def run(quick: bool) -> list[Row]:
    repeats, steps = (2, 10) if quick else (7, 100)
    recorded = _recorded()
    observation, game_info = late_game(recorded)
    p90s: dict[str, list[float]] = {name: [] for name in FIGURES}
    with tempfile.TemporaryDirectory() as tmp:
        bot = _bot(recorded, observation, game_info, Path(tmp) / "root")
        units = len(bot.all_own_units) + len(bot.enemy_units) + len(bot.enemy_structures)
        _series(bot, observation, game_info, 5)  # warm-up: first calls, caches
        for _ in range(repeats):
            for name, values in _series(bot, observation, game_info, steps).items():
                p90s[name].append(float(np.percentile(values, 90)))
        bot.abandon_game("the benchmark is over")  # saved and closed: no thread left
    rows = []
    for name, label in FIGURES.items():
        values = p90s[name]
        median = statistics.median(values)
        target = name == "decision step"
        rows.append(
            Row(
                f"{label}, {units} units",
                "ms",
                median,
                min(values),
                max(values),
                target=f"<= {TARGET_MS:g} ms" if target else None,
                met=median <= TARGET_MS if target else None,
                values=values,
            )
        )
    return rows
