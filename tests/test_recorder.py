"""The game-side recorder: cheap ``record()``, ``finish()`` that never waits on the disk,
complete files with names that never clash (guarantee 1)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import bgtrain.game.recorder as recorder_module
from bgtrain import EpisodeRecorder, EpisodeWriteError, InvalidEpisodeError, TrainingRoot
from bgtrain.store.episode import load_episode

NAME = re.compile(r"^game_(\d{8}_\d{6})_(\d{3})_([A-Za-z0-9-]+)_(Victory|Defeat|Tie)\.npz$")
WAIT_S = 10


def buffer_of(tmp_path: Path) -> Path:
    return TrainingRoot(tmp_path / "root").buffer


def leftovers(folder: Path) -> list[str]:
    """Dot-named (temp) entries left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def one_step_game(rec: EpisodeRecorder, tag: float = 0.0, outcome: str = "Victory", **meta):
    rec.record([tag, 1.0, 2.0], 1, tag)
    return rec.finish(outcome, **meta)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch):
    """Makes the recorder's disk writes wait until ``gate.release`` is set.

    The first ``gate.passes`` writes go through; ``gate.started`` is set when a write
    blocks (the single writer thread has finished every earlier job by then).
    """
    state = SimpleNamespace(started=threading.Event(), release=threading.Event(), passes=0)
    real_write = recorder_module.EpisodeRecorder._write_synced

    def slow_write(path, data):
        if state.passes > 0:
            state.passes -= 1
        else:
            state.started.set()
            if not state.release.wait(WAIT_S):
                raise TimeoutError("the test never released the writer")
        real_write(path, data)

    monkeypatch.setattr(recorder_module.EpisodeRecorder, "_write_synced", staticmethod(slow_write))
    yield state
    state.release.set()


# --------------------------------------------------------------------------- one game


def test_recorded_game_is_a_valid_episode_with_everything_recorded(tmp_path: Path) -> None:
    states = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    actions = [0, 2, 1, 2]
    rewards = [0.5, -1.0, 0.0, 2.25]
    logp = [-0.1, -1.5, -0.7, -0.01]
    t0 = datetime.now().replace(microsecond=0)

    with EpisodeRecorder(
        tmp_path / "root", actor="bot_7/a", env="CartPole-v1", policy_version=3
    ) as rec:
        for s, a, r, lp in zip(states, actions, rewards, logp, strict=True):
            rec.record(s, a, r, lp)
        assert rec.steps == 4
        path = rec.finish("Defeat", terminated=False, last_state=[9.0, 8.0, 7.0], map="Arena")
        assert rec.steps == 0
        written = rec.flush()

    t1 = datetime.now()
    assert written == [path]
    assert path.parent == buffer_of(tmp_path)
    match = NAME.match(path.name)
    assert match, path.name
    stamp = datetime.strptime(match[1], "%Y%m%d_%H%M%S") + timedelta(milliseconds=int(match[2]))
    assert t0 <= stamp <= t1 + timedelta(milliseconds=2)
    assert match[3] == "bot-7-a"  # characters unsafe in a name are replaced
    assert match[4] == "Defeat"

    episode = load_episode(path)
    np.testing.assert_array_equal(episode.states, states.astype(np.float32))
    assert episode.states.dtype == np.float32
    np.testing.assert_array_equal(episode.actions, actions)
    assert episode.actions.dtype == np.int64
    np.testing.assert_array_equal(episode.rewards, np.float32(rewards))
    np.testing.assert_array_equal(episode.logp, np.float32(logp))
    assert episode.policy_version == 3
    assert episode.terminated is False
    np.testing.assert_array_equal(episode.last_state, [9.0, 8.0, 7.0])
    assert episode.outcome == "Defeat"
    assert episode.meta["env"] == "CartPole-v1"
    assert episode.meta["map"] == "Arena"
    assert episode.meta["actor"] == "bot_7/a"
    assert leftovers(path.parent) == []


