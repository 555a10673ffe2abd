"""The game loop of one game process: play, record, pull the newest model between games.

numpy only (guarantee: game processes never import torch). Stops when the shared stop
event is set: a game in progress is then saved as cut short (``terminated=False``).
"""

from __future__ import annotations

import logging
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from bgtrain.errors import BgtrainError, GameStepError
from bgtrain.game.gymnasium_games import (
    GameInfo,
    check_model_fits,
    checked_observation,
    checked_reward,
    info_of_env,
    make_env,
    outcome_of,
)
from bgtrain.game.policy import Policy, UniformPolicy
from bgtrain.game.recorder import EpisodeRecorder
from bgtrain.game.root_access import PACING_POLL_S, LocalRoot, RootAccess
from bgtrain.store.safe_npz import MiB, SizeLimits, human_bytes

logger = logging.getLogger(__name__)

#: How often a spare game process looks whether the learner idles (its heartbeat is
#: rewritten every second: looking more often would only read the same file).
SPARE_POLL_S = 0.1
#: Game ``n`` of a seeded game process resets its game with ``seed + n * this`` (a prime:
#: the processes' seeds are 1000 apart, see ``bgtrain.runner.session.actor_seed``).
GAME_SEED_STRIDE = 7919
#: The policy a seeded game process picks up before its game ``n`` samples its actions
#: seeded ``seed + n * this`` (another generator than the game's: no need to stride apart).
POLICY_SEED_STRIDE = 1
#: Bytes a saved game's file holds per step at the least, beside its state (float32 per
#: value): its action (int64) and its reward (float32). Log-probabilities and headers add
#: more, so a game over a limit by this count is over it for sure.
STEP_BYTES_BESIDE_STATE = 8 + 4


