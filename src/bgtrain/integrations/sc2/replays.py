"""StarCraft II replays as demonstration episodes (``bgtrain sc2 replays``), without the game.

sc2reader (the ``[sc2]`` extra) reads a ``.SC2Replay``'s tracker events alone (no game
events: tens of milliseconds a replay). They are replayed in order, and every
``DECISION_INTERVAL`` game seconds (4, as :class:`~bgtrain.integrations.sc2.LearningBot`
decides; a game second is 22.4 game loops, burnysc2's ``bot.time``) each chosen player's
state is taken: :func:`~bgtrain.integrations.sc2.sc2_state`'s 15 numbers, scaled as it
scales them. Each replay gives one format-1 episode per chosen player, marked
``"source": "demonstration"`` in its meta (no bgtrain policy played it: its actions are
labels and it has no ``logp``).

How each number is found (U: from the unit events, replayed up to that moment, exact;
S: the player's last PlayerStatsEvent, sent every 160 loops, so up to 7.1 s old):

* minerals, vespene (S); supply used (S); supply cap (S, at most 200, as the game caps it);
* workers (U): drones, SCVs and probes alive, less the drones turning into a building
  (the tracker records such a drone's death only when the building is done);
* own army units (U): units that are not structures and not in ``NOT_ARMY`` (workers,
  larva, eggs, cocoons, overlords and overseers, changelings), as ``sc2_state`` counts;
* town halls (U, those being built too), game time, larva (U), upgrades (finished
  UpgradeCompleteEvents; the cosmetic ones, sprays, rewards and the like, are left out);
* **all-seeing** (tracker events have no fog of war): visible enemy units are all the
  enemy's units (not structures), known enemy town halls all of its town halls;
* **proxies**: army HP (own and enemy) is the army's resource value (minerals + vespene
  of its units, sc2reader's unit data): tracker events carry no hit points; for the
  units of the shipped replays value and full HP are close (zergling 25 vs 35, queen
  150 vs 175). Map control is ``sc2_state``'s measure (the share of expansion locations
  nearer to own units and structures than to the enemy's) on what the tracker knows:
  the expansion locations are the clusters of the map's mineral fields, and a unit's
  position is where it was born, moved by each UnitPositionsEvent that lists it
  (structures never move, so theirs are exact).

Each player's ``Beacon*`` pseudo-units are left out everywhere.

The action of each interval is a strategy label (:class:`Strategy`, the bot's five
choices) inferred from what the player started in the next ``DECISION_INTERVAL``
seconds (a unit from an egg counts when its egg was started, a building when it was
placed) and from where it fought:

* ALL_IN: its army fought in the enemy's half, and it made no worker in this interval
  or the two before;
* AGGRESSIVE: its army fought in the enemy's half (or was seen there);
* TECH: a tech building started (anything but town halls, supply, gas and static
  defence), a morph to Lair, Hive or Greater Spire, or a unit that costs vespene;
* DEFENSIVE: static defence or a queen;
* AGGRESSIVE: more army units than workers started;
* ECONOMY: anything else (workers, expansions, overlords, nothing).

Rewards are :class:`RewardSettings`' (the same terms as a real game's, from the same
numbers), the outcome is the player's result; a replay without a result is saved cut
short (``terminated`` false, its last state kept), as the bot saves a game that ended
without one.

A replay that cannot be read (not a replay, a build or unit type sc2reader does not
know, no tracker events) is **copied** into the root's ``data/quarantine/`` beside
``NAME.reason.json`` saying why; the user's file is never moved, changed or deleted.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from bgtrain.errors import BgtrainError
from bgtrain.integrations.sc2.bot import ENV_NAME, RewardSettings, Strategy
from bgtrain.integrations.sc2.state import NOT_ARMY, STATE_FIELDS, TOWNHALLS
from bgtrain.store.episode import DEMONSTRATION, Episode, build_episode, save_episode
from bgtrain.store.fs import atomic_write, atomic_write_text, free_name
from bgtrain.store.root import TrainingRoot

logger = logging.getLogger(__name__)

#: burnysc2's ``bot.time`` counts game loops / 22.4 (the "faster" game speed).
LOOPS_PER_SECOND = 22.4
#: Seconds between decisions, as ``LearningBot``'s default ``decision_interval``.
DECISION_INTERVAL = 4.0
#: Where the episodes go, below the root's ``data/`` (never ``buffer/``: see DESIGN.md).
DEMONSTRATIONS_FOLDER = "demonstrations"
REPLAY_SUFFIX = ".SC2Replay"
#: Upgrades that change nothing in the game (sprays, dances, skins, the GameHeart mode).
COSMETIC_UPGRADES = ("Spray", "Reward", "GameHeart", "Skin", "Decal", "Emoticon", "Portrait")
#: Each player's beacons (rally points for its AI allies): no units at all.
PSEUDO_UNITS = ("Beacon",)
WORKERS = frozenset({"Drone", "SCV", "Probe"})
#: Zerg structures a drone turns into (the drone is gone while it builds).
FROM_DRONE = frozenset(
    {
        "Hatchery", "Extractor", "SpawningPool", "EvolutionChamber", "RoachWarren",
        "BanelingNest", "SpineCrawler", "SporeCrawler", "HydraliskDen", "LurkerDenMP",
        "InfestationPit", "Spire", "NydusNetwork", "UltraliskCavern",
    }
)  # fmt: skip
STATIC_DEFENCE = frozenset(
    {"SpineCrawler", "SporeCrawler", "PhotonCannon", "ShieldBattery", "Bunker", "MissileTurret"}
)
#: Structures that are neither tech nor defence: town halls, supply and gas.
BASIC_STRUCTURES = frozenset(
    {
        "Hatchery", "CommandCenter", "Nexus", "SupplyDepot", "SupplyDepotLowered", "Pylon",
        "Extractor", "ExtractorRich", "Refinery", "RefineryRich", "Assimilator",
        "AssimilatorRich", "CreepTumor", "CreepTumorQueen", "CreepTumorBurrowed",
    }
)  # fmt: skip
TECH_MORPHS = frozenset({"Lair", "Hive", "GreaterSpire"})
QUEENS = frozenset({"Queen"})
_NOT_ARMY = frozenset(t.name for t in NOT_ARMY) | {"LURKEREGG"}
_TOWNHALLS = frozenset(t.name for t in TOWNHALLS)
#: Mineral fields within this distance of a cluster's centre belong to one base.
BASE_RADIUS = 12.0
OUTCOMES = {"Win": "Victory", "Loss": "Defeat", "Tie": "Tie"}
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


class ReplayError(BgtrainError):
    """A replay that cannot be made into episodes; ``reason`` is one line saying why."""

    def __init__(self, reason: str, error: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


# --------------------------------------------------------------------------- reading


def load_replay(path: Path) -> Any:
    """sc2reader's replay of ``path`` with its tracker events (and no game events);
    :class:`ReplayError` if it cannot be read or has no tracker events."""
    import sc2reader  # the [sc2] extra; imported here, so that --help works without it

    try:
        replay = sc2reader.load_replay(str(path), load_level=3, load_map=False)
    except Exception as exc:  # sc2reader raises many kinds (MPQError, KeyError, struct...)
        raise ReplayError(
            f"not a replay sc2reader {sc2reader.__version__} can parse "
            f"({type(exc).__name__}: {_describe(exc)})",
            repr(exc),
        ) from None
    build = getattr(replay, "build", None)
    if getattr(replay, "datapack", None) is None:
        raise ReplayError(
            f"game build {build} is unknown to sc2reader {sc2reader.__version__}: "
            "update it (pip install -U sc2reader)"
        )
    if not getattr(replay, "tracker_events", None):
        raise ReplayError(
            f"no tracker events (game build {build}; StarCraft II records them since "
            "2.0.8): nothing to learn from"
        )
    return replay


def _describe(exc: BaseException) -> str:
    """``exc``'s message on one line: sc2reader wraps the cause in its arguments
    (``MPQError('Unable to construct the MPQArchive', ValueError('Invalid file header.'))``)."""
    parts = [str(a) if isinstance(a, BaseException) else a for a in exc.args]
    return ": ".join(str(p) for p in parts if str(p)) or type(exc).__name__


def _is_pseudo(name: str) -> bool:
    return name.startswith(PSEUDO_UNITS)


@dataclass
class _Unit:
    owner: int
    name: str
    kind: Any  # sc2reader's UnitType: costs, supply, is_building
    building: bool
    x: float
    y: float
    done: bool = True

    @property
    def value(self) -> float:
        return float(self.kind.minerals + self.kind.vespene)


class _Intent(NamedTuple):
    """Something a player started: when (game loop), who, and what kind of thing."""

    loop: int
    pid: int
    kind: str  # worker, army, tech, defence, queen, other


@dataclass
class _World:
    """Every unit alive, each player's last stats and upgrades, as the events say so far."""

    build: Any
    units: dict[int, _Unit] = field(default_factory=dict)
    stats: dict[int, Any] = field(default_factory=dict)
    upgrades: dict[int, int] = field(default_factory=dict)
    building_drones: dict[int, int] = field(default_factory=dict)
    minerals: list[tuple[float, float]] = field(default_factory=list)
    intents: list[_Intent] = field(default_factory=list)
    fights: list[tuple[int, int, float, float]] = field(default_factory=list)  # loop pid x y
    seen: list[tuple[int, int, float, float]] = field(default_factory=list)
    _egg_started: dict[int, int] = field(default_factory=dict)
    _hatched: list[_Unit] = field(default_factory=list)

    def apply(self, event: Any) -> None:
        handler = _HANDLERS.get(type(event).__name__)
        if handler is not None:
            handler(self, event)

    def kind_of(self, event: Any, name: str) -> Any:
        """sc2reader's type of ``name``; :class:`ReplayError` when its data lacks it."""
        unit = getattr(event, "unit", None)
        kind = getattr(unit, "_type_class", None)
        if kind is None or kind.name != name:
            kind = self.build.units.get(name) if self.build is not None else None
        if kind is None:
            import sc2reader

            raise ReplayError(
                f"unit type {name!r} not found in sc2reader {sc2reader.__version__}'s data "
                f"for this game build: update it (pip install -U sc2reader)"
            )
        return kind


