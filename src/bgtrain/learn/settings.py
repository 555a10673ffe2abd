"""The learner's settings, each documented: one dataclass per role, torch-free.

Importing this costs nothing heavy, so the CLI can build its flags from these fields
and game processes can read them without importing torch. Each field declares the
values it allows; a settings object checks them when made (flags, a TOML file and
keyword arguments alike), so a bad value is refused before anything starts.

:class:`LearnerSettings` *holds* the algorithm's settings (:class:`PPOSettings`, the
model's hyperparameters, recorded in every model it publishes) beside its own (files,
threads, timing, and ``max_piece_steps``: the pipeline splits longer games, and the
registry hands the value to the algorithm). Flags, TOML keys and the README table name
them all flat (``--learning-rate``, ``learning_rate = ...`` under ``[learner]``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bgtrain.common.settings import (
    at_least,
    between,
    check_settings,
    flat_settings,
    greater_than,
    held,
    one_of,
    setting,
)
from bgtrain.store.model_layout import ACTIVATIONS, DEFAULT_ACTIVATION
from bgtrain.store.safe_npz import MiB, SizeLimits

#: Seeds go to numpy, torch and Gymnasium: an unsigned 32-bit number suits all three.
SEED_RANGE = between(0, 2**32 - 1)
#: The learner waits on events with these timeouts: beyond an hour a poll is no poll,
#: and a huge one overflows the platform's wait limit (49 days on Windows).
POLL_RANGE = greater_than(0, 3600)
#: The default of ``max_piece_steps``: also the piece length of an algorithm made without
#: a learner's settings (RLAgent, a benchmark).
MAX_PIECE_STEPS = 4096


@dataclass(frozen=True)
class PPOSettings:
    """The hyperparameters of PPO with V-trace (algorithm ``ppo-vtrace``). The defaults
    learn the default game (CartPole-v1) out of the box."""

    learning_rate: float = setting(3e-4, "Adam step size", greater_than(0, 1))
    gamma: float = setting(0.99, "discount factor", between(0, 1))
    gae_lambda: float = setting(0.95, "GAE / V-trace lambda", between(0, 1))
    clip_range: float = setting(
        0.2,
        "PPO clip range of the ratio to the policy at the start of a batch",
        greater_than(0),
    )
    ent_coef: float = setting(0.0, "entropy bonus coefficient", at_least(0))
    vf_coef: float = setting(0.5, "value loss coefficient", at_least(0))
    max_grad_norm: float = setting(0.5, "gradient norm clipping", greater_than(0))
    n_epochs: int = setting(10, "passes over each batch", at_least(1))
    target_kl: float | None = setting(
        0.02,
        "stop a batch's epochs early once the KL to the starting policy passes "
        "1.5 x this (none: never)",
        greater_than(0),
    )
    minibatch_size: int = setting(256, "samples per gradient step", at_least(1))
    rho_bar: float = setting(
        1.0,
        "truncation of the importance weights, in the value targets and in the policy "
        "loss's weight of each sample",
        greater_than(0),
    )
    hidden_sizes: tuple[int, ...] = setting(
        (64, 64), "hidden layer sizes of both networks", at_least(1)
    )
    activation: str = setting(
        DEFAULT_ACTIVATION, f"hidden activation: {' or '.join(ACTIVATIONS)}", one_of(*ACTIVATIONS)
    )
    normalize_obs: bool = setting(True, "normalise observations with running statistics")
    seed: int | None = setting(None, "seed of the network initialisation and shuffling", SEED_RANGE)

    def __post_init__(self) -> None:
        check_settings(self)


@flat_settings
@dataclass(frozen=True)
class LearnerSettings:
    """The learner's knobs (the seed's hard-coded ones, with its values), holding the
    algorithm's hyperparameters in ``ppo``. Every setting, held ones too, is also a keyword
    argument and an attribute by its own name: ``LearnerSettings(gamma=0.9).gamma``."""

    # held() is a dataclasses.field with a default_factory (ruff cannot see it).
    ppo: PPOSettings = held(PPOSettings, "the hyperparameters of PPO with V-trace")  # noqa: RUF009
    # First of the learner's own, where it stood (last of PPO's) before it moved here:
    # flags, TOML keys and README rows keep their order.
    max_piece_steps: int = setting(
        MAX_PIECE_STEPS,
        "longest piece of an episode handled at once: a longer game is cut into pieces "
        "(each bootstrapping from the value where it is cut), so that memory stays bounded "
        "and a stop never waits on one huge game",
        at_least(1),
    )
    batch_files: int = setting(10, "most files in one training batch (the seed's 10)", at_least(1))
    batch_steps: int | None = setting(
        512,
        "most steps in one batch (but always one file): small batches mean more updates "
        "per game played (none: no limit)",
        at_least(1),
    )
    poll_interval: float = setting(
        5.0, "seconds between buffer checks when no file event comes", POLL_RANGE
    )
    report_interval: float = setting(
        30.0, "seconds between STATUS REPORT blocks (verbose)", greater_than(0)
    )
    max_file_age: float = setting(
        3600.0, "seconds after which a waiting file goes to stale/", greater_than(0)
    )
    max_policy_lag: int | None = setting(
        25,
        "files played more than this many versions behind go to stale/ (none: no limit)",
        at_least(0),
    )
    replay_passes: int = setting(
        3,
        "times each published batch is trained again beside later batches, off-policy "
        "corrected (sample reuse as in GePPO; 0: each game is trained once)",
        at_least(0),
    )
    replay_max_lag: int = setting(
        8,
        "a batch is trained again only while the model is at most this many versions past "
        "the one that first trained it",
        at_least(0),
    )
    replay_max_steps: int = setting(8192, "most samples kept in memory for replay", at_least(1))
    guard_games: int | None = setting(
        20,
        "collapse guard: games per window; once a window of games played after the best "
        "version averages far below the best window, the learner goes back to the best "
        "version's weights (none: no guard)",
        at_least(1),
    )
    guard_drop: float = setting(
        0.75,
        "collapse guard: share of the progress from the first window to the best that a "
        "window must lose to count as a collapse",
        between(0.01, 1),
    )
    settle_time: float = setting(
        5.0,
        "seconds a file that fails to load must stay unchanged before it is quarantined: "
        "a file still being copied in place is put back and retried",
        between(0, 3600),
    )
    stale_temp_age: float = setting(
        900.0,
        "writers' dot-temp files in buffer/ older than this many seconds are removed "
        "(their writer died mid-write; they never were episodes)",
        greater_than(0),
    )
    max_workers: int = setting(
        1, "threads that load and validate files while training runs", at_least(1)
    )
    n_actions: int | None = setting(
        None, "number of actions (default: from the games' files)", at_least(1)
    )
    history_size: int = setting(
        50,
        "model versions kept in models/history/ (recorded in the root: bgtrain rollback and "
        "RLAgent.save_model keep as many)",
        at_least(1),
    )
    max_file_mb: int = setting(64, "largest episode file accepted, MiB", at_least(1))
    max_unpacked_mb: int = setting(256, "largest episode once unpacked, MiB", at_least(1))
    torch_threads: int | None = setting(
        1,
        "torch CPU threads: small MLPs train fastest on one (none: torch's choice)",
        at_least(1),
    )
    verbose: bool = setting(True, "print the seed's STATUS REPORT and batch lines")

    def __post_init__(self) -> None:
        check_settings(self)

    @property
    def size_limits(self) -> SizeLimits:
        return SizeLimits(self.max_file_mb * MiB, self.max_unpacked_mb * MiB)