def test_defaults_no_logp_terminated_and_policy_version_change(tmp_path: Path) -> None:
    with EpisodeRecorder(tmp_path / "root") as rec:
        rec.record(np.zeros(2), 0, 1.0)
        first = rec.finish()
        rec.policy_version = 5  # a new model was loaded between games
        rec.record(np.zeros(2), 1, 1.0)
        second = rec.finish("Victory")
    one, two = load_episode(first), load_episode(second)
    assert NAME.match(first.name)[4] == "Tie"
    assert one.logp is None and one.terminated is True and one.last_state is None
    assert one.policy_version is None
    assert "env" not in one.meta
    assert two.policy_version == 5
    assert NAME.match(first.name)[3] == NAME.match(second.name)[3]  # the default actor


def test_long_game_grows_past_the_initial_block(tmp_path: Path) -> None:
    steps = 1000
    with EpisodeRecorder(tmp_path / "root", actor="a") as rec:
        for t in range(steps):
            rec.record([t, -t], t % 3, 1.0, -0.5)
        path = rec.finish("Victory")
    episode = load_episode(path)
    assert episode.length == steps
    np.testing.assert_array_equal(episode.states[:, 0], np.arange(steps, dtype=np.float32))
    np.testing.assert_array_equal(episode.actions, np.arange(steps) % 3)


def test_game_reusing_its_arrays_does_not_change_the_record(tmp_path: Path) -> None:
    state = np.zeros(3, dtype=np.float32)
    last = np.zeros(3, dtype=np.float32)
    with EpisodeRecorder(tmp_path / "root", actor="a") as rec:
        for t in range(3):
            state[:] = t  # the game updates its one state array in place
            rec.record(state, 0, 0.0)
        state[:] = 99
        last[:] = 7
        path = rec.finish("Tie", terminated=False, last_state=last)
        last[:] = -1  # after finish(), before the write
        state[:] = -1
    episode = load_episode(path)
    np.testing.assert_array_equal(episode.states, [[0, 0, 0], [1, 1, 1], [2, 2, 2]])
    np.testing.assert_array_equal(episode.last_state, [7, 7, 7])


def test_game_reusing_its_arrays_while_the_write_is_pending(tmp_path: Path, gate) -> None:
    state = np.ones(2)
    rec = EpisodeRecorder(tmp_path / "root", actor="a")
    try:
        rec.record(state, 0, 0.0)
        path = rec.finish("Victory")
        assert gate.started.wait(WAIT_S)
        state[:] = 5  # the next game starts
        rec.record(state, 1, 0.0)
        gate.release.set()
        assert rec.flush() == [path]
    finally:
        gate.release.set()
        rec.close()
    np.testing.assert_array_equal(load_episode(path).states, [[1, 1]])


# --------------------------------------------------------------------------- bad input


def test_state_of_another_length_raises_at_record(tmp_path: Path) -> None:
    with EpisodeRecorder(tmp_path / "root", actor="a") as rec:
        rec.record(np.zeros(4), 0, 0.0)
        with pytest.raises(InvalidEpisodeError) as excinfo:
            rec.record(np.zeros(5), 0, 0.0)
        assert str(excinfo.value) == (
            "state has shape (5,), expected (4,) like the first state of this game"
        )
        assert rec.steps == 1  # the bad step was not recorded; the game goes on
        rec.record(np.ones(4), 1, 1.0)
        path = rec.finish("Tie")
    assert load_episode(path).length == 2


@pytest.mark.parametrize("first", [np.zeros((2, 3)), 5.0])
def test_first_state_must_be_1d(tmp_path: Path, first) -> None:
    with EpisodeRecorder(tmp_path / "root", actor="a") as rec:
        with pytest.raises(InvalidEpisodeError) as excinfo:
            rec.record(first, 0, 0.0)
        assert str(excinfo.value) == f"a state must be 1-D, got shape {np.shape(first)}"
        assert rec.steps == 0


