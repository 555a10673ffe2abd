"""A Zerg bot for StarCraft II (burnysc2 7) that learns which strategy to play: the
default bot of ``bgtrain run --game sc2`` (``examples/sc2_zerg_bot.py`` runs it alone).

The newest model picks one of five strategies from what the bot sees (see
``bgtrain.integrations.sc2``); this module says how each one is played:

    ECONOMY     drones and new hatcheries; the army stays home
    AGGRESSIVE  an early spawning pool, zerglings with speed; the army attacks as a group
    DEFENSIVE   queens, spine crawlers and +1 carapace at home; the army stays home
    TECH        gas, lair, roach warren and hydralisk den, roaches and hydras, upgrades
    ALL_IN      no more drones: every larva becomes a zergling or roach, all of it attacks

and plays it as a player would:

- A chosen strategy is held (:class:`Hold`): the model is asked again only once the
  strategy's goal is met or it has been played for ``Hold.min_seconds`` (longer while its
  attack is under way). The decision recorded for the learner spans the whole hold, so the
  reward of those seconds goes to the strategy that was played.
- Attacks go as a group (:class:`AttackRule`): the army gathers, leaves once enough of it
  stands together, moves together (units ahead of the group wait for it), takes new units
  along in packs, and comes home below a smaller size than the one it left at.
- Every step, whatever the strategy: overlords are made ahead of need (for what the larva
  and queens can produce while one is made), workers keep mining, queens inject larva and
  fight enemies at their base, and every strategy but ALL_IN takes new bases.

Each of these is a small decision on the bot's state (the module's functions and the
bot's ``*_due``/``*_met`` methods) that the tests check without the game.

It ships inside the package (an installed wheel has no ``examples/`` folder):

    bgtrain run --game sc2                       # this bot
    bgtrain run --game sc2 --bot bgtrain.integrations.sc2.zerg_bot:ZergBot
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sc2.ids.ability_id import AbilityId
from sc2.ids.buff_id import BuffId
from sc2.ids.unit_typeid import UnitTypeId
from sc2.ids.upgrade_id import UpgradeId
from sc2.position import Point2
from sc2.unit import Unit
from sc2.units import Units

from bgtrain.integrations.sc2.bot import LearningBot, Strategy
from bgtrain.integrations.sc2.state import nearest_distances, unit_positions

#: The units this bot fights with (queens stay home: they inject and defend).
ARMY_TYPES = frozenset({UnitTypeId.ZERGLING, UnitTypeId.ROACH, UnitTypeId.HYDRALISK})
#: Where each tech building goes: steps of 4 sideways from the spot in front of the main.
BUILDING_SLOTS = {
    UnitTypeId.SPAWNINGPOOL: 0,
    UnitTypeId.EVOLUTIONCHAMBER: 1,
    UnitTypeId.ROACHWARREN: -1,
    UnitTypeId.HYDRALISKDEN: 2,
}
#: TECH's goal: these buildings and the upgrades of ``ZergBot.research_upgrades``.
TECH_BUILDINGS = (UnitTypeId.LAIR, UnitTypeId.ROACHWARREN, UnitTypeId.HYDRALISKDEN)
TECH_UPGRADES = (
    (UpgradeId.GLIALRECONSTITUTION, UnitTypeId.ROACHWARREN),  # needs the lair
    (UpgradeId.ZERGMISSILEWEAPONSLEVEL1, UnitTypeId.EVOLUTIONCHAMBER),
    (UpgradeId.EVOLVEGROOVEDSPINES, UnitTypeId.HYDRALISKDEN),
)
OVERLORD_SUPPLY = 8
HATCHERY_SUPPLY = 6
MAX_SUPPLY = 200


# ---------------------------------------------------------------------- the decisions


@dataclass(frozen=True)
class Hold:
    """How long a chosen strategy is played before the model may choose again."""

    #: Game seconds (five of the model's 4-second decisions): long enough for a building
    #: to be started and paid for, for the army to gather.
    min_seconds: float = 20.0
    #: While the strategy's attack is under way it is held longer, up to this: an army
    #: called back in the middle of a fight loses it.
    attack_seconds: float = 90.0


def plan_released(held_for: float, goal_met: bool, attacking: bool, hold: Hold) -> bool:
    """Whether the model may choose again, ``held_for`` game seconds into a strategy."""
    if goal_met:
        return True  # nothing left for it to do
    if held_for < hold.min_seconds:
        return False
    return not attacking or held_for >= hold.attack_seconds


@dataclass(frozen=True)
class AttackRule:
    """When a strategy's army leaves, and when it comes back (hysteresis: it leaves at
    ``attack_at`` and returns only below ``retreat_below``, fewer)."""

    #: Fighting units standing together (within ``ZergBot.GATHER_RADIUS``) to leave.
    attack_at: int
    #: An attacking group smaller than this comes home.
    retreat_below: int
    #: Units made after the group left join it in packs of this many, gathered first.
    reinforce_at: int


AGGRESSIVE_ATTACK = AttackRule(attack_at=16, retreat_below=8, reinforce_at=6)
#: An all-in does not come back while a unit of its group lives.
ALL_IN_ATTACK = AttackRule(attack_at=8, retreat_below=1, reinforce_at=4)


def group_attacks(attacking: bool, size: int, gathered: int, rule: AttackRule) -> bool:
    """Whether the group attacks this step: it leaves once ``gathered`` reaches
    ``attack_at``; once out, it stays out while its ``size`` is ``retreat_below`` or more."""
    if attacking:
        return size >= rule.retreat_below
    return gathered >= rule.attack_at


def gathered_count(points: np.ndarray, radius: float) -> int:
    """How many of ``points`` (n, 2) stand within ``radius`` of their median point."""
    if not len(points):
        return 0
    center = np.median(points, axis=0)
    return int(np.count_nonzero(np.hypot(*(points - center).T) <= radius))


def stragglers(points: np.ndarray, leash: float) -> np.ndarray:
    """Which of ``points`` (n, 2) are further than ``leash`` from their median point."""
    if not len(points):
        return np.zeros(0, dtype=bool)
    center = np.median(points, axis=0)
    return np.hypot(*(points - center).T) > leash


def overlords_to_make(
    supply_used: float, supply_cap: float, pending: float, capacity: float
) -> int:
    """Overlords to start now so that the supply on its way covers ``capacity``: what the
    larva and queens can produce while an overlord is made. ``pending``: supply of
    overlords and hatcheries in production."""
    room = supply_cap + pending - supply_used
    headroom_to_max = MAX_SUPPLY - (supply_cap + pending)
    if room >= capacity or headroom_to_max <= 0:
        return 0
    needed = math.ceil((capacity - room) / OVERLORD_SUPPLY)
    return min(needed, math.ceil(headroom_to_max / OVERLORD_SUPPLY))


def expansion_due(strategy: Strategy, drones: int, bases: int, per_base: int) -> bool:
    """Whether ``strategy`` takes a new base now (none is on its way): ECONOMY whenever it
    can; ALL_IN never (every mineral is army); the others once ``per_base`` drones per
    base mine, so the next drones have somewhere to go."""
    if strategy is Strategy.ALL_IN:
        return False
    return strategy is Strategy.ECONOMY or drones >= per_base * bases


# ---------------------------------------------------------------------- the bot


class ZergBot(LearningBot):
    """Plays the strategy the model chose; see the module's docstring."""

    #: Drones per hatchery and per extractor: more would not mine any faster.
    DRONES_PER_BASE = 16
    DRONES_PER_EXTRACTOR = 3
    MAX_DRONES = 75
    #: Strategies other than ECONOMY take the next base once this many drones per base mine.
    EXPAND_AT_DRONES_PER_BASE = 14
    #: Enemies this close to one of our hatcheries are attacking us.
    HOME_RADIUS = 20.0
    #: Units this close to the group's middle stand together; a member further than
    #: ``LEASH`` from it walks back to it instead of on to the enemy.
    GATHER_RADIUS = 8.0
    LEASH = 7.0
    #: Supply the larva, hatcheries and queens can produce while an overlord is made
    #: (18 s): each larva about 1; a hatchery makes about 2 larva in that time, an
    #: injecting queen about 2 more.
    LARVA_PER_HATCHERY = 2
    LARVA_PER_QUEEN = 2
    HOLD = Hold()
    ATTACKS: ClassVar[dict[Strategy, AttackRule]] = {
        Strategy.AGGRESSIVE: AGGRESSIVE_ATTACK,
        Strategy.ALL_IN: ALL_IN_ATTACK,
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.new_plan()

    def new_plan(self) -> None:
        """A new game: no strategy held, no group out."""
        self.plan_since: float | None = None
        self.attack_group: set[int] = set()
        self.attacks_ended = 0
        self._attacks_ended_before_plan = 0
        self._threats: tuple[int, Units] | None = None

    async def on_start(self) -> None:
        await super().on_start()
        self.new_plan()

    # ------------------------------------------------------------------ holding a strategy

    def decide(self) -> Strategy:
        """Ask the model only once the strategy played is released (see :class:`Hold`)."""
        if self.plan_since is not None and not self.plan_is_released():
            return self.strategy
        strategy = super().decide()
        self.plan_since = self.time
        self._attacks_ended_before_plan = self.attacks_ended
        return strategy

    def plan_is_released(self) -> bool:
        held_for = self.time - (self.plan_since or 0.0)
        attacking = bool(self.attack_group) and self.strategy in self.ATTACKS
        return plan_released(held_for, self.goal_met(self.strategy), attacking, self.HOLD)

    def goal_met(self, strategy: Strategy) -> bool:
        """Whether ``strategy`` has done what it is for (ALL_IN never has)."""
        bases = self.townhalls.amount
        if strategy is Strategy.ECONOMY:
            return self.workers.amount >= self.saturation() and bool(
                self.already_pending(UnitTypeId.HATCHERY)
            )
        if strategy is Strategy.AGGRESSIVE:  # an attack went out and came back
            return self.attacks_ended > self._attacks_ended_before_plan
        if strategy is Strategy.DEFENSIVE:
            spines = self.structures(UnitTypeId.SPINECRAWLER).amount
            queens = self.units(UnitTypeId.QUEEN).amount
            return not self.home_threats() and min(spines, queens) >= 2 * bases
        if strategy is Strategy.TECH:
            built = all(self.structures(t) for t in TECH_BUILDINGS)
            return built and all(self.already_pending_upgrade(u) for u, _ in TECH_UPGRADES)
        return False

    # ------------------------------------------------------------------ each step

    async def play(self, strategy: Strategy) -> None:
        await self.run_the_base()
        if not self.townhalls:
            # Nothing left to build with: sell our lives as dearly as possible.
            for unit in self.army:
                unit.attack(self.attack_target(self.army))
            return
        plays = {
            Strategy.ECONOMY: self.play_economy,
            Strategy.AGGRESSIVE: self.play_aggressive,
            Strategy.DEFENSIVE: self.play_defensive,
            Strategy.TECH: self.play_tech,
            Strategy.ALL_IN: self.play_all_in,
        }
        if strategy is Strategy.ECONOMY:
            # The next hatchery first: once drones are queued the money would be gone.
            await self.expand_if_due(strategy)
        await plays[strategy]()
        if strategy is not Strategy.ECONOMY:
            await self.expand_if_due(strategy)  # after the strategy's own first buildings
        rule = self.ATTACKS.get(strategy)
        if rule is None:
            self.attack_group = set()
            self.defend_home(self.army)
        else:
            self.attack_as_a_group(rule)

    async def run_the_base(self) -> None:
        """What every Zerg needs each step, whatever the plan."""
        self.make_overlords_ahead()
        await self.distribute_workers()
        self.command_queens()

    # ------------------------------------------------------------------ supply

    def production_capacity(self) -> int:
        """Supply the bot can spend while an overlord is made (see ``LARVA_PER_*``)."""
        hatcheries = self.townhalls.ready.amount
        injectors = min(self.units(UnitTypeId.QUEEN).amount, hatcheries)
        return (
            self.larva.amount
            + self.LARVA_PER_HATCHERY * hatcheries
            + self.LARVA_PER_QUEEN * injectors
        )

    def overlords_due(self) -> int:
        pending = OVERLORD_SUPPLY * self.already_pending(
            UnitTypeId.OVERLORD
        ) + HATCHERY_SUPPLY * self.already_pending(UnitTypeId.HATCHERY)
        return overlords_to_make(
            self.supply_used, self.supply_cap, pending, self.production_capacity()
        )

    def make_overlords_ahead(self) -> None:
        due = self.overlords_due()
        if due:
            self.produce(UnitTypeId.OVERLORD, due)

    # ------------------------------------------------------------------ queens

    def home_threats(self) -> Units:
        """Visible enemies within ``HOME_RADIUS`` of one of our hatcheries (once a step)."""
        loop = self.state.game_loop
        if self._threats is not None and self._threats[0] == loop:
            return self._threats[1]
        threats = Units([], self)
        if self.enemy_units and self.townhalls:
            near = nearest_distances(
                unit_positions(self.enemy_units), unit_positions(self.townhalls)
            )
            threats = Units(
                [
                    u
                    for u, close in zip(self.enemy_units, near < self.HOME_RADIUS, strict=True)
                    if close
                ],
                self,
            )
        self._threats = (loop, threats)
        return threats

    def command_queens(self) -> None:
        """Each queen fights enemies at her base; else injects a hatchery no other queen
        injects (one inject a hatchery); else walks back to her hatchery."""
        queens, hatcheries = self.units(UnitTypeId.QUEEN), self.townhalls.ready
        if not queens or not hatcheries:
            return
        threats = self.home_threats()
        busy = {q.order_target for q in queens if q.is_using_ability(AbilityId.EFFECT_INJECTLARVA)}
        free = hatcheries.filter(
            lambda h: h.tag not in busy and not h.has_buff(BuffId.QUEENSPAWNLARVATIMER)
        )
        for queen in queens:
            if threats and threats.closest_distance_to(queen) < self.HOME_RADIUS:
                give_order(queen, threats.closest_to(queen), attack=True)
            elif queen.is_using_ability(AbilityId.EFFECT_INJECTLARVA):
                continue
            elif queen.energy >= 25 and free:
                hatchery = free.closest_to(queen)
                queen(AbilityId.EFFECT_INJECTLARVA, hatchery)
                free = free.tags_not_in({hatchery.tag})
            elif hatcheries.closest_distance_to(queen) > 10:
                give_order(queen, hatcheries.closest_to(queen).position, attack=False)

    # ------------------------------------------------------------------ the five strategies

    async def play_economy(self) -> None:
        self.make_drones(up_to=self.saturation())
        self.make_queens(per_base=1)

    async def play_aggressive(self) -> None:
        # "12 pool": the pool first, a few drones to pay for the lings, then lings only.
        await self.build_once(UnitTypeId.SPAWNINGPOOL)
        self.make_drones(up_to=min(self.saturation(), 14 * self.townhalls.amount))
        if self.is_ready(UnitTypeId.SPAWNINGPOOL):
            await self.take_gas(extractors=1)  # 100 gas for zergling speed
            self.research_once(UpgradeId.ZERGLINGMOVEMENTSPEED)
            self.make_queens(per_base=1)
            self.make_army(UnitTypeId.ZERGLING)

    async def play_defensive(self) -> None:
        # The evolution chamber needs no pool: +1 carapace makes everything at home tougher.
        await self.build_once(UnitTypeId.SPAWNINGPOOL)
        await self.build_once(UnitTypeId.EVOLUTIONCHAMBER)
        self.make_drones(up_to=self.saturation())  # safe behind the defences
        if self.is_ready(UnitTypeId.SPAWNINGPOOL):
            self.make_queens(per_base=2)  # queens fight air and ground, and inject
            await self.build_spine_crawlers(per_base=2)
        if self.is_ready(UnitTypeId.EVOLUTIONCHAMBER):
            self.research_once(UpgradeId.ZERGGROUNDARMORSLEVEL1)

    async def play_tech(self) -> None:
        # Everything past zerglings costs gas: both geysers of the main first.
        await self.take_gas(extractors=2)
        await self.build_once(UnitTypeId.SPAWNINGPOOL)
        self.make_drones(up_to=self.saturation())
        if self.is_ready(UnitTypeId.SPAWNINGPOOL):
            self.morph_lair()
            await self.build_once(UnitTypeId.ROACHWARREN)
            await self.build_once(UnitTypeId.EVOLUTIONCHAMBER)
            self.make_queens(per_base=1)
        if self.is_ready(UnitTypeId.LAIR):
            await self.build_once(UnitTypeId.HYDRALISKDEN)
        self.research_upgrades()
        self.make_army(UnitTypeId.HYDRALISK, UnitTypeId.ROACH)  # no lings: save for tech

    async def play_all_in(self) -> None:
        # No new drones: every larva becomes army.
        await self.build_once(UnitTypeId.SPAWNINGPOOL)
        if self.is_ready(UnitTypeId.SPAWNINGPOOL):
            await self.take_gas(extractors=1)
            await self.build_once(UnitTypeId.ROACHWARREN)
        self.make_army(UnitTypeId.ROACH, UnitTypeId.ZERGLING)

    # ------------------------------------------------------------------ production

    def saturation(self) -> int:
        """Drones that mine at full speed on the bases and extractors we have."""
        wanted = (
            self.DRONES_PER_BASE * self.townhalls.amount
            + self.DRONES_PER_EXTRACTOR * self.gas_buildings.amount
        )
        return min(wanted, self.MAX_DRONES)

    def make_drones(self, up_to: int) -> None:
        missing = up_to - (self.workers.amount + self.already_pending(UnitTypeId.DRONE))
        if missing > 0:
            self.produce(UnitTypeId.DRONE, int(missing))

    def make_queens(self, per_base: int) -> None:
        if not self.is_ready(UnitTypeId.SPAWNINGPOOL):
            return
        queens = self.units(UnitTypeId.QUEEN).amount + self.already_pending(UnitTypeId.QUEEN)
        if queens < per_base * self.townhalls.ready.amount:
            self.produce(UnitTypeId.QUEEN, 1)

    def make_army(self, *unit_types: UnitTypeId) -> None:
        """Every larva into the first of ``unit_types`` we can make, then the next one."""
        for unit_type in unit_types:
            if self.tech_requirement_progress(unit_type) == 1 and self.can_afford(unit_type):
                self.produce(unit_type, self.larva.amount)

    def produce(self, unit_type: UnitTypeId, amount: int) -> int:
        """``self.train``, but only as many as the free supply feeds.

        burnysc2 7's ``train`` takes the cost of what it orders off ``self.minerals`` but
        not the supply off ``self.supply_left``: without this, one step would order more
        units than there is supply for, and the rest of the step would plan with it.
        """
        supply = self.calculate_supply_cost(unit_type)
        if supply > 0:
            amount = min(amount, int(self.supply_left // supply))
        amount = min(amount, self.affordable(unit_type))
        if amount <= 0:
            return 0
        if unit_type is UnitTypeId.QUEEN:
            trained = self.train(unit_type, amount)
        else:
            # From larva: ordered directly, as burnysc2's ``train`` would, without it
            # checking every structure (a late game's step spent ~1 ms there).
            free = self.larva.tags_not_in(self.unit_tags_received_action)[:amount]
            for larva in free:
                larva.train(unit_type)
            trained = len(free)
        self.supply_used += trained * supply
        self.supply_left -= trained * supply
        return trained

    def affordable(self, unit_type: UnitTypeId) -> int:
        """How many of ``unit_type`` the minerals and gas left pay for."""
        cost = self.calculate_cost(unit_type)
        counts = [
            int(have // price)
            for have, price in ((self.minerals, cost.minerals), (self.vespene, cost.vespene))
            if price > 0
        ]
        return min(counts, default=MAX_SUPPLY)

    def morph_lair(self) -> None:
        # A lair unlocks hydras and roach speed; a hatchery training a queen cannot morph.
        if self.structures({UnitTypeId.LAIR, UnitTypeId.HIVE}) or self.already_pending(
            UnitTypeId.LAIR
        ):
            return
        hatchery = self.townhalls(UnitTypeId.HATCHERY).ready.idle.random_or(None)
        if hatchery is not None and self.can_afford(UnitTypeId.LAIR):
            hatchery.build(UnitTypeId.LAIR)

    def research_upgrades(self) -> None:
        for upgrade, building in TECH_UPGRADES:
            if self.is_ready(building):
                self.research_once(upgrade)

    def research_once(self, upgrade: UpgradeId) -> None:
        # burnysc2 would send the order again once the research is done: check first.
        if self.already_pending_upgrade(upgrade) == 0:
            self.research(upgrade)

    # ------------------------------------------------------------------ buildings

    def is_ready(self, structure_type: UnitTypeId) -> bool:
        return bool(self.structures(structure_type).ready)

    async def build_once(self, structure_type: UnitTypeId) -> None:
        """One of ``structure_type``, unless we have it or a drone is on its way to it."""
        have = self.structures(structure_type).amount
        if have or self.already_pending(structure_type) or not self.can_afford(structure_type):
            return
        await self.build(structure_type, near=self.building_spot(structure_type))

    def building_spot(self, structure_type: UnitTypeId) -> Point2:
        """In front of the main hatchery (on its creep, off the mineral line), each kind of
        building in its own place: the game only knows a spot is taken once the drone has
        arrived, so two drones sent in the same step must not be sent to the same spot."""
        main = self.start_location or self.townhalls.first.position
        front = main.towards(self.game_info.map_center, 7)
        across = Point2((main.y - front.y, front.x - main.x)) / 7  # 1 long, sideways
        return front + across * 4 * BUILDING_SLOTS.get(structure_type, 0)

    def expansion_is_due(self, strategy: Strategy) -> bool:
        if self.already_pending(UnitTypeId.HATCHERY):
            return False
        return expansion_due(
            strategy, self.workers.amount, self.townhalls.amount, self.EXPAND_AT_DRONES_PER_BASE
        )

    async def expand_if_due(self, strategy: Strategy) -> None:
        if self.expansion_is_due(strategy) and self.can_afford(UnitTypeId.HATCHERY):
            await self.expand_now()

    async def take_gas(self, extractors: int) -> None:
        have = self.gas_buildings.amount
        if have >= extractors:
            return
        have += self.worker_en_route_to_build(UnitTypeId.EXTRACTOR)
        for geyser in self.free_geysers()[: max(0, extractors - int(have))]:
            if not await self.build(UnitTypeId.EXTRACTOR, geyser):
                return

    def free_geysers(self) -> Units:
        """Geysers at our finished hatcheries with no extractor and no drone heading there."""
        bases = self.townhalls.ready
        if not bases:
            return Units([], self)
        targeted = {order.target for drone in self.workers for order in drone.orders}
        return self.vespene_geyser.filter(
            lambda geyser: (
                bases.closest_distance_to(geyser) < 10
                and geyser.tag not in targeted
                and not self.gas_buildings.closer_than(1, geyser)
            )
        )

    async def build_spine_crawlers(self, per_base: int) -> None:
        spines = self.structures(UnitTypeId.SPINECRAWLER).amount + self.already_pending(
            UnitTypeId.SPINECRAWLER
        )
        if spines >= per_base * self.townhalls.ready.amount:
            return
        # Toward the map centre, where attacks come from, at the least defended hatchery.
        hatchery = min(
            self.townhalls.ready,
            key=lambda th: self.structures(UnitTypeId.SPINECRAWLER).closer_than(10, th).amount,
        )
        spot = hatchery.position.towards(self.game_info.map_center, 6)
        await self.build(UnitTypeId.SPINECRAWLER, near=spot, max_distance=6)

    # ------------------------------------------------------------------ the army

    @property
    def army(self) -> Units:
        return self.units.of_type(ARMY_TYPES)

    def rally_point(self) -> Point2:
        """In front of the hatchery nearest to the map centre: between us and the enemy."""
        front = self.townhalls.closest_to(self.game_info.map_center)
        return front.position.towards(self.game_info.map_center, 8)

    def defend_home(self, units: Units) -> None:
        """Fight enemies near our hatcheries, else gather at the rally point: attack-move
        at home, a plain move from further away (a retreat does not stop to fight)."""
        if not units:
            return
        threats = self.home_threats()
        if threats:
            for unit, threat in zip(units, closest_each(units, threats), strict=True):
                give_order(unit, threat, attack=True)
            return
        rally = self.rally_point()
        far = units.further_than(6, rally)
        if not far:
            return
        away = nearest_distances(unit_positions(far), unit_positions(self.townhalls))
        for unit, outside in zip(far, away > self.HOME_RADIUS, strict=True):
            give_order(unit, rally, attack=not outside)

    def attack_as_a_group(self, rule: AttackRule) -> None:
        """The group out, the rest at home; see :class:`AttackRule`."""
        army = self.army
        group = army.tags_in(self.attack_group)
        if group and not group_attacks(True, group.amount, 0, rule):
            self.attacks_ended += 1
            group = Units([], self)  # too few left: they come home with the others
        home = army.tags_not_in(group.tags)
        if not group:
            if group_attacks(
                False, 0, gathered_count(unit_positions(home), self.GATHER_RADIUS), rule
            ):
                group, home = home, Units([], self)
        elif home:
            pack = home.closer_than(self.GATHER_RADIUS, self.rally_point())
            if pack.amount >= rule.reinforce_at:
                group, home = group | pack, home.tags_not_in(pack.tags)
        self.attack_group = group.tags
        self.defend_home(home)
        self.move_together(group)

    def move_together(self, group: Units) -> None:
        """On to the target; a member far from the group's middle walks to it first."""
        if not group:
            return
        target = self.attack_target(group)
        points = unit_positions(group)
        middle = Point2(np.median(points, axis=0))
        for unit, behind in zip(group, stragglers(points, self.LEASH), strict=True):
            give_order(unit, middle if behind else target, attack=True)

    def attack_target(self, group: Units) -> Point2 | Unit:
        """The enemy building nearest to ``group``, else its start location not yet scouted."""
        if self.enemy_structures:
            origin = group.center if group else self.game_info.map_center
            return self.enemy_structures.closest_to(origin)
        for start in self.enemy_start_locations:
            if not self.is_visible(start):  # a visible empty start: they are not there
                return start
        return self.game_info.map_center


def closest_each(units: Units, targets: Units) -> list[Unit]:
    """The nearest of ``targets`` to each of ``units``: one distance matrix, not a search
    per unit."""
    offsets = unit_positions(units)[:, None, :] - unit_positions(targets)[None, :, :]
    nearest = np.einsum("ijk,ijk->ij", offsets, offsets).argmin(axis=1)
    return [targets[i] for i in nearest]


def give_order(unit: Unit, target: Point2 | Unit, attack: bool) -> None:
    """Attack-move (or move) ``unit`` to ``target`` unless that is already its order: the
    same order again each step would make it stop and find its path anew."""
    have = unit.order_target
    doing = unit.is_attacking if attack else unit.is_moving
    if doing and have is not None:
        if isinstance(target, Unit):
            if have == target.tag:
                return
        elif isinstance(have, Point2) and have.distance_to_point2(target) < 1:
            return
    if attack:
        unit.attack(target)
    else:
        unit.move(target)
