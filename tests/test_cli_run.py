"""``bgtrain run`` as a subprocess, on tiny budgets: the seed's console texts, every game
file accounted for, Ctrl+C / SIGTERM stop cleanly without losing a game, a custom game
through module:factory, clear refusals (unknown game, root already locked), and no
process left behind by any of it."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bgtrain import LearnerLock, ModelStore, TrainingRoot, load_episode
from bgtrain.errors import BgtrainError
from bgtrain.game.gymnasium_games import make_env

from .helpers import assert_no_stray_process, bgtrain_argv, bgtrain_cli, cli_env, group_members

REPO = Path(__file__).resolve().parent.parent
GAME_NAME = re.compile(r"^game_\d{8}_\d{6}_\d{3}_a\d+_(Victory|Defeat)\.npz$")
PROGRESS = re.compile(r"^\[RUN\] games (\d+) \| model v(\d+) \|")
EPISODE_FOLDERS = ("buffer", "processing", "archive", "stale", "quarantine")
RUN_TIMEOUT_S = 120
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and sessions")

# --------------------------------------------------------------------------- processes


class Bgtrain:
    """One ``bgtrain`` process in its own session; a thread reads its stdout line by line."""

    def __init__(self, *args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> None:
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            bgtrain_argv(*args),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
            start_new_session=True,
        )
        self.pgid = self.proc.pid  # start_new_session: the run leads its own group
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line)
        self._new.put(None)

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Check ``condition`` at each new output line (and every 50 ms) until it holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None and self._new.empty():
                pytest.fail(f"the run exited ({self.proc.returncode}) before {what}:\n{self}")
            if time.monotonic() >= deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}:\n{self}")
            with contextlib.suppress(queue.Empty):
                self._new.get(timeout=0.05)

    def finish(self, timeout: float = RUN_TIMEOUT_S) -> int:
        """Wait for the exit (a hang fails the test); returns the exit code."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the run did not exit within {timeout} s:\n{self}")
        self.join_output()
        return code

    def join_output(self) -> None:
        """Wait until the output of an ended run is read to its end."""
        self._reader.join(10)

    def kill(self) -> None:
        """Kill this run's process group (a test failed half-way)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signal.SIGKILL)
        self.proc.wait(10)

    @property
    def stdout(self) -> str:
        return "\n".join(self.lines)

    @property
    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    def close(self) -> None:
        """Kill whatever is left of the run's session (a test failed half-way)."""
        if self.proc.poll() is None or group_members(self.pgid):
            self.kill()
        self._stderr.close()

    def __str__(self) -> str:
        return f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


@pytest.fixture
def start(tmp_path):
    """``start(*args)`` starts ``bgtrain`` in its own session; every run is killed at the
    end of the test if it is still there (so a failing test leaves nothing running)."""
    runs: list[Bgtrain] = []

    def _start(*args: str | Path, cwd: Path = tmp_path, env: dict[str, str] | None = None):
        run = Bgtrain(*args, cwd=cwd, env=env)
        runs.append(run)
        return run

    yield _start
    for run in runs:
        run.close()


# --------------------------------------------------------------------------- the root


def episode_files(root: TrainingRoot) -> dict[str, list[Path]]:
    """Episode files per folder (archive: all its day folders)."""
    found: dict[str, list[Path]] = {}
    for name in EPISODE_FOLDERS:
        folder = root.data / name
        paths = folder.rglob("*.npz") if name == "archive" else folder.glob("*.npz")
        found[name] = sorted(p for p in paths if not p.name.startswith("."))
    return found


def dot_entries(root: TrainingRoot) -> list[Path]:
    """Dot-named entries anywhere under the root: temp files that were not cleaned up."""
    return list(root.path.rglob(".*"))


def game_events(root: TrainingRoot) -> list[dict]:
    events = [json.loads(line) for line in root.metrics.read_text("utf-8").splitlines() if line]
    return [e for e in events if e.get("event") == "game"]


def history_batches(root: TrainingRoot) -> dict[int, tuple[str, ...]]:
    store = ModelStore(root.path)
    return {v: store.load(v).meta.batch for v in store.versions()}


def assert_exactly_once(root: TrainingRoot, files: dict[str, list[Path]]) -> None:
    """Each archived episode is in the batch of exactly one published version, and every
    name in a published batch is an archived episode (guarantee 3). (Only the versions
    still in the history can be checked: all of them on these short runs, usually.)"""
    batches = history_batches(root)
    trained = [name for batch in batches.values() for name in batch]
    assert len(trained) == len(set(trained)), f"an episode trained twice: {batches}"
    archived = sorted(p.name for p in files["archive"])
    if min(batches) == 1:
        assert sorted(trained) == archived
    else:
        assert set(trained) <= set(archived)