def _born(world: _World, event: Any, done: bool = True) -> None:
    name = event.unit_type_name
    if "MineralField" in name and event.frame == 0:
        world.minerals.append((float(event.x), float(event.y)))
    if _is_pseudo(name) or event.control_pid == 0:
        return
    kind = world.kind_of(event, name)
    unit = _Unit(event.control_pid, name, kind, bool(kind.is_building), event.x, event.y, done)
    world.units[event.unit_id] = unit
    if not done:
        if name in FROM_DRONE:
            world.building_drones[unit.owner] = world.building_drones.get(unit.owner, 0) + 1
        world.intents.append(_Intent(event.frame, unit.owner, _structure_kind(name)))
    elif event.frame > 0 and name != "Larva":
        world._hatched.append(unit)
        world.intents.append(_Intent(event.frame, unit.owner, _unit_kind(unit)))


def _init(world: _World, event: Any) -> None:
    _born(world, event, done=False)


def _done(world: _World, event: Any) -> None:
    unit = world.units.get(event.unit_id)
    if unit is not None and not unit.done:
        unit.done = True
        _drone_back(world, unit)


def _drone_back(world: _World, unit: _Unit) -> None:
    """A building from a drone is done or cancelled: the drone is no longer building it
    (done: its death follows; cancelled: it is a drone again)."""
    if unit.name in FROM_DRONE:
        world.building_drones[unit.owner] -= 1


