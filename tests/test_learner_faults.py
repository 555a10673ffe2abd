"""The learner under faults (issue 11): its own moves never quarantine a good game, a
failed publish never trains a batch twice, a poison file is found and set aside, a huge
game never holds up a stop, a file still being copied is retried, and writers' old temp
files are swept. Real files, real threads, real (tiny) torch training."""

from __future__ import annotations

import errno
import itertools
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import bgtrain.learn.prefetch as prefetch_module
import bgtrain.store.episode as episode_module
from bgtrain import ModelStore, Spool, TrainingRoot
from bgtrain.errors import InvalidEpisodeError, NonFiniteTrainingError
from bgtrain.learn.algorithms.ppo import PPOVTrace
from bgtrain.learn.learner import BackgroundLearner
from bgtrain.learn.settings import PPOSettings
from bgtrain.store.episode import Episode, build_episode, load_episode, save_episode
from bgtrain.store.models import ModelStore as Store

from .helpers import bgtrain_cli, wait_until, write_episode

SMALL = {"hidden_sizes": (8,), "n_epochs": 2, "minibatch_size": 32, "seed": 3}


def varied_episode(folder: Path, name: str, steps: int, seed: int) -> Path:
    """A valid CartPole-shaped episode with varied states, actions and rewards."""
    rng = np.random.default_rng(seed)
    episode = build_episode(
        rng.normal(size=(steps, 4)),
        rng.integers(0, 2, steps),
        rng.normal(size=steps),
        meta={"n_actions": 2},
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = save_episode(episode, folder / name)
    os.utime(path, (time.time() - 100 + seed, time.time() - 100 + seed))  # in name order
    return path


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.npz"))


def run_until_idle(learner: BackgroundLearner, timeout: float = 60) -> None:
    assert learner.start()
    try:
        wait_until(
            lambda: learner.idle and not Spool(learner.root).pending(),
            timeout,
            "the learner to train everything",
        )
    finally:
        learner.stop()


# --------------------------------------------------------------------------- 1. prefetch race


def test_a_prefetch_that_loads_after_the_claim_never_quarantines_a_good_game(tmp_path, monkeypatch):
    """The prefetch worker is slow: it reads buffer/NAME only once the claim has moved
    NAME into processing/ (the race seen unforced in long runs). Before the fix the
    failed early load was reused and 4 of 8 valid files went to quarantine as
    "file not found"."""
    root = TrainingRoot(tmp_path)
    names = [f"game_{i}.npz" for i in range(8)]
    for i, name in enumerate(names):
        varied_episode(root.buffer, name, 20, i)
    real_load = prefetch_module.load_episode

    def slow_disk_load(path, *args, **kwargs):
        if threading.current_thread().name.startswith("bgtrain-load"):
            # The early load reaches the disk only after the claim took the file.
            deadline = time.monotonic() + 10
            while Path(path).exists() and time.monotonic() < deadline:
                threading.Event().wait(0.005)
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(prefetch_module, "load_episode", slow_disk_load)
    learner = BackgroundLearner(tmp_path, verbose=False, batch_files=2, batch_steps=None, **SMALL)
    run_until_idle(learner)

    assert names_in(root.quarantine) == []
    assert names_in(root.archive) == names
    assert learner.counters.files_quarantined == 0


# --------------------------------------------------------------------------- 2. failed publish


def reference_model(tmp_path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """What one batch of ``names``, trained once from a new network, publishes."""
    root = TrainingRoot(tmp_path / "reference")
    for i, name in enumerate(names):
        varied_episode(root.buffer, name, 40, i)
    learner = BackgroundLearner(root.path, verbose=False, batch_files=10, batch_steps=None, **SMALL)
    run_until_idle(learner)
    model = ModelStore(root.path).load()
    assert model.version == 1 and sorted(model.meta.batch) == names
    return model.arrays


def test_a_failed_publish_never_trains_the_batch_twice(tmp_path, monkeypatch, caplog):
    """Disk full on publish, three times: the batch is trained again only from the state
    before it, so v1 is exactly the model of one training on it (before the fix its
    obs_count was 4x the samples and the weights differed), with growing waits between
    the attempts, one line each and no traceback (before: a traceback each, no wait)."""
    names = [f"game_{i}.npz" for i in range(4)]  # 4 x 40 = 160 samples
    expected = reference_model(tmp_path, names)
    root = TrainingRoot(tmp_path / "failing")
    for i, name in enumerate(names):
        varied_episode(root.buffer, name, 40, i)
    real_publish = Store.publish
    attempts: list[float] = []

    def disk_full_three_times(self, arrays, meta):
        attempts.append(time.monotonic())
        if len(attempts) <= 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real_publish(self, arrays, meta)

    monkeypatch.setattr(Store, "publish", disk_full_three_times)
    caplog.set_level(logging.WARNING, logger="bgtrain.learn.learner")
    learner = BackgroundLearner(root.path, verbose=False, batch_files=10, batch_steps=None, **SMALL)
    run_until_idle(learner)

    model = ModelStore(root.path).load()
    assert model.version == 1
    assert sorted(model.meta.batch) == names
    assert model.meta.counters["batches"] == 1
    assert float(model.arrays["obs_count"]) == 160.0
    for key, value in expected.items():
        np.testing.assert_array_equal(model.arrays[key], value, err_msg=key)
    assert len(attempts) == 4
    waits = np.diff(attempts)
    assert waits[0] >= 0.5 and waits[1] >= 1.0 and waits[2] >= 2.0, waits
    assert [r for r in caplog.records if r.exc_info] == []  # an OS error needs no traceback
    failed = [r.getMessage() for r in caplog.records if "cycle failed" in r.getMessage()]
    assert failed[0] == (
        "learner cycle failed (the batch went back to buffer/): "
        f"[Errno 28] No space left on device: '{root.model_file}'"
    )
    assert len(failed) == 3  # then one line per failed retry
    assert learner.counters.errors == 3


def test_a_failure_and_its_recovery_are_each_told_once_on_a_console(tmp_path, monkeypatch, caplog):
    """With a console (bgtrain run and bgtrain learn pass one), a failed cycle and the
    recovery are said there alone: the run prints the learner's WARNING records too, and
    before the fix each showed twice (a log record beside the console line)."""
    varied_episode(TrainingRoot(tmp_path).buffer, "game_0.npz", 20, 0)
    real_publish = Store.publish
    attempts: list[int] = []

    def disk_full_twice(self, arrays, meta):
        attempts.append(1)
        if len(attempts) <= 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real_publish(self, arrays, meta)

    monkeypatch.setattr(Store, "publish", disk_full_twice)
    caplog.set_level(logging.WARNING, logger="bgtrain.learn.learner")
    lines: list[str] = []
    learner = BackgroundLearner(tmp_path, console=lines.append, verbose=False, **SMALL)
    run_until_idle(learner)

    told = [line for line in lines if "Processing error" in line or "Recovered" in line]
    assert told == [
        f"[BG_LEARNER] [ERROR] Processing error: [Errno 28] No space left on device: "
        f"'{TrainingRoot(tmp_path).model_file}'",
        "[BG_LEARNER] Recovered after 2 failed cycle(s)",
    ]
    assert [r.getMessage() for r in caplog.records if "cycle" in r.getMessage()] == []


# --------------------------------------------------------------------------- 3. poison file


def test_check_refuses_values_that_would_overflow_training(tmp_path):
    path = write_episode(tmp_path, "poison.npz", steps=3)
    arrays = dict(np.load(path))
    arrays["rewards"] = np.array([0.0, 3e38, 0.0], dtype=np.float32)
    np.savez(path, **arrays)
    with pytest.raises(InvalidEpisodeError) as raised:
        load_episode(path)
    assert raised.value.reason == (
        "'rewards' value at [1] is 3e+38, outside +-1e+09 "
        "(the largest magnitude bgtrain trains on; scale the game's values down)"
    )


def test_a_poison_file_is_quarantined_and_the_good_files_train(tmp_path, monkeypatch):
    """Rewards of 3e38 that get past the file checks (here: with the value bound lifted)
    give NaN logits: the learner goes back to its last good state, finds the file,
    quarantines it with its reason and trains the three good ones. Before the fix the
    batch went back every cycle and the network stayed NaN."""
    monkeypatch.setattr(episode_module, "MAX_ABS_VALUE", float("inf"))
    root = TrainingRoot(tmp_path)
    good = [f"game_{i}.npz" for i in (0, 1, 3)]
    for i, name in zip((0, 1, 3), good, strict=True):
        varied_episode(root.buffer, name, 30, i)
    poison = varied_episode(root.buffer, "game_2.npz", 30, 2)
    arrays = dict(np.load(poison))
    arrays["rewards"] = np.full(30, 3e38, dtype=np.float32)
    np.savez(poison, **arrays)
    os.utime(poison, (time.time() - 98, time.time() - 98))

    learner = BackgroundLearner(tmp_path, verbose=False, batch_files=10, batch_steps=None, **SMALL)
    run_until_idle(learner)

    assert names_in(root.quarantine) == ["game_2.npz"]
    reason = Spool(tmp_path).reason(root.quarantine / "game_2.npz")
    assert reason["reason"].startswith("training on it gives non-finite numbers (")
    assert names_in(root.archive) == good
    model = ModelStore(tmp_path).load()
    assert sorted(model.meta.batch) == good
    assert all(np.isfinite(v).all() for v in model.arrays.values())
    assert float(model.arrays["obs_count"]) == 90.0  # the poison's states were not counted


def test_a_batch_that_only_fails_together_is_trained_one_episode_at_a_time(tmp_path):
    """No single episode at fault: nothing is quarantined; the batch is split."""

    class FailsOnPairs(PPOVTrace):
        def train(self, episodes, should_stop=None, replay=()):
            if len(episodes) > 1:
                raise NonFiniteTrainingError("the loss is nan")
            return super().train(episodes, should_stop, replay)

    root = TrainingRoot(tmp_path)
    names = [f"game_{i}.npz" for i in range(3)]
    for i, name in enumerate(names):
        varied_episode(root.buffer, name, 20, i)
    learner = BackgroundLearner(tmp_path, verbose=False, batch_files=10, batch_steps=None, **SMALL)
    learner.batch_trainer._create = lambda episodes: FailsOnPairs(
        4, 2, learner.settings.ppo, learner.settings.max_piece_steps
    )
    run_until_idle(learner)

    assert names_in(root.quarantine) == []
    assert names_in(root.archive) == names
    batches = [ModelStore(tmp_path).load(v).meta.batch for v in ModelStore(tmp_path).versions()]
    assert batches == [(n,) for n in names]


# --------------------------------------------------------------------------- 4. huge games


def test_stop_returns_within_seconds_while_a_huge_batch_trains(tmp_path):
    """A 400,000-step game trained whole (pieces as large as the game) takes minutes;
    stop() returns within seconds, and the game is back in buffer/ untrained (before the
    fix stop() waited for the whole batch: 282 s)."""
    root = TrainingRoot(tmp_path)
    steps = 400_000
    episode = build_episode(
        np.zeros((steps, 4), np.float32), np.zeros(steps, np.int64), np.zeros(steps, np.float32)
    )
    root.buffer.mkdir(parents=True)
    save_episode(episode, root.buffer / "huge.npz")
    learner = BackgroundLearner(
        tmp_path,
        verbose=False,
        batch_files=1,
        n_epochs=10,
        minibatch_size=64,
        target_kl=None,
        max_piece_steps=steps,
    )
    assert learner.start()
    try:
        wait_until(lambda: learner._busy and learner.algorithm is not None, 60, "training to start")
    finally:
        started = time.monotonic()
        learner.stop()
        took = time.monotonic() - started
    assert took < 2.0 + 3.0, f"stop() took {took:.1f} s"  # the grace, then one minibatch
    assert names_in(root.buffer) == ["huge.npz"]
    assert names_in(root.processing) == [] and names_in(root.archive) == []
    assert ModelStore(tmp_path).latest_version() is None


def long_game(root: TrainingRoot, steps: int) -> Episode:
    rng = np.random.default_rng(7)
    episode = build_episode(
        rng.normal(size=(steps, 4)),
        rng.integers(0, 2, steps),
        rng.normal(size=steps),
        logp=np.full(steps, np.log(0.5)),
        policy_version=0,
        terminated=True,
    )
    root.buffer.mkdir(parents=True, exist_ok=True)
    save_episode(episode, root.buffer / "game_long.npz")
    return episode


def assert_trained_in_pieces(root: TrainingRoot, episode: Episode, n: int) -> None:
    """The long game is in split/ with its reason; each piece was trained exactly once,
    and the pieces are the game, in order, cut short where cut."""
    pieces = [f"game_long.p{k}of{n}.npz" for k in range(1, n + 1)]
    assert names_in(root.split) == ["game_long.npz"]
    record = Spool(root.path).reason(root.split / "game_long.npz")
    assert record["complete"] is True and record["pieces"] == pieces
    assert names_in(root.archive) == pieces
    assert names_in(root.buffer) == [] and names_in(root.quarantine) == []
    store = ModelStore(root.path)
    in_batches = [name for v in store.versions() for name in store.load(v).meta.batch]
    assert sorted(in_batches) == pieces  # each piece in exactly one version's batch
    loaded = [load_episode(next(root.archive.rglob(name))) for name in pieces]
    np.testing.assert_array_equal(np.concatenate([p.states for p in loaded]), episode.states)
    np.testing.assert_array_equal(np.concatenate([p.rewards for p in loaded]), episode.rewards)
    assert [p.terminated for p in loaded] == [False] * (n - 1) + [True]
    for piece, following in itertools.pairwise(loaded):
        np.testing.assert_array_equal(piece.last_state, following.states[0])


def test_a_long_game_is_trained_as_bounded_pieces_each_once(tmp_path):
    """A 10,000-step game with max_piece_steps 4096: three pieces, each its own batch, so
    a long game never holds the learner (or a small game behind it) for long."""
    root = TrainingRoot(tmp_path)
    episode = long_game(root, 10_000)
    learner = BackgroundLearner(tmp_path, verbose=False, max_piece_steps=4096, **SMALL)
    run_until_idle(learner)
    assert_trained_in_pieces(root, episode, 3)
    assert ModelStore(tmp_path).latest_version() == 3


def test_a_crash_in_the_middle_of_a_split_is_finished_by_recovery(tmp_path):
    """Killed after the pieces are written, before the game moves to split/: the restart
    finishes the split before any claim, so no piece is trained twice."""
    root = TrainingRoot(tmp_path)
    episode = long_game(root, 10_000)
    env = {**os.environ, "BGTRAIN_CRASH_AT": "between_pieces_and_move"}
    crashed = bgtrain_cli(
        "learn", "--root", tmp_path, "--max-piece-steps", "4096", "--exit-when-idle",
        "--no-verbose", cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert crashed.returncode == -9, crashed.stderr
    assert names_in(root.processing) == ["game_long.npz"]
    assert Spool(tmp_path).reason(root.split / "game_long.npz")["complete"] is False
    done = bgtrain_cli(
        "learn", "--root", tmp_path, "--max-piece-steps", "4096", "--exit-when-idle",
        "--no-verbose", "--hidden-sizes", "8", cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_trained_in_pieces(root, episode, 3)


def test_a_long_episode_is_trained_in_pieces_that_bootstrap_where_cut():
    trainer = PPOVTrace(3, 2, PPOSettings(seed=1, gamma=0.9), max_piece_steps=4)
    rng = np.random.default_rng(1)
    episode = build_episode(rng.normal(size=(10, 3)), rng.integers(0, 2, 10), rng.normal(size=10))
    prepared = trainer._prepare([episode])
    obs, targets = prepared.obs, prepared.targets
    with torch.no_grad():
        values = trainer.net.vf(obs).squeeze(-1).numpy()
    # Step 3 ends the first piece: its target bootstraps from the value of step 4.
    assert targets[3].item() == pytest.approx(episode.rewards[3] + 0.9 * values[4], abs=1e-5)
    # The last step of the (terminated) episode does not bootstrap.
    assert targets[9].item() == pytest.approx(episode.rewards[9], abs=1e-6)


# --------------------------------------------------------------------------- 5. files being copied


def test_a_file_still_being_copied_in_place_is_retried_not_quarantined(tmp_path):
    """A seed-format file copied into buffer/ in chunks (as cp, scp and network shares
    write): the learner meets it half-written, puts it back to settle, and trains it once
    complete (before the fix: quarantined as a damaged zip)."""
    root = TrainingRoot(tmp_path)
    source = tmp_path / "elsewhere.npz"
    rng = np.random.default_rng(0)
    np.savez(
        source, states=rng.normal(size=(50, 4)), actions=rng.integers(0, 2, 50), rewards=np.ones(50)
    )
    data = source.read_bytes()
    learner = BackgroundLearner(
        tmp_path, verbose=False, settle_time=1.0, poll_interval=0.2, **SMALL
    )
    assert learner.start()
    try:
        root.buffer.mkdir(parents=True, exist_ok=True)
        target = root.buffer / "game_copied_in_place.npz"
        with open(target, "wb") as copy:
            copy.write(data[: len(data) // 2])
            copy.flush()
            wait_until(
                lambda: "game_copied_in_place.npz" in learner.spool.settling,
                20,
                "the learner to meet the half-written file and put it back",
            )
            assert names_in(root.quarantine) == []
            copy.write(data[len(data) // 2 :])
        wait_until(
            lambda: names_in(root.archive) == ["game_copied_in_place.npz"],
            30,
            "the completed copy to be trained",
        )
    finally:
        learner.stop()
    assert names_in(root.quarantine) == []


def test_a_file_that_stays_bad_is_quarantined_once_settled(tmp_path):
    root = TrainingRoot(tmp_path)
    root.buffer.mkdir(parents=True)
    (root.buffer / "game_broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    learner = BackgroundLearner(
        tmp_path, verbose=False, settle_time=0.5, poll_interval=0.2, **SMALL
    )
    assert learner.start()
    try:
        wait_until(
            lambda: names_in(root.quarantine) == ["game_broken.npz"],
            20,
            "the broken file to be quarantined",
        )
    finally:
        learner.stop()
    reason = Spool(tmp_path).reason(root.quarantine / "game_broken.npz")
    assert "zip" in reason["reason"]


# --------------------------------------------------------------------------- 6. writer temps


def test_old_writer_temps_are_removed_at_start_young_ones_are_kept(tmp_path):
    root = TrainingRoot(tmp_path)
    root.buffer.mkdir(parents=True)
    old = root.buffer / ".game_1.npz.4242-deadbeef.tmp"
    young = root.buffer / ".game_2.npz.4243-cafef00d.tmp"
    not_a_temp = root.buffer / ".hidden_by_hand"
    for path in (old, young, not_a_temp):
        path.write_bytes(b"half a game")
    an_hour_ago = time.time() - 3600
    for path in (old, not_a_temp):
        os.utime(path, (an_hour_ago, an_hour_ago))
    learner = BackgroundLearner(tmp_path, verbose=False, stale_temp_age=900, **SMALL)
    assert learner.start()
    learner.stop()
    assert not old.exists()
    assert young.exists() and not_a_temp.exists()


def assert_watches_again_and_trains(
    learner: BackgroundLearner, first: object, root: TrainingRoot
) -> None:
    """The learner watches buffer/ with a new, live observer, and a game landing then is
    trained."""
    wait_until(
        lambda: (
            learner._watch.observer is not first
            and learner._watch.observer.is_alive()
            and all(e.is_alive() for e in learner._watch.observer.emitters)
        ),
        10,
        "the learner to watch buffer/ again",
    )
    varied_episode(root.buffer, "game_after.npz", 20, 0)
    wait_until(lambda: names_in(root.archive) == ["game_after.npz"], 20, "the new game")


def test_the_watch_on_the_buffer_is_renewed_when_the_folder_is_made_again(tmp_path):
    """watchdog's watch ends when buffer/ is removed; before the fix the learner then only
    noticed new games at each poll, for ever."""
    root = TrainingRoot(tmp_path)
    learner = BackgroundLearner(tmp_path, verbose=False, poll_interval=0.2, **SMALL)
    assert learner.start()
    try:
        first = learner._watch.observer
        # The emitter threads themselves: once the learner renews the watch it stops the
        # first observer, which then lists no emitter at all (all() of nothing is True).
        watches = list(first.emitters)
        root.buffer.rmdir()
        wait_until(lambda: not all(e.is_alive() for e in watches), 10, "the watch to end")
        root.buffer.mkdir(exist_ok=True)  # the learner may have made it again already
        assert_watches_again_and_trains(learner, first, root)
    finally:
        learner.stop()


def test_the_watch_is_renewed_when_its_observer_thread_has_ended(tmp_path):
    """A stopped observer lists no emitter, and the learner took "all of none alive" for
    a watch still running: it never watched buffer/ again."""
    root = TrainingRoot(tmp_path)
    learner = BackgroundLearner(tmp_path, verbose=False, poll_interval=0.2, **SMALL)
    assert learner.start()
    try:
        first = learner._watch.observer
        first.stop()
        first.join(5)
        assert not first.is_alive() and list(first.emitters) == []
        assert_watches_again_and_trains(learner, first, root)
    finally:
        learner.stop()
    assert learner._watch.observer is None


def test_a_model_with_non_finite_weights_is_not_trained_on(tmp_path):
    """Continuing from NaN weights would make every episode look like poison: the learner
    starts a new model instead, and the games train."""
    root = TrainingRoot(tmp_path)
    varied_episode(root.buffer, "game_0.npz", 20, 0)
    run_until_idle(BackgroundLearner(tmp_path, verbose=False, **SMALL))
    store = ModelStore(tmp_path)
    model = store.load()
    arrays = {**model.arrays, "pi.w0": np.full_like(model.arrays["pi.w0"], np.nan)}
    store.publish(arrays, model.meta)
    varied_episode(root.buffer, "game_1.npz", 20, 1)
    run_until_idle(BackgroundLearner(tmp_path, verbose=False, **SMALL))
    assert names_in(root.quarantine) == []
    assert names_in(root.archive) == ["game_0.npz", "game_1.npz"]
    latest = store.load()
    assert latest.version == 3 and latest.meta.batch == ("game_1.npz",)
    assert all(np.isfinite(v).all() for v in latest.arrays.values())


def test_a_behaviour_logp_beyond_the_bound_is_refused(tmp_path):
    """A logp of -1e30 is finite but no policy's: its importance weight overflows."""
    path = write_episode(tmp_path, "odd_logp.npz", steps=3, logp=[-0.5, -0.5, -0.5])
    arrays = dict(np.load(path))
    arrays["logp"] = np.array([-0.5, -1e30, -0.5], dtype=np.float32)
    np.savez(path, **arrays)
    with pytest.raises(InvalidEpisodeError) as raised:
        load_episode(path)
    assert raised.value.reason.startswith("'logp' value at [1] is -1e+30, outside +-1e+09")