class StopFlag(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class GameSlots(Protocol):
    """A shared budget of games: ``take()`` is False when none is left."""

    def take(self) -> bool: ...

    def spent(self) -> bool:
        """No game is left (a spare game process waiting for its turn then gives up)."""
        ...


@dataclass(frozen=True)
class ActorConfig:
    root: Path
    env: str
    actor_id: int
    seed: int | None = None
    compress: bool = False
    #: Pause before a new game while this many games already wait in the buffer (none:
    #: never). A simulator can outrun any learner; games it cannot train on in time only
    #: go stale, and their CPU is the learner's on a small machine.
    max_waiting: int | None = None
    #: A game still going after this many steps is saved as cut short (none: the game's
    #: own limit, else gymnasium_games.DEFAULT_STEP_LIMIT).
    max_game_steps: int | None = None
    #: A spare game process plays only while the learner waits for games (its heartbeat
    #: says idle and no game waits in the buffer): on a slow game the learner idles and
    #: its core plays too; on a fast one the learner's core stays the learner's.
    spare: bool = False
    #: The learner's size limits (``max_file_mb``, ``max_unpacked_mb``): a game saved
    #: over them stops the game loop with a :class:`GameProcessError` saying what to do,
    #: since the learner sets every such game aside (none: not checked here).
    limits: SizeLimits | None = None
    #: The episode files' actor field (none: ``a<actor_id>``). A cluster's game adds its
    #: machine and process: a replaced game must never reuse a name its predecessor sent.
    actor_tag: str | None = None
    #: A paused game loop asks the root for room, which looks for up to ``room_wait_s``
    #: (a remote root waits on its side: one round trip per look), then waits
    #: ``pacing_poll_s`` here, where a stop wakes it.
    room_wait_s: float = 0.0
    pacing_poll_s: float = PACING_POLL_S
    spare_poll_s: float = SPARE_POLL_S

    #: The game loop a cluster's engine runs, ``package.module:function`` with
    #: :func:`run_games`'s arguments (none: :func:`run_games`, Gymnasium games), and what
    #: that loop needs beside this config (StarCraft II: its run's settings).
    loop: str | None = None
    options: Any = None

    @property
    def actor_name(self) -> str:
        return self.actor_tag or f"a{self.actor_id}"


class GameReport(NamedTuple):
    """Sent to the run after every game played, saved or refused."""

    actor_id: int
    total_reward: float
    length: int
    policy_version: int | None
    outcome: str
    terminated: bool
    finished_at: float
    #: Why the game was refused and not saved (a :class:`GameStepError`); ``""``: the
    #: game was handed to the recorder.
    refused: str = ""
    #: The machine that played it (a cluster's engine says; ``""``: this one).
    machine: str = ""


class UnsavedGame(NamedTuple):
    """Sent when a game handed to the recorder could not be written after all."""

    actor_id: int
    name: str
    reason: str


class GameProcessError(NamedTuple):
    """Sent by a game process that cannot go on (e.g. a model that does not fit the game):
    the run stops and prints ``message`` as one error line."""

    actor_id: int
    message: str


Report = GameReport | UnsavedGame | GameProcessError


class ReportSink(Protocol):
    """Where a game loop sends its reports: a queue (a process's, a thread's...)."""

    def put(self, item: Report, /) -> None: ...


class _Game(NamedTuple):
    total_reward: float
    terminated: bool
    last_obs: np.ndarray
    step_info: dict[str, Any]


def nth_seed(seed: int | None, n: int, stride: int) -> int | None:
    """The seed of the ``n``-th game (from 0) of a game process seeded ``seed`` (``None``:
    random, and so is this one)."""
    return None if seed is None else seed + n * stride


def play(
    config: ActorConfig,
    stop: StopFlag,
    slots: GameSlots,
    report: ReportSink,
    access: RootAccess | None = None,
) -> int:
    """Play games until ``stop`` or no slot is left; returns the number of games saved.
    ``access``: how the root is reached (default: :class:`LocalRoot` of ``config.root``).

    A game that returns what a recorded game cannot hold (:class:`GameStepError`) is
    refused: nothing of it is saved, the run is told why, and the next game starts.
    """
    env = make_env(config.env)
    info = info_of_env(env, config.env)
    limit = info.step_limit(config.max_game_steps)
    root = access or LocalRoot(config.root)
    policy: Policy | UniformPolicy = UniformPolicy(info.n_actions, seed=config.seed)
    recorder = root.recorder(config.actor_name, config.env, config.compress)
    played = saved = 0
    try:
        while (
            not stop.is_set()
            and _wait_for_room(config, stop, root, recorder, slots)
            and slots.take()
        ):
            policy = _newest_policy(root, policy, info, config, recorder, played)
            seed = nth_seed(config.seed, played, GAME_SEED_STRIDE)
            try:
                game = _play_one(env, info, policy, recorder, stop, limit, seed)
            except GameStepError as exc:
                played += 1
                report.put(_refused(config, policy, recorder.discard(), exc))
                continue
            if recorder.steps == 0:
                break
            done = _save(game, info, config, policy, recorder)
            report.put(done)
            played += 1
            saved += 1
            saved -= _report_unsaved(recorder.take_failures(), config.actor_id, report)
            check_episode_size(config, info, done.length)
    finally:
        try:
            recorder.wait()
            saved -= _report_unsaved(recorder.take_failures(), config.actor_id, report)
        finally:
            recorder.close()
            env.close()
    return saved


def _newest_policy(
    root: RootAccess,
    policy: Policy | UniformPolicy,
    info: GameInfo,
    config: ActorConfig,
    recorder: EpisodeRecorder,
    played: int,
) -> Policy | UniformPolicy:
    """The policy of the newest model if one newer than ``policy``'s was published."""
    model = root.load_if_newer(policy.version)
    if model is None:
        return policy
    # A model of another shape (a root shared with another game, a rollback to a foreign
    # model) would fail deep in numpy: refuse it by name.
    check_model_fits(model.meta, info, config.root)
    newest = Policy.from_model(model)
    newest.seed(nth_seed(config.seed, played, POLICY_SEED_STRIDE))
    recorder.policy_version = model.version
    return newest


def _refused(
    config: ActorConfig, policy: Policy | UniformPolicy, length: int, exc: GameStepError
) -> GameReport:
    return GameReport(
        config.actor_id,
        math.nan,
        length,
        policy.version,
        "Refused",
        False,
        time.time(),
        refused=str(exc),
    )


def _save(
    game: _Game,
    info: GameInfo,
    config: ActorConfig,
    policy: Policy | UniformPolicy,
    recorder: EpisodeRecorder,
) -> GameReport:
    """Hand the game to the recorder; a game stopped mid-way, or past the step limit, is
    saved all the same, as cut short, with its last state (the learner bootstraps from it)."""
    length = recorder.steps
    outcome = outcome_of(game.total_reward, game.step_info, info.reward_threshold)
    recorder.finish(
        outcome,
        terminated=game.terminated,
        last_state=None if game.terminated else game.last_obs,
        n_actions=info.n_actions,
    )
    return GameReport(
        config.actor_id,
        game.total_reward,
        length,
        policy.version,
        outcome,
        game.terminated,
        time.time(),
    )


def _play_one(
    env: Any,
    info: GameInfo,
    policy: Policy | UniformPolicy,
    recorder: EpisodeRecorder,
    stop: StopFlag,
    limit: int,
    seed: int | None,
) -> _Game:
    """One game, recorded step by step, until it ends, ``stop`` or ``limit`` steps.

    The game is sent ``info.action_start + i`` for action index ``i``: files and models
    hold indices 0..n-1 whatever the game's own range (``Discrete(n, start)``).
    """
    obs, _ = env.reset(seed=seed)
    state = checked_observation(obs, info, 0)
    total, terminated, step_info = 0.0, False, {}
    step = 0
    while not stop.is_set() and step < limit:
        action, logp = policy.act(state)
        next_obs, reward, terminated, truncated, step_info = env.step(info.action_start + action)
        step += 1
        value = checked_reward(reward, info, step)
        next_state = checked_observation(next_obs, info, step)
        recorder.record(state, action, value, logp)
        total += value
        state = next_state
        if terminated or truncated:
            break
    return _Game(total, bool(terminated), state, step_info)


def check_episode_size(config: ActorConfig, info: GameInfo, steps: int) -> None:
    """Refuse to play on when a game of ``steps`` steps makes a file over the learner's
    limits: it would set each such game aside (``quarantine/``) and the model would never
    leave v0. The game just saved stays where the learner finds it.

    Raises:
        BgtrainError: the sizes, and what to do (raise the limit, shrink the observation).
    """
    if config.limits is None:
        return
    size = steps * (info.obs_dim * 4 + STEP_BYTES_BESIDE_STATE)
    limits = {"--max-unpacked-mb": config.limits.max_unpacked_bytes}
    if not config.compress:  # an uncompressed file holds every byte of its arrays
        limits = {"--max-file-mb": config.limits.max_file_bytes, **limits}
    over = {flag: limit for flag, limit in limits.items() if size > limit}
    if not over:
        return
    needed = math.ceil(size / MiB) + 1
    raise BgtrainError(
        f"a game of {config.env} ({steps} steps of {info.obs_dim} observation values) makes "
        f"an episode file of at least {human_bytes(size)}, over the learner's "
        + " and ".join(f"{flag} {limit // MiB}" for flag, limit in over.items())
        + "; the learner sets such games aside in quarantine/ and the model would stay v0. "
        + "Raise "
        + " and ".join(f"{flag} to {needed}" for flag in over)
        + " or more, or shrink the observation (a smaller or grayscale image, a wrapper)"
    )


def _report_unsaved(
    failures: list[tuple[Path, BaseException]], actor_id: int, report: ReportSink
) -> int:
    for path, exc in failures:
        report.put(UnsavedGame(actor_id, path.name, str(exc)))
    return len(failures)


def _wait_for_room(
    config: ActorConfig,
    stop: StopFlag,
    root: RootAccess,
    recorder: EpisodeRecorder,
    slots: GameSlots,
) -> bool:
    """Wait while ``max_waiting`` games wait for the learner; ``False`` if stopped meanwhile.

    The games still being written count too: a game faster than the disk (CartPole on a
    busy machine) would otherwise race ahead of a learner it never sees waiting, and play
    a whole run before the first model is published.
    """
    if config.spare:
        while not _learner_waits_for_games(root, recorder):
            if slots.spent() or stop.wait(config.spare_poll_s):
                return False
    if config.max_waiting is None:
        return True
    while not root.room(config.max_waiting, recorder.pending, config.room_wait_s):
        if stop.wait(config.pacing_poll_s):
            return False
    return True


def _learner_waits_for_games(root: RootAccess, recorder: EpisodeRecorder) -> bool:
    """The learner idles with nothing to train on: a spare game process may play."""
    return not recorder.pending and not root.waiting() and root.learner_idle()


def run_games(
    config: ActorConfig,
    stop: StopFlag,
    slots: GameSlots,
    report: ReportSink,
    access: RootAccess | None = None,
) -> None:
    """The game loop as an engine runs it (a process, a thread, a cluster's worker):
    :func:`play`, and an error bgtrain raises on purpose goes to the run as one
    :class:`GameProcessError` line, not a traceback."""
    try:
        play(config, stop, slots, report, access)
    except BgtrainError as exc:
        report.put(GameProcessError(config.actor_id, str(exc)))


def actor_process_main(config: ActorConfig, stop: Any, slots: Any, report: Any) -> None:
    """Entry point of a local game process: Ctrl+C is the run's to handle (it sets ``stop``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run_games(config, stop, slots, report)