def _died(world: _World, event: Any) -> None:
    unit = world.units.pop(event.unit_id, None)
    if unit is None:
        return
    if not unit.done:
        _drone_back(world, unit)
    killer = getattr(event, "killer_pid", None)
    if killer and killer != unit.owner:
        world.fights.append((event.frame, killer, float(event.x), float(event.y)))
        if not unit.building and unit.name.upper() not in _NOT_ARMY:
            world.fights.append((event.frame, unit.owner, float(event.x), float(event.y)))


def _type_change(world: _World, event: Any) -> None:
    unit = world.units.get(event.unit_id)
    if unit is None:
        return
    name = event.unit_type_name
    if name == "Egg":
        world._egg_started[event.unit_id] = event.frame
    elif unit.name == "Egg":
        # An egg hatched: the units born this loop were decided when the egg started.
        started = world._egg_started.pop(event.unit_id, event.frame)
        for i, intent in enumerate(world.intents):
            if intent.loop == event.frame and intent.pid == unit.owner:
                world.intents[i] = intent._replace(loop=started)
    elif name in TECH_MORPHS:
        world.intents.append(_Intent(event.frame, unit.owner, "tech"))
    unit.name, unit.kind = name, world.kind_of(event, name)
    unit.building = bool(unit.kind.is_building)


