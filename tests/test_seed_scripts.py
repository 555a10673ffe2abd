"""The seed system's scripts, run the way its users run them: from the repository root
(``python run_with_training.py``) and ``python tools/test_background_training.py``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bgtrain import ModelStore, TrainingRoot

from .helpers import group_members

REPO = Path(__file__).resolve().parent.parent


def run_script(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout=120):
    """Run a script in its own session; fail on a hang or on a process left behind."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{args} did not end within {timeout} s:\n{out}\n{err}")
    deadline = time.monotonic() + 10
    while members := group_members(proc.pid):
        if time.monotonic() >= deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"{args} left processes behind: {members}")
        threading.Event().wait(0.05)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX sessions")
def test_run_with_training_takes_the_seed_flags_from_the_repository_root(tmp_path):
    root = TrainingRoot(tmp_path / "root")
    result = run_script(
        [
            "run_with_training.py", "--max_games", "6", "--lr", "0.0005", "--root", str(root.path),
            "--actors", "1", "--no-until-solved", "--n-epochs", "1",
        ],
        cwd=REPO,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "[OK] Background parallel learner initialized and started" in lines
    assert any(line.startswith("Games played:       6 in ") for line in lines), result.stdout
    model = ModelStore(root.path).load()
    assert model.meta.hyperparameters["learning_rate"] == 0.0005
    assert model.meta.hyperparameters["n_epochs"] == 1


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX sessions")
def test_the_seed_test_suite_passes_and_never_touches_local_training(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "TMPDIR": str(temp)}

    result = run_script([str(REPO / "tools" / "test_background_training.py")], tmp_path, env)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for n in range(1, 5):
        assert f"\u2713 Test {n} PASSED" in lines, result.stdout
    assert "ALL TESTS PASSED \u2713" in lines, result.stdout
    assert not (tmp_path / "local_training").exists()
    assert list(temp.rglob("local_training")) == []  # its temporary roots are removed