def assert_policy_versions_only_move_forward(root: TrainingRoot, episodes: dict) -> None:
    """Per game process, in the order its games were saved: ``None`` (no model yet) only
    before the first model was picked up, then never older, never newer than published."""
    latest = ModelStore(root.path).latest_version()
    by_actor: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
    for path, episode in episodes.items():
        by_actor[episode.meta["actor"]].append((path.name, episode.policy_version))
    for actor, games in by_actor.items():
        versions = [v for _, v in sorted(games)]
        known = [v for v in versions if v is not None]
        assert versions == [None] * (len(versions) - len(known)) + known, (actor, versions)
        assert known == sorted(known), (actor, versions)
        assert all(1 <= v <= latest for v in known), (actor, versions, latest)


def load_all(files: dict[str, list[Path]]) -> dict:
    return {p: load_episode(p) for paths in files.values() for p in paths}


# --------------------------------------------------------------------------- tests


@posix_only
def test_run_on_a_game_budget_prints_the_seed_texts_and_accounts_for_every_game(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    run = start(
        "run", "--root", root.path, "--games", "12", "--actors", "2", "--seed", "1",
        "--n-epochs", "2",
    )  # fmt: skip

    assert run.finish() == 0, str(run)
    assert_no_stray_process(run.pgid)
    out = run.lines
    for line in (
        "[OK] Background parallel learner initialized and started",
        "[INFO] Experience replay training will run in background",
        f"[INFO] Monitoring directory: {root.buffer}",
        "[BG_LEARNER] Stopped",
        "[SUMMARY]",
        "Stopped:            12 games",
    ):
        assert line in out, f"missing {line!r}:\n{run}"
    assert any(PROGRESS.match(line) for line in out), str(run)
    assert any(line.startswith("Games played:       12 in ") for line in out), str(run)
    assert out.index("[OK] Background parallel learner initialized and started") < out.index(
        "[SUMMARY]"
    )
    # (The STATISTICS block, once the learner has trained: test_run_console, on a run
    # paced so that it has by game 5.)
    assert "Traceback" not in run.stderr, run.stderr

    files = episode_files(root)
    assert sum(len(paths) for paths in files.values()) == 12, files
    assert files["processing"] == []
    assert len(files["archive"]) >= 1
    assert ModelStore(root.path).latest_version() >= 1
    for path in (p for paths in files.values() for p in paths):
        assert GAME_NAME.match(path.name), path.name
    episodes = load_all(files)
    assert {e.meta["env"] for e in episodes.values()} == {"CartPole-v1"}
    assert all(e.terminated for e in episodes.values())  # a budget ends games whole
    assert_policy_versions_only_move_forward(root, episodes)
    assert_exactly_once(root, files)
    assert len(game_events(root)) == 12
    assert "Batch Training Complete" in root.training_log.read_text("utf-8")
    assert dot_entries(root) == []
    LearnerLock(root.path).acquire().release()  # the learner let go of the root


#: How each run is interrupted: its signal, and whether the whole process group gets it
#: (what a terminal's Ctrl+C does) or only the run's own process (``kill PID``).
INTERRUPTS = {
    "SIGINT-to-parent": (signal.SIGINT, False),
    "SIGINT-to-group-like-a-terminal": (signal.SIGINT, True),
    "SIGTERM-to-parent": (signal.SIGTERM, False),
}


@dataclass
class Interrupted:
    root: TrainingRoot
    run: Bgtrain
    exit_code: int | None = None
    problem: str | None = None  # why the run could not be interrupted as planned


def playing_with_a_model(root: TrainingRoot, run: Bgtrain) -> bool:
    """Games were played (a progress line says so) and a model version is published."""
    played = any(int(m[1]) > 0 for m in map(PROGRESS.match, list(run.lines)) if m)
    return played and ModelStore(root.path).latest_version() is not None


@pytest.fixture(scope="module")
def interrupted_runs(tmp_path_factory):
    """Three unbudgeted runs, started together (they mostly wait: start-up, the first
    model, the stop), each interrupted its way once it plays with a published model."""
    outcomes: dict[str, Interrupted] = {}
    for i, name in enumerate(INTERRUPTS):
        top = tmp_path_factory.mktemp(name)
        root = TrainingRoot(top / "root")
        run = Bgtrain(
            "run", "--root", root.path, "--actors", "2", "--seed", str(2 + i),
            "--no-until-solved", "--n-epochs", "2",
            cwd=top,
        )  # fmt: skip
        outcomes[name] = Interrupted(root, run)
    try:
        signalled: dict[str, float] = {}
        deadline = time.monotonic() + 120
        tick = threading.Event()
        while len(signalled) < len(outcomes) and time.monotonic() < deadline:
            for name, o in outcomes.items():
                if name in signalled or o.problem:
                    continue
                if playing_with_a_model(o.root, o.run):
                    sig, to_group = INTERRUPTS[name]
                    if to_group:
                        os.killpg(o.run.pgid, sig)
                    else:
                        os.kill(o.run.proc.pid, sig)
                    signalled[name] = time.monotonic()
                elif o.run.proc.poll() is not None:
                    o.problem = f"exited ({o.run.proc.returncode}) before it played with a model"
            tick.wait(0.05)
        for name, o in outcomes.items():
            if name not in signalled:
                o.problem = o.problem or "timed out waiting for games and a published model"
                continue
            try:  # each must exit within 30 s of its signal
                o.exit_code = o.run.proc.wait(max(0.0, signalled[name] + 30 - time.monotonic()))
            except subprocess.TimeoutExpired:
                o.problem = "did not exit within 30 s of the signal"
                o.run.kill()
            o.run.join_output()
        yield outcomes
    finally:
        for o in outcomes.values():
            o.run.close()


@posix_only
@pytest.mark.parametrize("way", list(INTERRUPTS))
def test_interrupting_a_run_stops_it_cleanly_and_loses_no_game(interrupted_runs, way):
    o = interrupted_runs[way]
    root, run = o.root, o.run
    assert o.problem is None, f"{o.problem}:\n{run}"
    assert o.exit_code in (0, 130), str(run)
    assert_no_stray_process(run.pgid)
    assert "[SUMMARY]" in run.lines, str(run)
    assert "Stopped:            interrupted" in run.lines, str(run)
    assert "Traceback" not in run.stderr, run.stderr

    files = episode_files(root)
    assert files["processing"] == []
    assert list(root.processing.iterdir()) == []
    episodes = load_all(files)  # every file whole and valid
    names = [p.name for p in episodes]
    assert len(names) == len(set(names)), "an episode is in two folders"
    # Every game reported was saved, including those cut short by the interrupt.
    assert len(episodes) == len(game_events(root)) > 0
    for episode in episodes.values():
        if not episode.terminated:
            assert episode.last_state is not None  # the learner can bootstrap it
    assert_policy_versions_only_move_forward(root, episodes)
    assert_exactly_once(root, files)
    assert dot_entries(root) == []
    LearnerLock(root.path).acquire().release()


@posix_only
def test_a_second_interrupt_quits_at_once_and_the_next_run_recovers_the_batch(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    # Long batches: the clean stop after the first interrupt waits for the batch in hand.
    run = start(
        "run", "--root", root.path, "--actors", "1", "--seed", "6", "--no-until-solved",
        "--n-epochs", "2000", "--target-kl", "none",
    )  # fmt: skip
    run.wait_for(lambda: playing_with_a_model(root, run), 120, "games on a published model")
    os.kill(run.proc.pid, signal.SIGINT)
    stopping = "[INFO] Stopping games (a game in progress is saved as cut short)"
    run.wait_for(lambda: stopping in run.lines, 30, "the clean stop to begin")
    os.kill(run.proc.pid, signal.SIGINT)

    assert run.finish(timeout=20) == 130, str(run)
    assert_no_stray_process(run.pgid)
    assert "[STOP] Second interrupt: stopping at once (files on disk stay whole)" in run.lines
    assert "[SUMMARY]" not in run.lines  # it did not wait for the learner's batch
    assert "Traceback" not in run.stderr, run.stderr
    left = len(load_all(episode_files(root)))  # every file on disk whole

    again = start(
        "run", "--root", root.path, "--games", "2", "--actors", "1", "--n-epochs", "1",
        "--no-until-solved",
    )  # fmt: skip
    assert again.finish() == 0, str(again)
    files = episode_files(root)
    assert files["processing"] == []
    assert len(load_all(files)) == left + 2  # nothing lost
    assert dot_entries(root) == []


@posix_only
def test_a_custom_game_through_module_factory_trains_a_model_of_its_shape(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    env_id = "tests.games_for_tests:acrobot"
    run = start(
        "run", "--root", root.path, "--env", env_id, "--games", "6", "--actors", "1",
        "--n-epochs", "1", "--no-until-solved", "--seed", "3",
        cwd=REPO,  # ``tests`` is importable from the repository root
    )  # fmt: skip

    assert run.finish() == 0, str(run)
    assert_no_stray_process(run.pgid)
    assert (
        f"[INFO] Playing {env_id} with 1 game process and a spare one while the learner "
        "idles; runs until its budget is spent (after 6 games)" in run.lines
    )
    model = ModelStore(root.path).load()
    assert (model.meta.obs_dim, model.meta.n_actions) == (6, 3)
    files = episode_files(root)
    assert sum(len(paths) for paths in files.values()) == 6
    assert len(files["archive"]) >= 1
    assert files["processing"] == []
    for episode in load_all(files).values():
        assert episode.obs_dim == 6
        assert episode.meta["env"] == env_id
        assert set(episode.actions.tolist()) <= {0, 1, 2}


@posix_only
def test_on_a_slow_game_the_spare_game_process_plays_while_the_learner_idles(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    env_id = "tests.games_for_tests:slow_cartpole"
    run = start(
        "run", "--root", root.path, "--env", env_id, "--games", "60", "--actors", "1",
        "--n-epochs", "1", "--no-until-solved", "--seed", "3", cwd=REPO,
    )  # fmt: skip

    assert run.finish() == 0, str(run)
    assert (
        f"[INFO] Playing {env_id} with 1 game process and a spare one while the learner "
        "idles; runs until its budget is spent (after 60 games)" in run.lines
    )
    actors = Counter(e["actor"] for e in game_events(root))
    assert set(actors) == {0, 1} and actors.total() == 60, actors


@posix_only
def test_a_spent_game_budget_ends_the_run_without_waiting_for_the_learner(tmp_path, start):
    """The spare game process waited for an idle learner even when no game was left, so
    a run of 30 games lasted until the learner had trained every one of them."""
    root = TrainingRoot(tmp_path / "root")
    run = start(
        "run", "--root", root.path, "--games", "30", "--actors", "1", "--seed", "1",
        "--no-until-solved", "--max-waiting", "0", "--batch-steps", "none",
        "--batch-files", "1", "--n-epochs", "30", "--target-kl", "none",
    )  # fmt: skip

    assert run.finish() == 0, str(run)
    files = episode_files(root)
    assert sum(len(paths) for paths in files.values()) == 30
    assert len(files["buffer"]) > 0, "the run waited until the learner had trained them all"


@posix_only
def test_without_the_spare_one_game_process_plays_everything(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    env_id = "tests.games_for_tests:slow_cartpole"
    run = start(
        "run", "--root", root.path, "--env", env_id, "--games", "6", "--actors", "1",
        "--n-epochs", "1", "--no-until-solved", "--no-spare-actor", cwd=REPO,
    )  # fmt: skip

    assert run.finish() == 0, str(run)
    actors = Counter(e["actor"] for e in game_events(root))
    assert actors == Counter({0: 6})


@posix_only
def test_an_unknown_game_is_refused_with_one_clear_line(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    run = start("run", "--root", root.path, "--env", "NoSuchGame-v0", "--games", "1")

    assert run.finish() == 1, str(run)
    assert_no_stray_process(run.pgid)
    err = run.stderr
    assert err.startswith("error: unknown game 'NoSuchGame-v0'"), err
    assert "Use a Gymnasium id (e.g. CartPole-v1) or package.module:factory" in err
    assert "Traceback" not in err
    assert not any(files for files in episode_files(root).values())


def test_the_unknown_game_message_has_no_doubled_period():
    with pytest.raises(BgtrainError) as caught:
        make_env("NoSuchGame-v0")
    assert ".." not in str(caught.value), str(caught.value)


@posix_only
def test_a_second_run_on_a_locked_root_is_refused_and_plays_no_game(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    lock = LearnerLock(root.path).acquire()
    try:
        run = start("run", "--root", root.path, "--games", "4", "--actors", "1")
        code = run.finish()
        assert_no_stray_process(run.pgid)
    finally:
        lock.release()

    assert code == 1, str(run)
    err = run.stderr.strip().splitlines()
    assert len(err) == 1, run.stderr
    assert err[0].startswith(
        f"error: another learner already holds {root.path} (pid {os.getpid()} on "
    ), run.stderr
    assert err[0].endswith("stop it first, or use another --root"), run.stderr
    assert not any(files for files in episode_files(root).values())
    assert not root.metrics.exists() or game_events(root) == []


@posix_only
def test_eval_every_steps_evaluates_once_per_window_of_game_steps(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    run = start(
        "run", "--root", root.path, "--games", "120", "--actors", "1", "--seed", "4",
        "--max-waiting", "2", "--n-epochs", "2", "--eval-every-steps", "200",
        "--eval-episodes", "3",
    )  # fmt: skip

    assert run.finish() == 0, str(run)
    assert_no_stray_process(run.pgid)
    events = [json.loads(line) for line in root.metrics.read_text("utf-8").splitlines()]
    games = [e for e in events if e.get("event") == "game"]
    steps = sum(e["length"] for e in games)
    # 120 games, or fewer if an evaluation solved it first
    summary = f"Games played:       {len(games)} in "
    assert any(line.startswith(summary) and line.endswith(f"({steps} steps)") for line in run.lines)
    # The games wait for the learner: the buffer never holds more than 2 games, counting
    # those still being written, so the first batch and the games played while it trains
    # are the only ones played before a model. (The games being written were not counted:
    # on a busy machine a CartPole game outran its fsync, the pacing never saw a game
    # waiting, and all 120 games could be played before v1, leaving nothing to evaluate.)
    before_a_model = [g for g in games if g["policy_version"] is None]
    assert len(before_a_model) <= 2 * 2, len(before_a_model)
    evals = [e for e in events if e.get("event") == "eval"]
    assert len(evals) >= 2, evals
    windows = [e["steps"] // 200 for e in evals]
    assert windows == sorted(set(windows)) and windows[0] >= 1, windows
    assert all(e["episodes"] == 3 and e["greedy"] for e in evals)


@posix_only
def test_eval_every_steps_keeps_its_schedule_without_until_solved(tmp_path, start):
    """It used to write no ``eval`` event at all together with --no-until-solved."""
    root = TrainingRoot(tmp_path / "root")
    run = start(
        "run", "--root", root.path, "--games", "40", "--actors", "1", "--seed", "4",
        "--max-waiting", "2", "--n-epochs", "1", "--eval-every-steps", "200",
        "--eval-episodes", "2", "--no-until-solved",
    )  # fmt: skip

    assert run.finish() == 0, str(run)
    events = [json.loads(line) for line in root.metrics.read_text("utf-8").splitlines()]
    assert len([e for e in events if e.get("event") == "game"]) == 40  # never stopped early
    evals = [e for e in events if e.get("event") == "eval"]
    assert len(evals) >= 1, evals
    assert all(e["episodes"] == 2 and e["greedy"] for e in evals)


# --------------------------------------------------------------------------- games that do not fit


def publish_model(root: TrainingRoot, obs_dim: int, n_actions: int, env: str) -> None:
    """Version 1 of a model made for ``env`` (numpy arrays, as the learner publishes)."""
    from bgtrain.store.models import ModelMeta

    from .test_policy import model_arrays

    with LearnerLock(root.path):
        ModelStore(root.path).publish(
            model_arrays(0, obs_dim, n_actions),
            ModelMeta(version=0, obs_dim=obs_dim, n_actions=n_actions, extra={"env": env}),
        )


@posix_only
@pytest.mark.parametrize(
    ("env_id", "shape"),
    [
        ("Acrobot-v1", "6 observations, 3 actions"),
        ("tests.games_for_tests:four_inputs_three_actions", "4 observations, 3 actions"),
    ],
)
def test_a_game_the_root_s_model_does_not_fit_is_refused_before_any_game(
    tmp_path, start, env_id, shape
):
    root = TrainingRoot(tmp_path / "root")
    publish_model(root, 4, 2, "CartPole-v1")
    run = start("run", "--root", root.path, "--env", env_id, "--games", "3", cwd=REPO)

    assert run.finish() == 1, str(run)
    assert_no_stray_process(run.pgid)
    assert run.stderr.splitlines() == [
        f"error: the model in --root {root.path} (v1) was made for CartPole-v1 "
        f"(4 observations, 2 actions); {env_id} has {shape}. Use another --root for "
        f"{env_id}, or --env CartPole-v1"
    ]
    assert run.lines == []  # nothing started: no learner, no game
    assert not any(files for files in episode_files(root).values())
    assert ModelStore(root.path).latest_version() == 1


@posix_only
def test_an_n_actions_setting_the_game_does_not_have_is_refused_before_any_game(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    run = start("run", "--root", root.path, "--n-actions", "3", "--games", "2")

    assert run.finish() != 0, str(run)  # a settings error (the CLI's exit code for those)
    assert run.stderr.splitlines() == [
        "error: n_actions = 3 does not fit CartPole-v1, which has 2 actions; leave it unset "
        "(taken from the games)"
    ]
    assert run.lines == []


@posix_only
def test_games_returning_nan_are_refused_one_line_each_and_counted_in_the_summary(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    env_id = "tests.games_for_tests:nan_every_third_game"
    # One game process only: the game counts its own games (every third is refused), so
    # a spare process's games would move which ones are refused.
    run = start(
        "run", "--root", root.path, "--env", env_id, "--games", "9", "--actors", "1",
        "--no-until-solved", "--n-epochs", "1", "--no-spare-actor", cwd=REPO,
    )  # fmt: skip

    assert run.finish() == 0, str(run)
    assert_no_stray_process(run.pgid)
    reason = (
        f"{env_id} returned observation[1] = nan at step 5; a recorded game holds finite "
        "numbers only"
    )
    refused = [line for line in run.lines if line.startswith("[REFUSED]")]
    assert refused == [f"[REFUSED] game of process 0 not saved: {reason}"] * 3
    assert any(line.startswith("Games played:       9 in ") for line in run.lines), run.stdout
    assert f"Games refused:      3, not saved (last: {reason})" in run.lines
    assert "Traceback" not in run.stderr and "EpisodeWriteError" not in run.stderr, run.stderr
    files = episode_files(root)
    assert sum(len(paths) for paths in files.values()) == 6  # 6 saved + 3 refused = 9
    events = [json.loads(line) for line in root.metrics.read_text("utf-8").splitlines()]
    assert [e["reason"] for e in events if e.get("event") == "game_refused"] == [reason] * 3
    assert len(game_events(root)) == 6


@posix_only
def test_a_game_refused_every_time_stops_the_run_with_one_error_line(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    env_id = "tests.games_for_tests:nan_always"
    # One game process: the game it has in progress when the run stops (at most one, which
    # has not reached its NaN at step 2) is saved cut short, as any stopped game is.
    run = start(
        "run", "--root", root.path, "--env", env_id, "--games", "100", "--actors", "1",
        "--no-spare-actor", cwd=REPO,
    )  # fmt: skip

    assert run.finish() == 1, str(run)
    assert_no_stray_process(run.pgid)
    reason = (
        f"{env_id} returned observation[1] = nan at step 2; a recorded game holds finite "
        "numbers only"
    )
    assert run.stderr.splitlines() == [
        f"error: the last 10 games of {env_id} were all refused, none saved (last: {reason})"
    ]
    # None of the refused games was saved: what is on disk is the stopped game, if any.
    saved = [path for files in episode_files(root).values() for path in files]
    assert len(saved) <= 1, saved
    for path in saved:
        episode = load_episode(path)
        assert (episode.length, episode.terminated) == (1, False), path


def assert_stopped_with_one_error_line(run: Bgtrain, line: str) -> None:
    """The run failed, left no process, and said why on stderr in ``line`` alone."""
    assert run.finish() == 1, str(run)
    assert_no_stray_process(run.pgid)
    assert run.stderr.splitlines() == [line], str(run)


#: A limit a game of ``big_observation`` (20 steps of 20,000 values: 1.5 MiB) is over.
SIZE_LIMITS = {
    "--max-file-mb": ("--max-file-mb", "1"),
    "--max-unpacked-mb": ("--max-unpacked-mb", "1", "--max-file-mb", "64"),
}


@posix_only
@pytest.mark.parametrize("limit", SIZE_LIMITS)
def test_games_over_the_learner_s_size_limit_stop_the_run_saying_what_to_do(tmp_path, start, limit):
    """Such games were set aside one by one while the run played on with model v0 for ever
    (CarRacing: 105.6 MiB a game), and only the log said why."""
    root = TrainingRoot(tmp_path / "root")
    env_id = "tests.games_for_tests:big_observation"
    run = start(
        "run", "--root", root.path, "--env", env_id, "--games", "100", "--actors", "1",
        "--no-spare-actor", *SIZE_LIMITS[limit], cwd=REPO,
    )  # fmt: skip

    assert_stopped_with_one_error_line(
        run,
        f"error: a game of {env_id} (20 steps of 20000 observation values) makes an episode "
        f"file of at least 1.5 MiB, over the learner's {limit} 1; the learner sets such games "
        f"aside in quarantine/ and the model would stay v0. Raise {limit} to 3 or more, or "
        "shrink the observation (a smaller or grayscale image, a wrapper)",
    )
    assert any(line.startswith("Games played:       1 in ") for line in run.lines), str(run)
    files = episode_files(root)  # the game played is kept: in buffer/, or set aside
    assert [len(paths) for paths in files.values()] in ([1, 0, 0, 0, 0], [0, 0, 0, 0, 1]), files


@posix_only
def test_a_game_with_actions_from_minus_one_trains_and_plays_its_model(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    actions_log = tmp_path / "actions.txt"
    run = start(
        "run", "--root", root.path, "--env", "tests.games_for_tests:shifted_actions",
        "--games", "12", "--actors", "1", "--max-waiting", "2", "--n-epochs", "1",
        "--no-until-solved", cwd=REPO,
        env={**os.environ, "BGTRAIN_TEST_ACTIONS": str(actions_log)},
    )  # fmt: skip

    assert run.finish() == 0, str(run)
    assert_no_stray_process(run.pgid)
    assert any(line.startswith("Games played:       12 in ") for line in run.lines), run.stdout
    assert {int(a) for a in actions_log.read_text().split()} == {-1, 0, 1}
    model = ModelStore(root.path).load()
    assert (model.meta.obs_dim, model.meta.n_actions) == (4, 3)
    episodes = load_all(episode_files(root))
    assert len(episodes) == 12
    assert {a for ep in episodes.values() for a in ep.actions.tolist()} == {0, 1, 2}
    assert any(ep.policy_version is not None for ep in episodes.values())  # played on v1+


@posix_only
def test_a_game_past_the_step_limit_flag_is_saved_as_cut_short(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    run = start(
        "run", "--root", root.path, "--env", "tests.games_for_tests:endless_fast",
        "--max-game-steps", "30", "--games", "3", "--actors", "1", "--n-epochs", "1",
        cwd=REPO,
    )  # fmt: skip

    assert run.finish() == 0, str(run)
    assert_no_stray_process(run.pgid)
    assert any(line.startswith("Games played:       3 in ") for line in run.lines), run.stdout
    episodes = load_all(episode_files(root)).values()
    assert [(ep.length, ep.terminated) for ep in episodes] == [(30, False)] * 3
    assert all(ep.last_state is not None for ep in episodes)


@posix_only
def test_a_game_with_a_negative_threshold_stops_when_solved(tmp_path, start):
    root = TrainingRoot(tmp_path / "root")
    run = start(
        "run", "--root", root.path, "--env", "tests.games_for_tests:negative_threshold",
        "--actors", "1", "--seed", "1", "--learning-rate", "0.003", "--minutes", "1.5",
        cwd=REPO,
    )  # fmt: skip

    assert run.finish() == 0, str(run)
    assert_no_stray_process(run.pgid)
    stopped = next(line for line in run.lines if line.startswith("Stopped:"))
    solved = re.fullmatch(
        r"Stopped: +solved \(greedy evaluation of model v\d+: mean (-\d+\.\d) over 10 games\)",
        stopped,
    )
    assert solved and -91.0 <= float(solved.group(1)) <= -90.0, stopped


@pytest.mark.parametrize(
    ("mean", "lowest", "threshold", "near"),
    [
        (-73.8, -500.0, -100.0, True),  # Acrobot-v1 as in the issue: threshold / 2 = -50
        (-310.0, -500.0, -100.0, False),
        (-150.0, -200.0, -110.0, True),  # MountainCar-v0: from -200, half-way is -155
        (-160.0, -200.0, -110.0, False),
        (250.0, 20.0, 475.0, True),  # CartPole-v1: as before, about half the threshold
        (240.0, 20.0, 475.0, False),
        (-5.0, -20.0, 0.0, True),  # a threshold of 0
        (-11.0, -20.0, 0.0, False),
        (480.0, 480.0, 475.0, True),  # already past it from the start
    ],
)
def test_evaluations_start_half_way_to_the_threshold_whatever_its_sign(
    mean, lowest, threshold, near
):
    from bgtrain.runner.evaluations import half_way

    assert half_way(mean, lowest, threshold) is near


# --------------------------------------------------------------------------- settings, one source


#: A value other than the default for every run setting: its flag, and its TOML value.
RUN_VALUES = {
    "env": (["--env", "Acrobot-v1"], '"Acrobot-v1"', "Acrobot-v1"),
    "actors": (["--actors", "3"], "3", 3),
    "root": (["--root", "elsewhere"], '"elsewhere"', Path("elsewhere")),
    "games": (["--games", "7"], "7", 7),
    "minutes": (["--minutes", "1.5"], "1.5", 1.5),
    "until_solved": (["--no-until-solved"], "false", False),
    "eval_episodes": (["--eval-episodes", "4"], "4", 4),
    "eval_every_steps": (["--eval-every-steps", "100"], "100", 100),
    "seed": (["--seed", "9"], "9", 9),
    "max_waiting": (["--max-waiting", "0"], "0", 0),
    "max_game_steps": (["--max-game-steps", "50"], "50", 50),
    "spare_actor": (["--no-spare-actor"], "false", False),
    "engine": (["--engine", "ray"], '"ray"', "ray"),
    # The Ray engine's own settings need it named too.
    "address": (["--engine", "ray", "--address", "auto"], '"auto"\nengine = "ray"', "auto"),
    "game_cpus": (["--game-cpus", "0.5"], "0.5", 0.5),
    "game_resource": (
        ["--engine", "ray", "--game-resource", "sc2"],
        '"sc2"\nengine = "ray"',
        "sc2",
    ),
}


def run_args(*flags: str):
    from bgtrain.cli import build_parser

    return build_parser().parse_args(["run", *flags])


def test_every_run_setting_has_a_value_here():
    """A setting added to RunConfig without a row here (and so perhaps without a flag or
    a TOML key) fails."""
    from bgtrain.runner.settings import NESTED, RunConfig

    assert list(RUN_VALUES) == [f.name for f in dataclasses.fields(RunConfig)][: -len(NESTED)]
    assert [f.name for f in dataclasses.fields(RunConfig)][-len(NESTED) :] == list(NESTED)


@pytest.mark.parametrize("name", list(RUN_VALUES))
def test_every_run_setting_is_a_flag_and_a_key_of_the_run_table(tmp_path, name):
    from bgtrain.cli.run import config_from_args
    from bgtrain.runner.settings import RunConfig

    flags, toml_value, value = RUN_VALUES[name]
    assert getattr(RunConfig(), name) != value
    assert getattr(config_from_args(run_args(*flags)), name) == value
    config = tmp_path / "bgtrain.toml"
    config.write_text(f"[run]\n{name} = {toml_value}\n", encoding="utf-8")
    assert getattr(config_from_args(run_args("--config", str(config))), name) == value


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--address", "auto"], "address set the Ray engine's games: add --engine ray"),
        (
            ["--game-resource", "sc2", "--address", "h:1"],
            "address and game_resource set the Ray engine's games: add --engine ray",
        ),
    ],
)
def test_a_ray_setting_without_the_ray_engine_is_refused(tmp_path, flags, message):
    done = bgtrain_cli("run", *flags, "--games", "1", "--root", tmp_path / "r", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f'error: {message} (or engine = "ray" in [run])']
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--game", "sc2", "--minutes", "5"],
            "--minutes is not a setting of --game sc2; leave it out",
        ),
        (
            ["--game", "sc2", "--env", "Acrobot-v1", "--max-waiting", "2"],
            "--env, --max-waiting are not settings of --game sc2; leave them out",
        ),
        (["--map", "AcropolisLE"], "--map is for --game sc2 only; add --game sc2 or leave it out"),
        (
            ["--difficulty", "Hard", "--race", "Zerg"],
            "--difficulty, --race are for --game sc2 only; add --game sc2 or leave them out",
        ),
    ],
)
def test_a_flag_of_the_other_kind_of_run_is_refused_not_ignored(tmp_path, flags, message):
    done = bgtrain_cli("run", *flags, "--games", "1", "--root", tmp_path / "r", cwd=tmp_path)
    assert (done.returncode, done.stderr.splitlines()) == (2, [f"error: {message}"])
    assert not (tmp_path / "r").exists()


def test_a_run_flag_out_of_range_is_a_usage_error_naming_the_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        run_args("--eval-episodes", "0")
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "bgtrain run: error: argument --eval-episodes: must be at least 1, got 0"
    )


def test_the_starcraft_flags_are_the_sc2_run_settings():
    from bgtrain.cli.run import sc2_config_from_args
    from bgtrain.integrations.sc2.settings import DEFAULT_BOT, Sc2RunConfig

    defaults = sc2_config_from_args(run_args("--game", "sc2"))
    assert defaults == dataclasses.replace(Sc2RunConfig(), learner=defaults.learner)
    assert defaults.bot == DEFAULT_BOT and defaults.race == "Random"
    given = sc2_config_from_args(
        run_args(
            "--game", "sc2", "--map", "AcropolisLE", "--difficulty", "Hard", "--race", "Zerg",
            "--bot", "my_bots:Zerg", "--max_games", "3", "--seed", "5", "--root", "r",
        )
    )  # fmt: skip
    assert (given.map, given.difficulty, given.race, given.bot) == (
        "AcropolisLE", "Hard", "Zerg", "my_bots:Zerg",
    )  # fmt: skip
    assert (given.games, given.seed, given.root) == (3, 5, Path("r"))
    assert given.learner.verbose is False  # as under a Gymnasium run


def test_the_settings_a_starcraft_run_shares_with_a_run_are_declared_once():
    """One flag each (``--root``, ``--games``, ``--seed``, ``--actors`` and the engine's):
    one help text, one range."""
    from bgtrain.integrations.sc2.settings import Sc2RunConfig
    from bgtrain.runner.settings import SHARED, RunConfig

    run_fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    sc2_fields = {f.name: f for f in dataclasses.fields(Sc2RunConfig)}
    assert list(SHARED) == [
        *("root", "games", "seed", "actors"),
        *("engine", "address", "game_cpus", "game_resource"),
    ]
    for name in SHARED:
        run_field, sc2_field = run_fields[name], sc2_fields[name]
        assert sc2_field.default == run_field.default, name
        assert sc2_field.metadata == run_field.metadata, name
    assert sc2_fields["seed"].metadata["help"] == (
        "seed of the games and of the network (none: random)"
    )


#: Runs the CLI (``sys.argv[1:]``) where ``import sc2`` fails, as without the [sc2] extra.
WITHOUT_BURNYSC2 = """
import importlib.abc, sys

class NoBurnysc2(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "sc2" or name.startswith("sc2."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoBurnysc2())
from bgtrain.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_burnysc2_every_run_flag_is_there_and_sc2_says_how_to_install_it(tmp_path):
    def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", WITHOUT_BURNYSC2, *map(str, args)]
        return subprocess.run(
            command, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=60
        )

    shown = cli("run", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--difficulty" in shown.stdout and "--race" in shown.stdout
    refused = cli("run", "--game", "sc2", "--root", tmp_path / "root", "--games", "1")
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "error: bgtrain's StarCraft II integration needs burnysc2: "
        'python -m pip install -e ".[sc2]"  (or: pip install burnysc2)'
    ]


def test_readme_tables_of_the_run_settings_are_the_settings():
    from bgtrain.integrations.sc2.settings import sc2_settings_table
    from bgtrain.runner.settings import run_settings_table

    readme = (REPO / "README.md").read_text("utf-8")
    assert run_settings_table() in readme
    assert sc2_settings_table() in readme


def test_the_library_run_logs_its_lines_instead_of_printing(tmp_path, capsys, caplog):
    """The CLI passes print; a Run made in Python without a console logs."""
    import logging

    from bgtrain.cli.run import config_from_args
    from bgtrain.runner.session import Run

    config = config_from_args(run_args("--root", str(tmp_path / "root")))  # with its preset
    with caplog.at_level(logging.INFO, logger="bgtrain.runner.session"):
        Run(config).announce_preset()
    assert capsys.readouterr().out == ""
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1 and logged[0].startswith("[INFO] Settings preset for CartPole-v1: ")
