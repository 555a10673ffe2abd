"""``LearningBot``: a burnysc2 ``BotAI`` that chooses a strategy with the newest model every
few game seconds, records its decisions, and saves each game for the learner.

One bot object may play many games (burnysc2 reuses it in a series or in
``run_multiple_games``): :meth:`LearningBot.on_start` begins each game afresh, and each
game is saved as its own episode."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sc2.bot_ai import BotAI
from sc2.data import Result

from bgtrain.errors import BgtrainError
from bgtrain.game.policy import Policy, UniformPolicy
from bgtrain.game.recorder import EpisodeRecorder
from bgtrain.integrations.sc2.state import STATE_FIELDS, army, sc2_state
from bgtrain.store.models import ModelStore
from bgtrain.store.root import DEFAULT_ROOT, TrainingRoot

logger = logging.getLogger(__name__)

ENV_NAME = "sc2"


class Strategy(enum.IntEnum):
    """The seed bot's five choices (the policy's actions, in this order)."""

    ECONOMY = 0
    AGGRESSIVE = 1
    DEFENSIVE = 2
    TECH = 3
    ALL_IN = 4


@dataclass(frozen=True)
class RewardSettings:
    """Shaped rewards between decisions, and the end-of-game reward."""

    #: Per own base gained (lost: minus).
    base: float = 0.3
    #: Change in army supply between decisions, scaled by this, then clipped to +-army_clip.
    army_supply_scale: float = 0.05
    army_clip: float = 0.5
    #: While supply-blocked (no supply left, cap below 200) at a decision.
    supply_blocked: float = -0.1
    victory: float = 10.0
    defeat: float = -5.0
    tie: float = 0.0


OUTCOMES = {Result.Victory: "Victory", Result.Defeat: "Defeat", Result.Tie: "Tie"}
#: Why a game is saved as cut short when the bot starts another before it ended.
UNFINISHED = "a new game started on this bot before this one ended"


class GameNotStartedError(BgtrainError, RuntimeError):
    """A new game reached a :class:`LearningBot` whose own ``on_start`` did not run for it."""


class LearningBot(BotAI):
    """Override :meth:`play` to turn ``self.strategy`` into your own play.

    One object may play game after game: each :meth:`on_start` begins a new episode.
    """

    def __init__(
        self,
        root: str | Path | TrainingRoot = DEFAULT_ROOT,
        *,
        decision_interval: float = 4.0,
        rewards: RewardSettings | None = None,
        actor: str | None = None,
    ) -> None:
        super().__init__()
        self.training_root = TrainingRoot.at(root)
        self.decision_interval = decision_interval
        self.rewards = rewards or RewardSettings()
        self.strategy = Strategy.ECONOMY
        self.policy_version: int | None = None
        self._policy: Policy | UniformPolicy = UniformPolicy(len(Strategy))
        self._recorder = EpisodeRecorder(self.training_root, actor=actor, env=ENV_NAME)
        #: The recorder is closed when a game is saved (no writer thread is left behind by
        #: a bot that plays one game); the next game opens another, with the same actor.
        self._recorder_closed = False
        self._next_decision = 0.0
        self._pending: tuple[np.ndarray, int, float] | None = None  # state, action, logp
        self._reward = 0.0
        self._bases = 0
        self._army_supply = 0.0
        self._ended = False
        #: The last on_step iteration of this game: burnysc2 counts from 0 each game.
        self._last_iteration: int | None = None

    # ------------------------------------------------------------------ for bot authors

    async def play(self, strategy: Strategy) -> None:
        """Each step: act on the chosen strategy. The default does nothing."""

    # ------------------------------------------------------------------ burnysc2 hooks

    async def on_start(self) -> None:
        """Each game's start. A subclass that overrides it must ``await super().on_start()``."""
        self.begin_game()
        self.load_newest_model()
        self._bases = self.townhalls.amount
        self._army_supply = self._current_army_supply()

    async def on_step(self, iteration: int) -> None:
        self._check_same_game(iteration)
        if self.time >= self._next_decision:
            self.decide()
            self._next_decision = self.time + self.decision_interval
        await self.play(self.strategy)

    async def on_end(self, game_result: Result) -> None:
        self.end_game(game_result)

    # ------------------------------------------------------------------ one game after another

    def begin_game(self) -> None:
        """Forget the last game: burnysc2 reuses a bot object for the next game.

        A last game that never ended (``run_game`` raised, nobody called
        :meth:`abandon_game`) is saved first, as cut short: no game is lost or mixed
        into the next one. Should that save fail, its error is raised after the reset.
        """
        try:
            if not self._ended and (self._pending is not None or self._recorder.steps):
                logger.warning("saving the last game as cut short: %s", UNFINISHED)
                self._finish("Tie", 0.0, terminated=False, from_game=False, reason=UNFINISHED)
        finally:
            self._reset_game()

    def _reset_game(self) -> None:
        if self._recorder_closed:
            self._recorder = EpisodeRecorder(
                self.training_root,
                actor=self._recorder.actor,
                env=ENV_NAME,
                policy_version=self.policy_version,
            )
            self._recorder_closed = False
        self.strategy = Strategy.ECONOMY
        self._next_decision = 0.0
        self._pending = None
        self._reward = 0.0
        self._ended = False
        self._last_iteration = None

    def _check_same_game(self, iteration: int | None = None) -> None:
        """Refuse a step of a new game that :meth:`on_start` did not begin.

        Without it, such a game would be dropped (the last one is saved) or recorded into
        the last one (not saved yet). burnysc2 counts ``iteration`` up from 0 each game.
        The last game, if not saved yet, is saved as cut short before the refusal.
        """
        last = self._last_iteration
        counted_again = iteration is not None and last is not None and iteration <= last
        if self._ended or counted_again:
            name = type(self).__name__
            if not self._ended:
                self._ended = True
                logger.warning("saving the last game as cut short: %s", UNFINISHED)
                self._finish("Tie", 0.0, terminated=False, from_game=False, reason=UNFINISHED)
            raise GameNotStartedError(
                f"a new game began on this {name} but LearningBot.on_start did not run for "
                "it, so its decisions would be lost or mixed into the last game: call "
                f"`await super().on_start()` in {name}.on_start"
            )
        if iteration is not None:
            self._last_iteration = iteration

    # ------------------------------------------------------------------ the learning part

    def load_newest_model(self) -> None:
        """Between games: pick up the newest published model (numpy only)."""
        model = ModelStore(self.training_root).load_if_newer(self.policy_version)
        if model is None:
            return
        if model.meta.obs_dim != len(STATE_FIELDS) or model.meta.n_actions != len(Strategy):
            logger.error(
                "model v%d plays %d inputs -> %d actions, not this bot's %d -> %d; ignored",
                model.version,
                model.meta.obs_dim,
                model.meta.n_actions,
                len(STATE_FIELDS),
                len(Strategy),
            )
            return
        self._policy = Policy.from_model(model)
        self.policy_version = model.version
        self._recorder.policy_version = model.version

    def _current_army_supply(self) -> float:
        # A unit's own supply (a zergling is 0.5), not what making it costs, which
        # burnysc2's calculate_supply_cost gives (a morph from a unit costs 0).
        units = self.game_data.units
        return float(sum(units[u.type_id.value]._proto.food_required for u in army(self.units)))

    def shaped_reward(self, at_game_end: bool = False) -> float:
        """Reward for what happened since the last decision (see :class:`RewardSettings`).

        At the game's end the supply-blocked term is left out: burnysc2 ends the game
        before the next observation, so the supply left then is only the bot's own
        bookkeeping of its last orders.
        """
        r = self.rewards
        bases = self.townhalls.amount
        supply = self._current_army_supply()
        reward = r.base * (bases - self._bases)
        change = (supply - self._army_supply) * r.army_supply_scale
        reward += max(-r.army_clip, min(r.army_clip, change))
        if not at_game_end and self.supply_left <= 0 and self.supply_cap < 200:
            reward += r.supply_blocked
        self._bases, self._army_supply = bases, supply
        return reward

    def decide(self) -> Strategy:
        """Record the previous decision with its reward, then choose the next strategy."""
        self._check_same_game()
        state = sc2_state(self)
        reward = self.shaped_reward()
        if self._pending is not None:
            previous_state, action, logp = self._pending
            self._recorder.record(previous_state, action, self._reward + reward, logp)
            self._reward = 0.0
        action, logp = self._policy.act(state)
        self._pending = (state, action, logp)
        self.strategy = Strategy(action)
        return self.strategy

    def end_game(self, game_result: Result | str) -> Path | None:
        """The game is over: its last decision gets the end reward; the episode is saved."""
        if self._ended:
            return None
        self._ended = True
        outcome = OUTCOMES.get(game_result, str(game_result))
        bonus = {"Victory": self.rewards.victory, "Defeat": self.rewards.defeat}.get(
            outcome, self.rewards.tie
        )
        return self._finish(outcome, bonus, terminated=True)

    def abandon_game(self, reason: str = "the game ended without a result") -> Path | None:
        """The game crashed or was left early: save what was recorded, as cut short."""
        if self._ended:
            return None
        self._ended = True
        logger.warning("saving the game as cut short: %s", reason)
        return self._finish("Tie", 0.0, terminated=False, reason=reason)

    def _finish(
        self, outcome: str, bonus: float, terminated: bool, from_game: bool = True, **meta: Any
    ) -> Path | None:
        """Record the last decision and save the game. ``from_game=False``: the bot's game
        state is no longer this game's (the next one has begun), so the last decision's
        own state stands in as the last state, with no further reward."""
        last_state, reward = (self._pending[0] if self._pending else None), 0.0
        if from_game:
            try:
                last_state = sc2_state(self)
                reward = self.shaped_reward(at_game_end=True)
            except Exception:  # the game state may be gone after a crash
                last_state, reward = (self._pending[0] if self._pending else None), 0.0
        if self._pending is not None:
            state, action, logp = self._pending
            self._recorder.record(state, action, self._reward + reward + bonus, logp)
            self._pending = None
        path = self._recorder.finish(
            outcome,
            terminated=terminated,
            last_state=None if terminated else last_state,
            n_actions=len(Strategy),
            **meta,
        )
        self._recorder_closed = True
        self._recorder.close()  # waits for the write; the next game opens a new recorder
        return path