@pytest.mark.parametrize("bad", [np.array([5.0]), np.float32(5.0), np.ones((1, 4))])
def test_state_that_numpy_would_broadcast_also_raises(tmp_path: Path, bad) -> None:
    with EpisodeRecorder(tmp_path / "root", actor="a") as rec:
        rec.record(np.zeros(4), 0, 0.0)
        with pytest.raises((InvalidEpisodeError, ValueError), match="shape"):
            rec.record(bad, 0, 0.0)


def test_mixing_logp_and_no_logp_raises(tmp_path: Path) -> None:
    with EpisodeRecorder(tmp_path / "root", actor="a") as rec:
        rec.record([0.0], 0, 0.0, -0.5)
        with pytest.raises(InvalidEpisodeError) as excinfo:
            rec.record([0.0], 0, 0.0)
        assert str(excinfo.value) == "logp was given for earlier steps of this game, not now"
        rec.finish("Tie")

        rec.record([0.0], 0, 0.0)
        with pytest.raises(InvalidEpisodeError) as excinfo:
            rec.record([0.0], 0, 0.0, -0.5)
        assert str(excinfo.value) == "logp is given now but was not for earlier steps"
        assert rec.steps == 1
        rec.finish("Tie")
    assert len(list(buffer_of(tmp_path).glob("*.npz"))) == 2


def test_finish_without_steps_writes_nothing(tmp_path: Path) -> None:
    with EpisodeRecorder(tmp_path / "root", actor="a") as rec:
        assert rec.finish("Victory") is None
        assert rec.flush() == []
    buffer = buffer_of(tmp_path)
    assert not buffer.exists() or list(buffer.iterdir()) == []


def nan_game(rec: EpisodeRecorder) -> Path:
    rec.record([0.0, 1.0, 2.0], 0, 0.0)
    rec.record([0.0, 1.0, 2.0], 0, float("nan"))
    return rec.finish("Defeat")


def test_failed_write_surfaces_at_flush_and_other_games_are_written(tmp_path: Path, gate) -> None:
    rec = EpisodeRecorder(tmp_path / "root", actor="a")
    # The writer holds the first game, so all three are still pending at flush().
    good1 = one_step_game(rec, 1.0)
    bad = nan_game(rec)
    good2 = one_step_game(rec, 2.0)
    buffer = buffer_of(tmp_path)
    gate.release.set()

    with pytest.raises(EpisodeWriteError) as excinfo:
        rec.flush()

    assert str(excinfo.value) == (
        f"1 episode(s) could not be saved into {buffer}: 'rewards' has NaN at [1]"
    )
    assert isinstance(excinfo.value.__cause__, InvalidEpisodeError)
    assert sorted(p.name for p in buffer.iterdir()) == sorted([good1.name, good2.name])
    assert not bad.exists()
    assert load_episode(good1).rewards[0] == 1.0
    assert load_episode(good2).rewards[0] == 2.0
    # Reported once; the recorder goes on working.
    assert rec.flush() == []
    good3 = one_step_game(rec, 3.0)
    assert rec.close() == [good3]
    assert leftovers(buffer) == []


def test_failed_write_is_reported_even_if_it_ended_before_the_next_finish(
    tmp_path: Path, gate
) -> None:
    rec = EpisodeRecorder(tmp_path / "root", actor="a")
    try:
        bad = nan_game(rec)
        one_step_game(rec, 1.0)
        assert gate.started.wait(WAIT_S)  # the bad game's write has ended (failed)
        one_step_game(rec, 2.0)
        gate.release.set()
        with pytest.raises(EpisodeWriteError, match="'rewards' has NaN at \\[1\\]"):
            rec.flush()
    finally:
        gate.release.set()
        rec.close()
    assert not bad.exists()