def _owner_change(world: _World, event: Any) -> None:
    unit = world.units.get(event.unit_id)
    if unit is not None:
        unit.owner = event.control_pid


def _positions(world: _World, event: Any) -> None:
    for unit_object, (x, y) in event.units.items():
        unit = world.units.get(unit_object.id)
        if unit is not None:
            unit.x, unit.y = float(x), float(y)
            if not unit.building and unit.name.upper() not in _NOT_ARMY:
                world.seen.append((event.frame, unit.owner, float(x), float(y)))


def _player_stats(world: _World, event: Any) -> None:
    world.stats[event.pid] = event


def _upgrade(world: _World, event: Any) -> None:
    if not event.upgrade_type_name.startswith(COSMETIC_UPGRADES):
        world.upgrades[event.pid] = world.upgrades.get(event.pid, 0) + 1


_HANDLERS: dict[str, Callable[[_World, Any], None]] = {
    "UnitBornEvent": _born,
    "UnitInitEvent": _init,
    "UnitDoneEvent": _done,
    "UnitDiedEvent": _died,
    "UnitTypeChangeEvent": _type_change,
    "UnitOwnerChangeEvent": _owner_change,
    "UnitPositionsEvent": _positions,
    "PlayerStatsEvent": _player_stats,
    "UpgradeCompleteEvent": _upgrade,
}


def _structure_kind(name: str) -> str:
    if name in STATIC_DEFENCE:
        return "defence"
    return "other" if name in BASIC_STRUCTURES else "tech"


def _unit_kind(unit: _Unit) -> str:
    if unit.name in WORKERS:
        return "worker"
    if unit.name in QUEENS:
        return "queen"
    if unit.building or unit.name.upper() in _NOT_ARMY:
        return "other"
    return "tech" if unit.kind.vespene > 0 else "army"


# --------------------------------------------------------------------------- states


class Moment(NamedTuple):
    """One player's numbers at one decision (unscaled), and what the rewards need."""

    values: tuple[float, ...]  # STATE_FIELDS' order, not scaled
    army_supply: float
    supply_left: float

    def get(self, name: str) -> float:
        return self.values[FIELD_INDEX[name]]

    def state(self) -> np.ndarray:
        return np.array(
            [v / scale for v, (_, scale) in zip(self.values, STATE_FIELDS, strict=True)],
            dtype=np.float32,
        )


FIELD_INDEX = {name: i for i, (name, _) in enumerate(STATE_FIELDS)}


def _is_army(unit: _Unit) -> bool:
    return not unit.building and unit.name.upper() not in _NOT_ARMY


def _bases(points: Sequence[tuple[float, float]]) -> np.ndarray:
    """Expansion locations: the centres of the mineral fields' clusters."""
    clusters: list[list[tuple[float, float]]] = []
    for x, y in points:
        for cluster in clusters:
            cx, cy = np.mean(cluster, axis=0)
            if math.hypot(x - cx, y - cy) < BASE_RADIUS:
                cluster.append((x, y))
                break
        else:
            clusters.append([(x, y)])
    return np.array([np.mean(c, axis=0) for c in clusters]).reshape(-1, 2)


def _map_control(bases: np.ndarray, own: list[_Unit], enemy: list[_Unit]) -> float:
    """``sc2_state``'s map control on the units' last known positions."""
    if not own or not len(bases):
        return 0.0
    if not enemy:
        return 1.0

    def nearest(units: list[_Unit]) -> np.ndarray:
        points = np.array([(u.x, u.y) for u in units], dtype=np.float64)
        return np.sqrt(((bases[:, None, :] - points[None, :, :]) ** 2).sum(-1)).min(axis=1)

    return float((nearest(own) < nearest(enemy)).mean())


