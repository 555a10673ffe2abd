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
from typing import Any, NamedTuple

import numpy as np
from sc2.bot_ai import BotAI
from sc2.data import Result

from bgtrain.errors import BgtrainError
from bgtrain.game.policy import Policy, UniformPolicy
from bgtrain.game.recorder import default_actor
from bgtrain.game.root_access import LocalRoot, RootAccess
from bgtrain.integrations.sc2.ladder import Ladder
from bgtrain.integrations.sc2.settings import LadderSettings
from bgtrain.integrations.sc2.state import STATE_FIELDS, army, sc2_state
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
#: Endings that do not decide the game, saved as cut short (the learner bootstraps from
#: the last state): StarCraft II ends in a tie only at a game time limit (burnysc2's
#: ``game_time_limit``, the ladder's longest game), and ``Undecided`` is no ending at all.
UNDECIDED_ENDINGS = {
    Result.Tie: "the game ended in a tie (a game time limit)",
    Result.Undecided: "the game ended undecided",
}
#: Why a game is saved as cut short when the bot starts another before it ended.
UNFINISHED = "a new game started on this bot before this one ended"


class GameSummary(NamedTuple):
    """The last game a bot saved, as a runner reports it."""

    outcome: str
    terminated: bool
    steps: int
    total_reward: float
    policy_version: int | None


class GameNotStartedError(BgtrainError, RuntimeError):
    """A new game reached a :class:`LearningBot` whose own ``on_start`` did not run for it."""


