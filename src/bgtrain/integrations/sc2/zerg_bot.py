"""A Zerg bot for StarCraft II (burnysc2 7) that learns which strategy to play: the
default bot of ``bgtrain run --game sc2`` (``examples/sc2_zerg_bot.py`` runs it alone).

Every few game seconds the newest model picks one of five strategies from what the bot
sees (see ``bgtrain.integrations.sc2``); this module only says how each one is played:

    ECONOMY     drones and new hatcheries; the army stays home
    AGGRESSIVE  an early spawning pool, zerglings with speed, attack once a group is ready
    DEFENSIVE   queens, spine crawlers and +1 carapace at home; the army stays home
    TECH        gas, lair, roach warren and hydralisk den, roaches and hydras, upgrades
    ALL_IN      no more drones: every larva becomes a zergling or roach, all of them attack

Every step, whatever the strategy, the bot also keeps its supply ahead of production,
keeps its workers mining and has its queens inject larva.

It ships inside the package (an installed wheel has no ``examples/`` folder):

    bgtrain run --game sc2                       # this bot
    bgtrain run --game sc2 --bot bgtrain.integrations.sc2.zerg_bot:ZergBot
"""

from __future__ import annotations

from sc2.ids.ability_id import AbilityId
from sc2.ids.buff_id import BuffId
from sc2.ids.unit_typeid import UnitTypeId
from sc2.ids.upgrade_id import UpgradeId
from sc2.position import Point2
from sc2.unit import Unit
from sc2.units import Units

from bgtrain.integrations.sc2.bot import LearningBot, Strategy

#: The units this bot fights with (queens stay home: they inject and defend).
ARMY_TYPES = frozenset({UnitTypeId.ZERGLING, UnitTypeId.ROACH, UnitTypeId.HYDRALISK})
#: Where each tech building goes: steps of 4 sideways from the spot in front of the main.
BUILDING_SLOTS = {
    UnitTypeId.SPAWNINGPOOL: 0,
    UnitTypeId.EVOLUTIONCHAMBER: 1,
    UnitTypeId.ROACHWARREN: -1,
    UnitTypeId.HYDRALISKDEN: 2,
}


