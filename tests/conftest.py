"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest

from bgtrain import TrainingRoot

from .helpers import bgtrain_cli


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
    """A real root left by a short training run: games, a published model, metrics, logs.
    Shared (read-only) by the monitor and plot tests."""
    where = tmp_path_factory.mktemp("short_run")
    root = TrainingRoot(where / "root")
    result = bgtrain_cli(
        "run", "--root", root.path, "--games", "30", "--actors", "1", "--seed", "1",
        "--n-epochs", "2", "--no-until-solved",
        # Games never pause for the learner (--max-waiting 0), so they run ahead of it and
        # some are still waiting when the run stops.
        "--max-waiting", "0", "--batch-steps", "none",
        cwd=where,
        timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert root.model_file.is_file() and root.metrics.is_file(), result.stdout
    return root