def _moment(world: _World, pid: int, enemies: frozenset[int], loop: int, bases: np.ndarray):
    own = [u for u in world.units.values() if u.owner == pid]
    enemy = [u for u in world.units.values() if u.owner in enemies]
    army = [u for u in own if _is_army(u)]
    enemy_army = [u for u in enemy if _is_army(u)]
    stats = world.stats.get(pid)
    used = float(stats.food_used) if stats else 0.0
    cap = min(float(stats.food_made), 200.0) if stats else 0.0
    values = (
        float(stats.minerals_current) if stats else 0.0,
        float(stats.vespene_current) if stats else 0.0,
        used,
        cap,
        sum(u.name in WORKERS for u in own) - world.building_drones.get(pid, 0),
        len(army),
        sum(not u.building for u in enemy),
        sum(u.name.upper() in _TOWNHALLS for u in own),
        loop / LOOPS_PER_SECOND,
        sum(u.name.upper() in _TOWNHALLS for u in enemy),
        world.upgrades.get(pid, 0),
        sum(u.name == "Larva" for u in own),
        _map_control(bases, own, enemy),
        sum(u.value for u in army),
        sum(u.value for u in enemy_army),
    )
    army_supply = float(sum(u.kind.supply for u in army))
    return Moment(tuple(float(v) for v in values), army_supply, cap - used)


# --------------------------------------------------------------------------- one replay


@dataclass(frozen=True)
class PlayerGame:
    """One player's side of a replay: its moments, labels and result."""

    name: str
    pid: int
    race: str
    result: str | None
    moments: list[Moment]  # one per decision, then the game's end
    labels: list[Strategy]  # one per decision


@dataclass(frozen=True)
class ReplayGame:
    """What a replay holds for bgtrain."""

    path: Path
    map_name: str
    build: int
    release: str
    seconds: float
    players: list[PlayerGame]


def decision_loops(end_loop: int, interval: float = DECISION_INTERVAL) -> list[int]:
    """The game loops of the decisions: every ``interval`` seconds from 0, before the end."""
    step = interval * LOOPS_PER_SECOND
    return [round(k * step) for k in range(max(1, math.ceil(end_loop / step)))]


def _teams(replay: Any) -> dict[int, frozenset[int]]:
    """Each player's enemies: the players of the other teams."""
    team = {p.pid: getattr(p, "team_id", p.pid) for p in replay.players}
    return {pid: frozenset(q for q in team if team[q] != team[pid]) for pid in team}


def read_game(path: Path) -> ReplayGame:
    """The moments and labels of every player of the replay at ``path``."""
    replay = load_replay(path)
    events = sorted(replay.tracker_events, key=lambda e: e.frame)
    end = max(int(replay.frames), events[-1].frame)
    loops = decision_loops(end)
    world = _World(getattr(replay, "datapack", None))
    for event in reversed(events):  # before the first stats (loop 1): the starting values
        if type(event).__name__ == "PlayerStatsEvent":
            world.stats[event.pid] = event
    enemies = _teams(replay)
    moments: dict[int, list[Moment]] = {pid: [] for pid in enemies}
    bases = np.zeros((0, 2))
    i = 0
    for k, loop in enumerate([*loops, end]):
        while i < len(events) and events[i].frame <= loop:
            world.apply(events[i])
            i += 1
        if k == 0:
            bases = _bases(world.minerals)
        for pid, foes in enemies.items():
            moments[pid].append(_moment(world, pid, foes, loop, bases))
    starts = _starts(world, replay)
    players = [
        PlayerGame(
            name=p.name,
            pid=p.pid,
            race=p.play_race,
            result=p.result,
            moments=moments[p.pid],
            labels=_labels(world, p.pid, enemies[p.pid], starts, len(loops)),
        )
        for p in replay.players
    ]
    return ReplayGame(
        path, replay.map_name, int(replay.build), str(replay.release_string),
        end / LOOPS_PER_SECOND, players,
    )  # fmt: skip


# --------------------------------------------------------------------------- labels


def _starts(world: _World, replay: Any) -> dict[int, tuple[float, float]]:
    """Each player's start: its first town hall (the tracker's first events place them)."""
    starts: dict[int, tuple[float, float]] = {}
    for event in replay.tracker_events:
        born = type(event).__name__ == "UnitBornEvent" and event.frame == 0
        if born and event.unit_type_name.upper() in _TOWNHALLS:
            starts.setdefault(event.control_pid, (float(event.x), float(event.y)))
    return starts


