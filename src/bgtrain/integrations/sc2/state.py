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


def map_control(bot: BotAI) -> float:
    """Share of expansion locations nearer to own units than to known enemy ones.

    Known enemy positions are its visible units and structures; while none is known, its
    start locations stand in (where it is known to be). 0 with no own unit.
    """
    own = [u.position for u in bot.units] + [s.position for s in bot.structures]
    if not own:
        return 0.0
    enemy = [u.position for u in bot.enemy_units] + [s.position for s in bot.enemy_structures]
    if not enemy:
        enemy = list(bot.enemy_start_locations)
    try:
        locations = list(bot.expansion_locations_list)
    except (AssertionError, AttributeError):
        # Catching AssertionError is deliberate: burnysc2's ``expansion_locations_list``
        # says "expansions not computed yet" with an ``assert``, not an error of its own
        # (under ``python -O`` it returns the empty list instead, handled below). An
        # AttributeError: a bot whose variables burnysc2 has not initialised yet. Both
        # mean no map is known yet, so no map control.
        return 0.0
    if not locations:
        return 0.0
    if not enemy:
        return 1.0
    ours = sum(
        1
        for loc in locations
        if min(loc.distance_to_point2(p) for p in own)
        < min(loc.distance_to_point2(p) for p in enemy)
    )
    return ours / len(locations)


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