class LearningBot(BotAI):
    """Override :meth:`play` to turn ``self.strategy`` into your own play.

    One object may play game after game: each :meth:`on_start` begins a new episode.

    ``access``: how the training root is reached (its newest model, where games go;
    default: the root on this disk, ``LocalRoot(root)``). ``greedy``: play the model's most
    likely strategy instead of sampling one. ``max_game_minutes``: leave a game still going
    after so many game minutes (a stalemate), saved as cut short. ``ladder``: play on the
    AI Arena ladder (:mod:`bgtrain.integrations.sc2.ladder`); its settings then give the
    root (its ``data_dir``), ``greedy`` (its ``play``) and ``max_game_minutes``.
    """

    def __init__(
        self,
        root: str | Path | TrainingRoot = DEFAULT_ROOT,
        *,
        decision_interval: float = 4.0,
        rewards: RewardSettings | None = None,
        actor: str | None = None,
        access: RootAccess | None = None,
        greedy: bool = False,
        max_game_minutes: float | None = None,
        ladder: LadderSettings | None = None,
    ) -> None:
        super().__init__()
        if ladder is not None:
            root, greedy = ladder.data_dir, ladder.play == "greedy"
            max_game_minutes = ladder.max_game_minutes
        self.training_root = TrainingRoot.at(root)
        self.decision_interval = decision_interval
        self.rewards = rewards or RewardSettings()
        self.greedy = greedy
        self.max_game_minutes = max_game_minutes
        self.ladder = Ladder(ladder) if ladder is not None else None
        self.strategy = Strategy.ECONOMY
        self.policy_version: int | None = None
        self._policy: Policy | UniformPolicy = UniformPolicy(len(Strategy))
        self._access = access or LocalRoot(self.training_root.path)
        self._actor = actor or default_actor()
        self._recorder = self._access.recorder(self._actor, ENV_NAME, compress=False)
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
        #: The bot left this game at its time limit (burnysc2 may step it once more).
        self._left = False
        self._game_steps = 0
        self._game_return = 0.0
        #: The last game saved (none yet).
        self.last_game: GameSummary | None = None

    # ------------------------------------------------------------------ for bot authors

    async def play(self, strategy: Strategy) -> None:
        """Each step: act on the chosen strategy. The default does nothing."""

    # ------------------------------------------------------------------ burnysc2 hooks

    async def on_start(self) -> None:
        """Each game's start. A subclass that overrides it must ``await super().on_start()``."""
        self.begin_game()
        if self.ladder is not None:  # before the model: it may recover a killed game
            self.ladder.game_started(getattr(self, "opponent_id", None), self._actor)
        self.load_newest_model()
        self._bases = self.townhalls.amount
        self._army_supply = self._current_army_supply()

    async def on_step(self, iteration: int) -> None:
        if self._left:
            return
        self._check_same_game(iteration)
        if self.max_game_minutes is not None and self.time >= self.max_game_minutes * 60:
            await self.leave_at_time_limit()
            return
        if self.time >= self._next_decision:
            self.decide()
            self._next_decision = self.time + self.decision_interval
        await self.play(self.strategy)

    async def on_end(self, game_result: Result) -> None:
        self.end_game(game_result)

    async def leave_at_time_limit(self) -> None:
        """The game went on past ``max_game_minutes``: save it as cut short, then leave
        (burnysc2 reports the leaver's defeat to ``on_end``, which the saved game ignores)."""
        self.abandon_game(f"the game time limit of {self.max_game_minutes:g} minutes was reached")
        self._left = True
        await self.client.leave()

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

    def reach_root_through(self, access: RootAccess) -> None:
        """Save games and load models through ``access`` from now on (a runner's, such as a
        cluster game's :class:`~bgtrain.runner.ray_engine.RemoteRoot`), whatever the
        subclass's ``__init__`` takes. Call it before the game starts."""
        self._recorder.close()
        self._access = access
        self._recorder = access.recorder(self._actor, ENV_NAME, compress=False)
        self._recorder.policy_version = self.policy_version
        self._recorder_closed = False

    def _reset_game(self) -> None:
        self._game_steps, self._game_return = 0, 0.0
        if self._recorder_closed:
            self._recorder = self._access.recorder(self._actor, ENV_NAME, compress=False)
            self._recorder.policy_version = self.policy_version
            self._recorder_closed = False
        self.strategy = Strategy.ECONOMY
        self._next_decision = 0.0
        self._pending = None
        self._reward = 0.0
        self._ended = False
        self._last_iteration = None
        self._left = False

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
        model = self._access.load_if_newer(self.policy_version)
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
            self._record(previous_state, action, self._reward + reward, logp)
            self._reward = 0.0
        action, logp = self._choose(state)
        self._pending = (state, action, logp)
        self.strategy = Strategy(action)
        if self.ladder is not None:
            self.ladder.decided(state, self.policy_version)
        return self.strategy

    def _choose(self, state: np.ndarray) -> tuple[int, float]:
        """The strategy and its log-probability under the play that chose it: a held
        opening or greedy play chooses for sure (probability 1), the model samples."""
        opening = self.ladder.opening_action(self.time) if self.ladder is not None else None
        if opening is not None:
            return opening, 0.0
        if self.greedy:
            return self._policy.act_greedy(state), 0.0
        return self._policy.act(state)

    def _record(self, state: np.ndarray, action: int, reward: float, logp: float) -> None:
        self._recorder.record(state, action, reward, logp)
        self._game_steps += 1
        self._game_return += reward
        if self.ladder is not None:
            self.ladder.recorded(state, action, reward, logp)

    def end_game(self, game_result: Result | str) -> Path | None:
        """The game is over: its last decision gets the end reward; the episode is saved."""
        if self._ended:
            return None
        self._ended = True
        if isinstance(game_result, str) and game_result in Result.__members__:
            game_result = Result[game_result]
        undecided = UNDECIDED_ENDINGS.get(game_result)  # type: ignore[call-overload]
        if undecided is not None:
            return self._finish("Tie", self.rewards.tie, terminated=False, reason=undecided)
        outcome = OUTCOMES.get(game_result, str(game_result))  # type: ignore[call-overload]
        bonus = {"Victory": self.rewards.victory, "Defeat": self.rewards.defeat}.get(
            outcome, self.rewards.tie
        )
        return self._finish(outcome, bonus, terminated=True)

    def abandon_game(self, reason: str = "the game ended without a result") -> Path | None:
        """The game crashed or was left early: save what was recorded, as cut short."""
        if self._ended:
            return None
        self._ended = True
        if self._pending is None and not self._recorder.steps:
            return None  # no decision of this game: nothing to save, nothing to say
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
            self._record(state, action, self._reward + reward + bonus, logp)
            self._pending = None
        if self.ladder is not None:
            meta = {**self.ladder.episode_meta(), **meta}
        path = self._recorder.finish(
            outcome,
            terminated=terminated,
            last_state=None if terminated else last_state,
            n_actions=len(Strategy),
            **meta,
        )
        self._recorder_closed = True
        self._recorder.close()  # waits for the write; the next game opens a new recorder
        if path is not None:
            self.last_game = GameSummary(
                outcome, terminated, self._game_steps, self._game_return, self.policy_version
            )
        if self.ladder is not None:  # after the write: a kill before it keeps the checkpoint
            self.ladder.game_ended(outcome, terminated)
        return path