def _in_enemy_half(
    x: float, y: float, own: tuple[float, float] | None, foes: list[tuple[float, float]]
) -> bool:
    if own is None or not foes:
        return False
    mine = math.hypot(x - own[0], y - own[1])
    return any(math.hypot(x - fx, y - fy) < mine for fx, fy in foes)


def _labels(
    world: _World,
    pid: int,
    enemies: frozenset[int],
    starts: dict[int, tuple[float, float]],
    n: int,
) -> list[Strategy]:
    """The strategy label of each of the ``n`` decisions (see the module's docstring)."""
    step = DECISION_INTERVAL * LOOPS_PER_SECOND
    kinds = ("worker", "army", "tech", "defence", "queen", "other")
    made = [dict.fromkeys(kinds, 0) for _ in range(n)]
    for intent in world.intents:
        if intent.pid == pid:
            made[min(n - 1, int(intent.loop // step))][intent.kind] += 1
    out = [False] * n
    foes = [starts[e] for e in enemies if e in starts]
    for loop, who, x, y in (*world.fights, *world.seen):
        if who == pid and _in_enemy_half(x, y, starts.get(pid), foes):
            out[min(n - 1, int(loop // step))] = True
    labels = []
    for k in range(n):
        no_workers = all(made[j]["worker"] == 0 for j in range(max(0, k - 2), k + 1))
        labels.append(_label(made[k], out[k], no_workers))
    return labels


def _label(made: dict[str, int], out: bool, no_workers: bool) -> Strategy:
    if out:
        return Strategy.ALL_IN if no_workers else Strategy.AGGRESSIVE
    if made["tech"]:
        return Strategy.TECH
    if made["defence"] or made["queen"]:
        return Strategy.DEFENSIVE
    if made["army"] > made["worker"]:
        return Strategy.AGGRESSIVE
    return Strategy.ECONOMY


# --------------------------------------------------------------------------- episodes


def shaped_rewards(
    moments: Sequence[Moment], outcome: str, settings: RewardSettings, terminated: bool = True
) -> np.ndarray:
    """``LearningBot``'s rewards for decisions at ``moments[:-1]`` (the last moment is the
    game's end): base and army-supply change until the next decision, supply-blocked at
    that decision (not at the game's end), and the end reward on the last decision."""
    r = settings
    rewards = np.zeros(len(moments) - 1, dtype=np.float64)
    for k, (now, later) in enumerate(itertools.pairwise(moments)):
        bases = later.get("townhalls") - now.get("townhalls")
        change = (later.army_supply - now.army_supply) * r.army_supply_scale
        reward = r.base * bases + max(-r.army_clip, min(r.army_clip, change))
        at_end = k == len(moments) - 2
        if not at_end and later.supply_left <= 0 and later.get("supply_cap") < 200:
            reward += r.supply_blocked
        rewards[k] = reward
    if terminated:
        rewards[-1] += {"Victory": r.victory, "Defeat": r.defeat}.get(outcome, r.tie)
    return rewards.astype(np.float32)


def player_episode(
    game: ReplayGame, player: PlayerGame, settings: RewardSettings | None = None
) -> Episode:
    """The demonstration episode of ``player``'s side of ``game``."""
    outcome = OUTCOMES.get(player.result or "", "Tie")
    terminated = player.result in OUTCOMES
    moments = player.moments
    states = np.stack([m.state() for m in moments[:-1]])
    rewards = shaped_rewards(moments, outcome, settings or RewardSettings(), terminated)
    meta = {
        "env": ENV_NAME,
        "outcome": outcome,
        "source": DEMONSTRATION,
        "replay": game.path.name,
        "player": player.name,
        "race": player.race,
        "map": game.map_name,
        "game_build": game.build,
        "game_version": game.release,
        "decision_interval": DECISION_INTERVAL,
        "n_actions": len(Strategy),
    }
    if not terminated:
        meta["reason"] = "the replay records no result"
    return build_episode(
        states,
        np.array([int(a) for a in player.labels], dtype=np.int64),
        rewards,
        terminated=terminated,
        last_state=None if terminated else moments[-1].state(),
        meta=meta,
        obs_dim=len(STATE_FIELDS),
        n_actions=len(Strategy),
    )


def chosen(players: Iterable[PlayerGame], who: str) -> list[PlayerGame]:
    """The players named ``who`` (any case), or every one for ``"all"``."""
    if who.lower() == "all":
        return list(players)
    return [p for p in players if p.name.lower() == who.lower()]


def episode_name(game: ReplayGame, player: PlayerGame, outcome: str) -> str:
    """``demo_<replay>_<player>_<Outcome>.npz``: the same replay gives the same name."""
    stem = _NAME_UNSAFE.sub("-", game.path.name[: -len(REPLAY_SUFFIX)] or game.path.stem)
    who = _NAME_UNSAFE.sub("-", f"p{player.pid}-{player.name}").strip("-")
    return f"demo_{stem.strip('-')}_{who}_{outcome}.npz"


# --------------------------------------------------------------------------- many replays


@dataclass
class ConversionReport:
    """What a conversion did."""

    replays: int = 0
    episodes: list[Path] = field(default_factory=list)
    quarantined: list[Path] = field(default_factory=list)
    #: Replays read fine but without a player of the chosen name.
    no_player: list[Path] = field(default_factory=list)


def demonstrations_folder(root: str | Path | TrainingRoot) -> Path:
    return TrainingRoot.at(root).data / DEMONSTRATIONS_FOLDER


def find_replays(paths: Iterable[Path]) -> list[Path]:
    """The ``.SC2Replay`` files of ``paths`` (a folder: every one below it), sorted;
    a file named is taken whatever its name."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix.lower() == REPLAY_SUFFIX.lower())
            )
        else:
            found.append(path)
    return found


def quarantine_replay(path: Path, root: str | Path | TrainingRoot, error: ReplayError) -> Path:
    """Copy ``path`` into the root's quarantine with ``NAME.reason.json``; the original
    stays where it is, untouched. The same file quarantined again keeps one copy."""
    folder = TrainingRoot.at(root).quarantine
    folder.mkdir(parents=True, exist_ok=True)
    data = path.read_bytes()
    target = folder / path.name
    if not (target.is_file() and target.read_bytes() == data):
        target = free_name(folder, path.name)
    record = {
        "name": target.name,
        "reason": error.reason,
        "error": error.error,
        "time": datetime.now().astimezone().isoformat(timespec="seconds"),
        "size": len(data),
        "from": str(path.resolve()),
        "copied": True,
    }
    atomic_write_text(target.with_name(target.name + ".reason.json"), json.dumps(record, indent=2))
    atomic_write(target, lambda f: f.write(data))
    return target


def convert_replay(
    path: Path,
    root: str | Path | TrainingRoot,
    player: str = "all",
    rewards: RewardSettings | None = None,
) -> tuple[list[Path], bool]:
    """Save ``path``'s episodes (of ``player``) into the root's demonstrations; the paths,
    and whether the replay had such a player. :class:`ReplayError` if unreadable."""
    game = read_game(path)
    folder = demonstrations_folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    players = chosen(game.players, player)
    for p in players:
        episode = player_episode(game, p, rewards)
        saved.append(save_episode(episode, folder / episode_name(game, p, episode.outcome or "")))
    return saved, bool(players)


def convert_replays(
    paths: Iterable[Path],
    root: str | Path | TrainingRoot,
    player: str = "all",
    rewards: RewardSettings | None = None,
    progress: Callable[[int, int, Path], None] | None = None,
) -> ConversionReport:
    """Convert every replay of ``paths`` (files or folders); unreadable ones are copied
    into quarantine with their reason. ``progress(done, total, path)`` after each."""
    replays = find_replays(paths)
    report = ConversionReport()
    for done, path in enumerate(replays, start=1):
        report.replays += 1
        try:
            saved, found = convert_replay(path, root, player, rewards)
        except ReplayError as exc:
            report.quarantined.append(quarantine_replay(path, root, exc))
            logger.warning("%s -> quarantine/: %s", path.name, exc.reason)
        else:
            report.episodes.extend(saved)
            if not found:
                report.no_player.append(path)
        if progress is not None:
            progress(done, len(replays), path)
        elif done % 100 == 0 or done == len(replays):
            logger.info("replays: %d of %d read", done, len(replays))
    return report