class ZergBot(LearningBot):
    """Plays the strategy the model chose; see the module's docstring."""

    #: Drones per hatchery and per extractor: more would not mine any faster.
    DRONES_PER_BASE = 16
    DRONES_PER_EXTRACTOR = 3
    MAX_DRONES = 75
    #: AGGRESSIVE waits for this many fighting units before it attacks.
    ATTACK_GROUP_SIZE = 12
    #: Enemies this close to one of our hatcheries are attacking us.
    HOME_RADIUS = 20.0

    async def play(self, strategy: Strategy) -> None:
        await self.run_the_base()
        if not self.townhalls:
            # Nothing left to build with: sell our lives as dearly as possible.
            self.attack_with(self.army, self.attack_target())
            return
        plays = {
            Strategy.ECONOMY: self.play_economy,
            Strategy.AGGRESSIVE: self.play_aggressive,
            Strategy.DEFENSIVE: self.play_defensive,
            Strategy.TECH: self.play_tech,
            Strategy.ALL_IN: self.play_all_in,
        }
        await plays[strategy]()

    # ------------------------------------------------------------------ every strategy

    async def run_the_base(self) -> None:
        """What every Zerg needs each step, whatever the plan."""
        self.make_overlord_if_supply_is_low()
        await self.distribute_workers()
        self.inject_larva()

    def make_overlord_if_supply_is_low(self) -> None:
        # More hatcheries make more larva, so we need the next overlord earlier; and an
        # overlord takes 18 s, so one in production is usually enough.
        if self.supply_cap >= 200 or self.supply_left >= 1 + self.townhalls.amount:
            return
        if self.already_pending(UnitTypeId.OVERLORD) < 1 + self.supply_used // 60:
            self.train(UnitTypeId.OVERLORD)

    def inject_larva(self) -> None:
        # Larva is Zerg's production: a queen's inject gives a hatchery 3 more.
        hatcheries = self.townhalls.ready
        for queen in self.units(UnitTypeId.QUEEN).idle:
            if queen.energy < 25 or not hatcheries:
                continue
            hatchery = hatcheries.closest_to(queen)
            if not hatchery.has_buff(BuffId.QUEENSPAWNLARVATIMER):
                queen(AbilityId.EFFECT_INJECTLARVA, hatchery)

    # ------------------------------------------------------------------ the five strategies

    async def play_economy(self) -> None:
        # The next hatchery first: once drones are queued the money would be gone.
        await self.expand_if_affordable()
        self.make_drones(up_to=self.saturation())
        self.make_queens(per_base=1)
        self.defend_home()

    async def play_aggressive(self) -> None:
        # "12 pool": the pool first, a few drones to pay for the lings, then lings only.
        await self.build_once(UnitTypeId.SPAWNINGPOOL)
        self.make_drones(up_to=14)
        if self.is_ready(UnitTypeId.SPAWNINGPOOL):
            await self.take_gas(extractors=1)  # 100 gas for zergling speed
            self.research_once(UpgradeId.ZERGLINGMOVEMENTSPEED)
            self.make_queens(per_base=1)
            self.make_army(UnitTypeId.ZERGLING)
        if self.army.amount >= self.ATTACK_GROUP_SIZE:
            self.attack_with(self.army, self.attack_target())
        else:
            self.defend_home()  # gather the group at home until it is big enough

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
        self.defend_home()

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
        self.defend_home()

    async def play_all_in(self) -> None:
        # No new drones: every larva becomes army, and all of it goes to the enemy.
        await self.build_once(UnitTypeId.SPAWNINGPOOL)
        if self.is_ready(UnitTypeId.SPAWNINGPOOL):
            await self.take_gas(extractors=1)
            await self.build_once(UnitTypeId.ROACHWARREN)
        self.make_army(UnitTypeId.ROACH, UnitTypeId.ZERGLING)
        self.attack_with(self.army, self.attack_target())

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
        trained = self.train(unit_type, amount) if amount > 0 else 0
        self.supply_used += trained * supply
        self.supply_left -= trained * supply
        return trained

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
        for upgrade, building in (
            (UpgradeId.GLIALRECONSTITUTION, UnitTypeId.ROACHWARREN),  # needs the lair
            (UpgradeId.ZERGMISSILEWEAPONSLEVEL1, UnitTypeId.EVOLUTIONCHAMBER),
            (UpgradeId.EVOLVEGROOVEDSPINES, UnitTypeId.HYDRALISKDEN),
        ):
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

    async def expand_if_affordable(self) -> None:
        if self.can_afford(UnitTypeId.HATCHERY) and not self.already_pending(UnitTypeId.HATCHERY):
            await self.expand_now()

    async def take_gas(self, extractors: int) -> None:
        have = self.gas_buildings.amount + self.worker_en_route_to_build(UnitTypeId.EXTRACTOR)
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

    def defend_home(self) -> None:
        """Fight enemies near our hatcheries, else wait at the rally point."""
        army = self.army
        if not army:
            return
        threats = self.enemy_units.filter(
            lambda enemy: self.townhalls.closest_distance_to(enemy) < self.HOME_RADIUS
        )
        if threats:
            for unit in army:
                unit.attack(threats.closest_to(unit))
            return
        rally = self.rally_point()
        for unit in army.further_than(6, rally):
            unit.attack(rally)  # attack-move: fight whatever is met on the way

    def attack_target(self) -> Point2 | Unit:
        """The nearest enemy building we know of, else its start location not yet scouted."""
        if self.enemy_structures:
            origin = self.army.center if self.army else self.game_info.map_center
            return self.enemy_structures.closest_to(origin)
        for start in self.enemy_start_locations:
            if not self.is_visible(start):  # a visible empty start: they are not there
                return start
        return self.game_info.map_center

    def attack_with(self, units: Units, target: Point2 | Unit) -> None:
        for unit in units:
            unit.attack(target)
