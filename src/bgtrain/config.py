"""The learner's settings, each documented: one dataclass per role, torch-free.

Importing this costs nothing heavy, so the CLI can build its flags from these fields
and game processes can read them without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .safe_npz import MiB, SizeLimits
from .settings import setting


@dataclass(frozen=True)
class TrainerSettings:
    """Hyperparameters. The defaults learn the default game (CartPole-v1) out of the box."""

    learning_rate: float = setting(3e-4, "Adam step size")
    gamma: float = setting(0.99, "discount factor")
    gae_lambda: float = setting(0.95, "GAE / V-trace lambda")
    clip_range: float = setting(
        0.2, "PPO clip range of the ratio to the policy at the start of a batch"
    )
    ent_coef: float = setting(0.0, "entropy bonus coefficient")
    vf_coef: float = setting(0.5, "value loss coefficient")
    max_grad_norm: float = setting(0.5, "gradient norm clipping")
    n_epochs: int = setting(10, "passes over each batch")
    target_kl: float | None = setting(
        0.02,
        "stop a batch's epochs early once the KL to the starting policy passes "
        "1.5 x this (none: never)",
    )
    minibatch_size: int = setting(256, "samples per gradient step")
    rho_bar: float = setting(1.0, "truncation of the importance weights in the value targets")
    hidden_sizes: tuple[int, ...] = setting((64, 64), "hidden layer sizes of both networks")
    activation: str = setting("tanh", "hidden activation: tanh or relu")
    normalize_obs: bool = setting(True, "normalise observations with running statistics")
    seed: int | None = setting(None, "seed of the network initialisation and shuffling")


@dataclass(frozen=True)
class LearnerSettings(TrainerSettings):
    """The learner's knobs (the seed's hard-coded ones, with its values) and hyperparameters."""

    batch_files: int = setting(10, "most files in one training batch (the seed's 10)")
    batch_steps: int | None = setting(
        512,
        "most steps in one batch (but always one file): small batches mean more updates "
        "per game played (none: no limit)",
    )
    poll_interval: float = setting(5.0, "seconds between buffer checks when no file event comes")
    report_interval: float = setting(30.0, "seconds between STATUS REPORT blocks (verbose)")
    max_file_age: float = setting(3600.0, "seconds after which a waiting file goes to stale/")
    max_policy_lag: int | None = setting(
        25, "files played more than this many versions behind go to stale/ (none: no limit)"
    )
    max_workers: int = setting(1, "threads that load and validate files while training runs")
    n_actions: int | None = setting(None, "number of actions (default: from the games' files)")
    history_size: int = setting(50, "model versions kept in models/history/")
    max_file_mb: int = setting(64, "largest episode file accepted, MiB")
    max_unpacked_mb: int = setting(256, "largest episode once unpacked, MiB")
    torch_threads: int | None = setting(
        1, "torch CPU threads: small MLPs train fastest on one (none: torch's choice)"
    )
    verbose: bool = setting(True, "print the seed's STATUS REPORT and batch lines")

    @property
    def size_limits(self) -> SizeLimits:
        return SizeLimits(self.max_file_mb * MiB, self.max_unpacked_mb * MiB)
