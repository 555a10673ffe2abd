"""The decision state of a burnysc2 ``BotAI``: the seed bot's 15 numbers, always finite."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from sc2.ids.unit_typeid import UnitTypeId

if TYPE_CHECKING:
    from sc2.bot_ai import BotAI
    from sc2.units import Units

#: The entries of :func:`sc2_state`, in order, with their scale (the seed bot's).
STATE_FIELDS: tuple[tuple[str, float], ...] = (
    ("minerals", 2000.0),
    ("vespene", 1000.0),
    ("supply_used", 200.0),
    ("supply_cap", 200.0),
    ("workers", 100.0),
    ("own_army_units", 100.0),
    ("visible_enemy_units", 100.0),
    ("townhalls", 10.0),
    ("game_time_s", 1000.0),
    ("known_enemy_townhalls", 5.0),
    ("finished_upgrades", 10.0),
    ("larva", 20.0),
    ("map_control", 1.0),
    ("own_army_hp", 5000.0),
    ("visible_enemy_army_hp", 5000.0),
)

#: Units that are not army: workers, larva, eggs, cocoons, supply and transport units.
NOT_ARMY: frozenset[UnitTypeId] = frozenset(
    {
        UnitTypeId.SCV,
        UnitTypeId.PROBE,
        UnitTypeId.DRONE,
        UnitTypeId.MULE,
        UnitTypeId.LARVA,
        UnitTypeId.EGG,
        UnitTypeId.BROODLORDCOCOON,
        UnitTypeId.BANELINGCOCOON,
        UnitTypeId.RAVAGERCOCOON,
        UnitTypeId.LURKERMPEGG,
        UnitTypeId.OVERLORD,
        UnitTypeId.OVERLORDCOCOON,
        UnitTypeId.OVERLORDTRANSPORT,
        UnitTypeId.TRANSPORTOVERLORDCOCOON,
        UnitTypeId.OVERSEER,
        UnitTypeId.OVERSEERSIEGEMODE,
        UnitTypeId.CHANGELING,
    }
)

TOWNHALLS: frozenset[UnitTypeId] = frozenset(
    {
        UnitTypeId.COMMANDCENTER,
        UnitTypeId.COMMANDCENTERFLYING,
        UnitTypeId.ORBITALCOMMAND,
        UnitTypeId.ORBITALCOMMANDFLYING,
        UnitTypeId.PLANETARYFORTRESS,
        UnitTypeId.NEXUS,
        UnitTypeId.HATCHERY,
        UnitTypeId.LAIR,
        UnitTypeId.HIVE,
    }
)


def army(units: Units) -> Units:
    """Fighting units: not structures, not in :data:`NOT_ARMY`."""
    return units.filter(lambda u: not u.is_structure and u.type_id not in NOT_ARMY)


def _hp(units: Units) -> float:
    return float(sum(u.health + u.shield for u in units))


def unit_positions(*groups: Units) -> np.ndarray:
    """The (x, y) of every unit of ``groups`` as an (n, 2) array, read in one pass (as
    burnysc2 reads them for its own distance matrix)."""
    count = sum(len(group) for group in groups)
    flat = (c for group in groups for unit in group for c in unit.position_tuple)
    return np.fromiter(flat, dtype=np.float64, count=2 * count).reshape(count, 2)


def nearest_distances(locations: np.ndarray, points: np.ndarray) -> np.ndarray:
    """For each location, the distance to the nearest of ``points``: one (L, N) matrix."""
    offsets = locations[:, None, :] - points[None, :, :]
    return np.hypot(offsets[..., 0], offsets[..., 1]).min(axis=1)


def map_control(bot: BotAI) -> float:
    """Share of expansion locations nearer to own units than to known enemy ones.

    Known enemy positions are its visible units and structures; while none is known, its
    start locations stand in (where it is known to be). 0 with no own unit.

    Computed on arrays (a location-by-unit distance matrix): with 200 units on the map a
    loop over every pair took 1.3-1.6 ms of the 40 ms a ladder step may take.
    """
    own = unit_positions(bot.units, bot.structures)
    if not len(own):
        return 0.0
    enemy = unit_positions(bot.enemy_units, bot.enemy_structures)
    if not len(enemy):
        enemy = np.array([tuple(p) for p in bot.enemy_start_locations], dtype=np.float64)
    try:
        locations = bot.expansion_locations_list
    except (AssertionError, AttributeError):
        # Catching AssertionError is deliberate: burnysc2's ``expansion_locations_list``
        # says "expansions not computed yet" with an ``assert``, not an error of its own
        # (under ``python -O`` it returns the empty list instead, handled below). An
        # AttributeError: a bot whose variables burnysc2 has not initialised yet. Both
        # mean no map is known yet, so no map control.
        return 0.0
    if not locations:
        return 0.0
    if not len(enemy):
        return 1.0
    spots = np.array([tuple(p) for p in locations], dtype=np.float64)
    ours = nearest_distances(spots, own) < nearest_distances(spots, enemy)
    return float(np.count_nonzero(ours)) / len(locations)


def sc2_state(bot: BotAI) -> np.ndarray:
    """The 15 entries of :data:`STATE_FIELDS`, scaled, as float32; never NaN or Inf."""
    own_army = army(bot.units)
    enemy_army = army(bot.enemy_units)
    raw = (
        bot.minerals,
        bot.vespene,
        bot.supply_used,
        bot.supply_cap,
        bot.workers.amount,
        own_army.amount,
        bot.enemy_units.amount,
        bot.townhalls.amount,
        bot.time,
        bot.enemy_structures.filter(lambda s: s.type_id in TOWNHALLS).amount,
        len(bot.state.upgrades),
        bot.larva.amount,
        map_control(bot),
        _hp(own_army),
        _hp(enemy_army),
    )
    values = [float(v) / scale for v, (_, scale) in zip(raw, STATE_FIELDS, strict=True)]
    state = np.array([v if math.isfinite(v) else 0.0 for v in values], dtype=np.float32)
    return state
