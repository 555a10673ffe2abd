"""Small builders shared by the tests (real files, real folders; nothing mocked)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bgtrain.store.episode import build_episode, save_episode
from bgtrain.store.models import ModelMeta


def write_episode(
    folder: Path, name: str, steps: int = 5, obs_dim: int = 4, tag: float = 0.0, **kwargs
) -> Path:
    """A valid episode whose rewards all equal ``tag`` (so it can be recognised later)."""
    folder.mkdir(parents=True, exist_ok=True)
    episode = build_episode(
        np.full((steps, obs_dim), tag, dtype=np.float32),
        np.zeros(steps, dtype=np.int64),
        np.full(steps, tag, dtype=np.float32),
        **kwargs,
    )
    return save_episode(episode, folder / name)


def tiny_model(value: float = 0.0, obs_dim: int = 4, n_actions: int = 2):
    """Arrays and meta of a stand-in model: every weight equals ``value``."""
    arrays = {
        "w0": np.full((obs_dim, 8), value, dtype=np.float32),
        "b0": np.full(8, value, dtype=np.float32),
    }
    return arrays, ModelMeta(version=0, obs_dim=obs_dim, n_actions=n_actions)


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> None:
    """Poll ``predicate`` every 10 ms; fail with a clear message at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        threading.Event().wait(0.01)


def group_members(pgid: int) -> list[str]:
    """Live (non-zombie) processes of process group ``pgid``, as ``pid: cmdline``."""
    if not Path("/proc/self/stat").exists():  # no procfs: ask the kernel about the group
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [f"process group {pgid}"]
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(f"{entry.name}: {cmdline.strip()}")
    return members


def assert_no_stray_process(pgid: int, timeout: float = 10.0) -> None:
    """Every process of a run's session is gone (helpers such as multiprocessing's
    resource tracker exit on their own once the run is gone: allow them ``timeout``)."""
    deadline = time.monotonic() + timeout
    while members := group_members(pgid):
        if time.monotonic() >= deadline:
            pytest.fail(f"processes left behind by the run: {members}")
        threading.Event().wait(0.05)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI the tests start: the user's, with UTF-8 output whatever the
    locale (file names such as ``ünïcödé`` print everywhere), plus ``extra``."""
    return {**os.environ, "PYTHONIOENCODING": "utf-8", **extra}


def bgtrain_argv(*args: str | Path) -> list[str]:
    """The command line of ``python -m bgtrain ARGS``, for a process a test drives itself
    (``subprocess.Popen``, a terminal); :func:`bgtrain_cli` runs one to its end."""
    return [sys.executable, "-m", "bgtrain", *map(str, args)]


def bgtrain_cli(
    *args: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``python -m bgtrain ARGS`` as a user would run it, in ``cwd``, with ``env`` (default:
    :func:`cli_env`); stdout and stderr captured as UTF-8 text; a hang fails at ``timeout``."""
    return subprocess.run(
        bgtrain_argv(*args),
        cwd=cwd,
        env=env if env is not None else cli_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )
