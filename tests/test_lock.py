"""Guarantee 5: one learner per root; a dead holder never blocks the next learner."""

from __future__ import annotations

import errno
import multiprocessing
import os
import subprocess
import sys
from typing import Any

import pytest
from filelock import FileLock

import bgtrain.store.lock as lock_module
from bgtrain import LearnerLock, LearnerLockedError, TrainingRoot
from bgtrain.errors import RootError
from bgtrain.store.lock import read_holder

from .helpers import bgtrain_cli

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
    out = bgtrain_cli("rollback", "--root", tmp_path, "1", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith(
        f"error: another learner already holds {tmp_path} (pid {holder.pid}"
    )


def _start_at_once(root: str, barrier: Any, results: Any, release: Any) -> None:
    """One of many learners started at the same instant (runs in its own process)."""
    barrier.wait(timeout=30)
    try:
        lock = LearnerLock(root).acquire()
    except LearnerLockedError as exc:
        results.put(("refused", os.getpid(), str(exc), exc.holder_pid))
        return
    results.put(("won", os.getpid(), "", None))
    release.wait(timeout=60)
    lock.release()


def test_simultaneous_starts_name_the_live_winner_not_a_dead_holder(tmp_path, holder):
    holder.kill()  # leaves a holder record naming a dead pid
    holder.wait(timeout=10)
    assert read_holder(tmp_path)["pid"] == holder.pid
    # fork where the OS has it: a dozen spawned interpreters would take seconds to start
    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    starts = 12
    barrier, results, release = ctx.Barrier(starts), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_start_at_once, args=(str(tmp_path), barrier, results, release))
        for _ in range(starts)
    ]
    for proc in procs:
        proc.start()
    try:
        outcomes = [results.get(timeout=30) for _ in range(starts)]
    finally:
        release.set()
        for proc in procs:
            proc.join(timeout=30)
    winners = [pid for kind, pid, _, _ in outcomes if kind == "won"]
    assert len(winners) == 1, outcomes
    refusals = [(message, holder_pid) for kind, _, message, holder_pid in outcomes if kind != "won"]
    assert len(refusals) == starts - 1
    named = [(f"(pid {winners[0]} on " in message, holder_pid) for message, holder_pid in refusals]
    assert named == [(True, winners[0])] * (starts - 1), refusals


def test_a_start_stuck_inside_the_gate_is_refused_once_the_gate_times_out(tmp_path, monkeypatch):
    monkeypatch.setattr(lock_module, "GATE_TIMEOUT_S", 0.2)
    state = TrainingRoot(tmp_path).state
    state.mkdir(parents=True)
    stuck = FileLock(state / lock_module.GATE_NAME, thread_local=False)  # a stopped start
    stuck.acquire()
    try:
        with pytest.raises(LearnerLockedError) as exc:
            LearnerLock(tmp_path).acquire()
    finally:
        stuck.release()
    assert str(exc.value) == (
        f"another learner has been starting on {tmp_path} for over 0.2 s (it holds "
        f"{state / 'learner.start.lock'}: a stopped process?); stop it first, or use another --root"
    )
    assert exc.value.holder_pid is None
    with LearnerLock(tmp_path) as lock:  # the gate free again: starts work
        assert lock.is_held


def test_a_holder_record_that_cannot_be_written_gives_a_root_error_and_frees_the_lock(tmp_path):
    state = TrainingRoot(tmp_path).state
    (state / "learner.json").mkdir(parents=True)  # the record cannot replace a folder
    with pytest.raises(RootError) as exc:
        LearnerLock(tmp_path).acquire()
    assert str(exc.value) == (
        f"cannot take the learner lock in {state} ({os.strerror(errno.EISDIR)}): the root must "
        "be a writable folder with free space; fix it or use another --root"
    )
    (state / "learner.json").rmdir()
    with LearnerLock(tmp_path) as lock:  # not left held by the failed start
        assert lock.is_held
        assert read_holder(tmp_path)["pid"] == os.getpid()


def test_a_root_that_is_a_file_gives_a_root_error(tmp_path):
    root = tmp_path / "root"
    root.write_text("a file, not a folder", encoding="utf-8")
    with pytest.raises(RootError) as exc:
        LearnerLock(root).acquire()
    assert str(exc.value) == (
        f"cannot take the learner lock in {root / 'state'} ({os.strerror(errno.ENOTDIR)}): "
        "the root must be a writable folder with free space; fix it or use another --root"
    )
