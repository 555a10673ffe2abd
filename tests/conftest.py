"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest

from bgtrain import TrainingRoot

from .helpers import bgtrain_cli, write_episode


@pytest.fixture
def one_torch_thread():
    """Tiny networks: one thread is faster than two fighting other processes for the cores,
    and makes the figures independent of the machine's core count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def short_run(tmp_path_factory) -> TrainingRoot:
    """A real root left by a short training run: games, a published model, metrics, logs,
    and games still waiting in buffer/. Shared (read-only) by the monitor and plot tests."""
    where = tmp_path_factory.mktemp("short_run")
    root = TrainingRoot(where / "root")
    result = bgtrain_cli(
        "run", "--root", root.path, "--games", "30", "--actors", "1", "--seed", "1",
        "--n-epochs", "2", "--no-until-solved", "--no-spare-actor",
        # Games pause while 4 wait (the default): the learner publishes during the run
        # however loaded the machine is (with no pause, 30 CartPole games can end before
        # its first batch does).
        "--max-waiting", "4", "--batch-steps", "none",
        cwd=where,
        timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert root.model_file.is_file() and root.metrics.is_file(), result.stdout
    # Games recorded after the learner stopped (a bot that plays on while no learner runs):
    # the run itself may leave none waiting.
    for i, outcome in enumerate(("Defeat", "Victory")):
        write_episode(root.buffer, f"game_20260101_000000_00{i}_a9_{outcome}.npz", tag=float(i))
    return root
