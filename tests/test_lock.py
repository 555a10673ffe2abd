"""Guarantee 5: one learner per root; a dead holder never blocks the next learner."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bgtrain import LearnerLock, LearnerLockedError
from bgtrain.lock import read_holder

HOLD_LOCK = (
    "import sys\n"
    "from bgtrain import LearnerLock\n"
    "lock = LearnerLock(sys.argv[1]).acquire()\n"
    "print('READY', flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def holder(tmp_path):
    """A learner-lock holder in another process, ready when yielded."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "READY"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    proc.stdin.close()
    proc.stdout.close()


def test_second_learner_is_refused_with_the_holders_pid(tmp_path, holder):
    with pytest.raises(LearnerLockedError) as exc:
        LearnerLock(tmp_path).acquire()
    message = str(exc.value)
    assert f"pid {holder.pid} on " in message
    assert message.startswith(f"another learner already holds {tmp_path} (")
    assert message.endswith("stop it first, or use another --root")
    assert exc.value.holder_pid == holder.pid


def test_lock_left_by_a_killed_process_does_not_block(tmp_path, holder):
    holder.kill()  # SIGKILL: no clean-up code runs
    holder.wait(timeout=10)
    lock = LearnerLock(tmp_path).acquire()
    try:
        assert lock.is_held
        assert read_holder(tmp_path)["pid"] == os.getpid()
    finally:
        lock.release()


def test_released_lock_can_be_taken_again_and_records_the_holder(tmp_path):
    with LearnerLock(tmp_path, role="learner") as lock:
        assert lock.is_held
        holder = read_holder(tmp_path)
        assert holder["pid"] == os.getpid()
        assert holder["role"] == "learner"
        assert holder["started_at"]
        with pytest.raises(LearnerLockedError):
            LearnerLock(tmp_path).acquire()  # a second learner in the same process too
    assert not lock.is_held
    with LearnerLock(tmp_path) as again:
        assert again.is_held


def test_rollback_is_refused_while_a_learner_runs(tmp_path, holder):
    out = subprocess.run(
        [sys.executable, "-m", "bgtrain", "rollback", "--root", str(tmp_path), "1"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert out.stderr.startswith(
        f"error: another learner already holds {tmp_path} (pid {holder.pid}"
    )
