"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """Tiny networks: one thread is faster than two fighting other processes for the cores,
    and makes the figures independent of the machine's core count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