def test_flush_returns_every_path_written_since_the_last_flush(tmp_path: Path, gate) -> None:
    gate.passes = 1
    rec = EpisodeRecorder(tmp_path / "root", actor="a")
    try:
        first = one_step_game(rec, 1.0)
        second = one_step_game(rec, 2.0)
        assert gate.started.wait(WAIT_S)  # the first write has ended
        third = one_step_game(rec, 3.0)
        gate.release.set()
        assert rec.flush() == [first, second, third]
    finally:
        gate.release.set()
        rec.close()


# --------------------------------------------------------------------------- not waiting


def test_finish_returns_while_the_write_is_pending(tmp_path: Path, gate) -> None:
    rec = EpisodeRecorder(tmp_path / "root", actor="a")
    try:
        path = one_step_game(rec, 4.0)
        # finish() came back, yet the writer is stuck inside the write.
        assert gate.started.wait(WAIT_S)
        assert not path.exists()
        assert rec.steps == 0
        path2 = one_step_game(rec, 5.0)  # the next game does not wait either
        assert not path2.exists()
        gate.release.set()
        assert rec.flush() == [path, path2]
    finally:
        gate.release.set()
        rec.close()
    assert load_episode(path).rewards[0] == 4.0
    assert load_episode(path2).rewards[0] == 5.0
    assert leftovers(path.parent) == []


def test_close_waits_for_pending_writes(tmp_path: Path, gate) -> None:
    rec = EpisodeRecorder(tmp_path / "root", actor="a")
    path = one_step_game(rec)
    assert gate.started.wait(WAIT_S)
    result: list = []
    closer = threading.Thread(target=lambda: result.append(rec.close()))
    closer.start()
    closer.join(0.2)
    assert closer.is_alive(), "close() returned while a write was still pending"
    assert result == []
    gate.release.set()
    closer.join(WAIT_S)
    assert not closer.is_alive()
    assert result == [[path]]
    assert load_episode(path).length == 1


def test_context_manager_flushes_on_exit(tmp_path: Path) -> None:
    with EpisodeRecorder(tmp_path / "root", actor="a") as rec:
        paths = [one_step_game(rec, float(i)) for i in range(5)]
    assert [load_episode(p).rewards[0] for p in paths] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_flush_timeout_keeps_the_write_pending(tmp_path: Path, gate) -> None:
    rec = EpisodeRecorder(tmp_path / "root", actor="a")
    try:
        path = one_step_game(rec)
        assert gate.started.wait(WAIT_S)
        with pytest.raises(TimeoutError):
            rec.flush(timeout=0.05)
        gate.release.set()
        assert rec.flush() == [path]
    finally:
        gate.release.set()
        rec.close()


def test_take_failures_names_each_failed_game_once_without_waiting(tmp_path: Path, gate) -> None:
    rec = EpisodeRecorder(tmp_path / "root", actor="a")
    try:
        bad = nan_game(rec)
        good = one_step_game(rec, 1.0)
        assert gate.started.wait(WAIT_S)  # the bad game failed; the good one is held
        failures = rec.take_failures()
        assert [(path, str(exc)) for path, exc in failures] == [(bad, "'rewards' has NaN at [1]")]
        assert rec.pending == 1  # the good game still waits for the disk
        assert rec.take_failures() == []  # told once
        gate.release.set()
        assert rec.flush() == [good]  # flush does not raise for a failure already taken
    finally:
        gate.release.set()
        rec.close()


def test_discard_drops_the_game_in_progress(tmp_path: Path) -> None:
    with EpisodeRecorder(tmp_path / "root", actor="a") as rec:
        rec.record([0.0, 1.0, 2.0], 1, 1.0)
        rec.record([0.0, 1.0, 2.0], 0, 1.0)
        assert rec.discard() == 2
        assert rec.steps == 0
        path = one_step_game(rec, 5.0)
        assert rec.flush() == [path]
    assert load_episode(path).length == 1


def test_flush_returns_at_most_the_last_remembered_paths(tmp_path: Path) -> None:
    with EpisodeRecorder(tmp_path / "root", actor="a", remember=3) as rec:
        paths = [one_step_game(rec, float(i)) for i in range(8)]
        assert rec.flush() == paths[-3:]
    assert len(list(buffer_of(tmp_path).glob("*.npz"))) == 8  # all written all the same
    with EpisodeRecorder(tmp_path / "root", actor="b", remember=0) as rec:
        one_step_game(rec)
        assert rec.flush() == []


# --------------------------------------------------------------------------- names


def test_many_games_in_the_same_millisecond_get_distinct_increasing_names(
    tmp_path: Path,
) -> None:
    with EpisodeRecorder(tmp_path / "root", actor="a") as rec:
        paths = [one_step_game(rec, float(i)) for i in range(200)]
    assert sorted(buffer_of(tmp_path).iterdir()) == sorted(paths)
    assert len({p.name for p in paths}) == 200
    assert [p.name for p in paths] == sorted(p.name for p in paths)  # time order
    assert all(NAME.match(p.name) and "~" not in p.name for p in paths)
    assert len(list(buffer_of(tmp_path).glob("*.npz"))) == 200
    assert [load_episode(p).rewards[0] for p in paths] == [float(i) for i in range(200)]


def test_two_recorders_in_one_process_get_distinct_names(tmp_path: Path) -> None:
    with EpisodeRecorder(tmp_path / "root") as one, EpisodeRecorder(tmp_path / "root") as two:
        assert one.actor != two.actor
        paths = []
        for i in range(50):
            paths.append(one_step_game(one, float(i)))
            paths.append(one_step_game(two, float(100 + i)))
    assert sorted(buffer_of(tmp_path).iterdir()) == sorted(paths)
    assert len({p.name for p in paths}) == 100
    assert all("~" not in p.name for p in paths)
    assert sorted(load_episode(p).rewards[0] for p in paths) == sorted(
        [float(i) for i in range(50)] + [float(100 + i) for i in range(50)]
    )


def test_same_actor_twice_never_overwrites(tmp_path: Path) -> None:
    """A clash by a careless caller (one actor name for two recorders) loses nothing."""
    with (
        EpisodeRecorder(tmp_path / "root", actor="x") as one,
        EpisodeRecorder(tmp_path / "root", actor="x") as two,
    ):
        for i in range(30):
            one_step_game(one, float(i))
            one_step_game(two, float(100 + i))
    files = sorted(buffer_of(tmp_path).glob("*.npz"))
    assert len(files) == 60
    assert sorted(load_episode(p).rewards[0] for p in files) == sorted(
        [float(i) for i in range(30)] + [float(100 + i) for i in range(30)]
    )
    assert leftovers(buffer_of(tmp_path)) == []


WRITER_SCRIPT = """
import sys
from bgtrain import EpisodeRecorder

root, worker, games = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with EpisodeRecorder(root, env="race") as rec:
    print("ready", flush=True)
    sys.stdin.readline()  # all writers start together
    for i in range(games):
        rec.record([float(worker), float(i)], 0, float(i))
        rec.finish("Victory", worker=worker, i=i)
print("done", flush=True)
"""


def test_many_processes_writing_into_one_buffer(tmp_path: Path) -> None:
    root, workers, games = tmp_path / "root", 4, 50
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT, str(root), str(k), str(games)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline() == "ready\n"
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            assert out == "done\n"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    buffer = TrainingRoot(root).buffer
    files = sorted(buffer.iterdir())
    assert leftovers(buffer) == []
    assert len(files) == workers * games
    assert all(NAME.match(p.name) and "~" not in p.name for p in files)
    seen = set()
    for path in files:
        episode = load_episode(path)
        worker, i = episode.meta["worker"], episode.meta["i"]
        assert episode.states[0].tolist() == [float(worker), float(i)]
        seen.add((worker, i))
    assert seen == {(k, i) for k in range(workers) for i in range(games)}
    assert len({load_episode(p).meta["actor"] for p in files}) == workers  # one per process
