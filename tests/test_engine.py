"""The engine seam (bgtrain.runner.engine): the local engine starts a real learner and real
game processes, their reports come back, a stop or a kill leaves no process behind, a
learner that cannot start says why; a second engine (:class:`ThreadEngine`: the same real
parts, in threads) runs a whole ``bgtrain run`` through the seam; and the one interrupt
handler of every run."""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from bgtrain import LearnerLock, ModelStore, TrainingRoot, load_episode
from bgtrain.errors import BgtrainError
from bgtrain.learn.learner import BackgroundLearner
from bgtrain.learn.settings import LearnerSettings
from bgtrain.runner.actor import ActorConfig, Report, run_games
from bgtrain.runner.engine import (
    GAMES_STOP_TIMEOUT_S,
    INTERRUPTED_EXIT_CODE,
    Interrupts,
    LocalEngine,
)
from bgtrain.runner.session import Run, actor_seed
from bgtrain.runner.settings import RunConfig

from .helpers import assert_no_stray_process, wait_until

ENGINE_TIMEOUT_S = 120
#: The lines every run says once its learner runs (the seed's).
LEARNER_STARTED = [
    "[OK] Background parallel learner initialized and started",
    "[INFO] Experience replay training will run in background",
]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX sessions")

#: A program that drives a LocalEngine the way a run does, in a session of its own (so
#: that every process it leaves behind can be found), and prints what it saw as JSON.
ENGINE_SCRIPT = """
import json, sys, time
from pathlib import Path

from bgtrain.learn.settings import LearnerSettings
from bgtrain.runner.actor import ActorConfig
from bgtrain.runner.engine import LocalEngine


def main(root: Path, how: str, games: int) -> None:
    engine = LocalEngine()
    engine.start_learner(root, LearnerSettings(n_epochs=1, verbose=False, seed=1))
    started = engine.learner_alive()
    configs = [ActorConfig(root, "CartPole-v1", i, seed=i, max_waiting=2) for i in range(2)]
    engine.start_games(configs, None if how == "kill" else games)
    reports = []
    deadline = time.monotonic() + 60
    while len(reports) < games and time.monotonic() < deadline:
        reports += engine.reports(0.5)
    if how == "kill":
        engine.kill()
    else:
        engine.stop()
        reports += engine.reports(0)
    seen = [[type(r).__name__, r.actor_id, r.length] for r in reports]
    print(json.dumps({"learner_started": started, "reports": seen,
                      "after": [engine.learner_alive(), engine.games_alive()]}))


if __name__ == "__main__":  # spawned processes import this file again: not this part
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
"""


def drive_engine(tmp_path: Path, how: str, games: int) -> tuple[dict, int]:
    """Run :data:`ENGINE_SCRIPT`; its output and its process group."""
    script = tmp_path / "drive_engine.py"
    script.write_text(ENGINE_SCRIPT, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "root"), how, str(games)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its pid is its group: everything it started is in it
    )
    try:
        out, err = proc.communicate(timeout=ENGINE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # leave nothing running behind a failure
        pytest.fail(f"the engine did not finish within {ENGINE_TIMEOUT_S} s")
    assert proc.returncode == 0, out + err
    return json.loads(out.splitlines()[-1]), proc.pid


def episodes(root: TrainingRoot) -> list[Path]:
    return [p for p in root.data.rglob("*.npz") if not p.name.startswith(".")]


@posix_only
def test_the_local_engine_runs_the_learner_and_the_games_and_stop_leaves_no_process(tmp_path):
    seen, pgid = drive_engine(tmp_path, "stop", games=4)

    assert_no_stray_process(pgid)
    assert seen["learner_started"] is True
    assert seen["after"] == [False, 0]
    reports = seen["reports"]
    assert [kind for kind, _, _ in reports] == ["GameReport"] * 4, reports
    assert {actor for _, actor, _ in reports} <= {0, 1}
    root = TrainingRoot(tmp_path / "root")
    assert len(episodes(root)) == 4  # every game reported is a file, and no more
    LearnerLock(root.path).acquire().release()  # and let go of the root


@posix_only
def test_killing_the_local_engine_leaves_no_process_and_the_root_usable(tmp_path):
    seen, pgid = drive_engine(tmp_path, "kill", games=2)

    assert_no_stray_process(pgid)
    assert len(seen["reports"]) >= 2
    root = TrainingRoot(tmp_path / "root")
    assert list(root.buffer.glob(".*")) == []  # no killed writer's temp is left
    LearnerLock(root.path).acquire().release()  # a killed learner's lock is free again


def test_a_learner_that_cannot_start_gives_its_own_message(tmp_path):
    root = TrainingRoot(tmp_path / "root")
    engine = LocalEngine()
    with LearnerLock(root.path), pytest.raises(BgtrainError) as refused:
        engine.start_learner(root.path, LearnerSettings(verbose=False))
    assert str(refused.value).startswith(
        f"another learner already holds {root.path} (pid {os.getpid()} on "
    )
    assert not engine.learner_alive()
    engine.stop()  # harmless: nothing runs
    assert mp.active_children() == []


def test_the_learner_process_s_lines_and_log_records_are_said_in_the_run_in_order(tmp_path, caplog):
    """Said by the learner process itself, they went to the terminal beside the run's
    progress line: glued onto it ("...| 8s   [BG_LEARNER] Stopped")."""
    root = TrainingRoot(tmp_path / "root")
    root.buffer.mkdir(parents=True)
    bad = root.buffer / "game_20260101_000000_000_a0_Victory.npz"
    bad.write_bytes(b"not an npz file")
    engine, lines = LocalEngine(), []
    with caplog.at_level(logging.INFO):
        engine.start_learner(root.path, LearnerSettings(verbose=False), lines.append)
        try:
            assert lines[0] == f"[BG_LEARNER] Started (Monitoring {root.buffer})"
            wait_until(lambda: len(lines) > 1, timeout=ENGINE_TIMEOUT_S, what="a second line")
        finally:
            engine.stop()
    assert lines[1:] == [
        f"[BG_LEARNER] [WARN] Quarantined {bad.name}: not an .npz file (not a zip archive)",
        "[BG_LEARNER] Stopped",  # said before stop() returned
    ]
    logged = [(r.name, r.getMessage()) for r in caplog.records if r.name.startswith("bgtrain.")]
    assert ("bgtrain.store.spool", f"{bad.name} -> quarantine/: not an .npz file (not a zip "
            "archive)") in logged, logged  # fmt: skip
    assert mp.active_children() == []


# --------------------------------------------------------------------------- another engine


class ThreadSlots:
    """A game budget shared by threads (``None``: unlimited): the game loop's GameSlots."""

    def __init__(self, max_games: int | None) -> None:
        self._left = max_games
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left is None:
                return True
            if self._left == 0:
                return False
            self._left -= 1
            return True

    def spent(self) -> bool:
        with self._lock:
            return self._left == 0


class ThreadEngine:
    """A second engine, to prove the seam: the real learner (:class:`BackgroundLearner`)
    in this process and the real game loop (:func:`run_games`) in threads, sending the
    same reports. Nothing is imitated; only where things run differs from LocalEngine."""

    def __init__(self) -> None:
        self.learner: BackgroundLearner | None = None
        self.learner_settings: LearnerSettings | None = None
        self._stop = threading.Event()
        self._reports: queue.Queue[Report] = queue.Queue()
        self._games: list[threading.Thread] = []

    def start_learner(
        self, root: Path, settings: LearnerSettings, console: Callable[[str], None] | None = None
    ) -> None:
        self.learner_settings = settings
        self.learner = BackgroundLearner(root, settings, console=console)
        self.learner.start()

    def learner_alive(self) -> bool:
        return self.learner is not None and self.learner.running

    def start_games(self, configs: Sequence[ActorConfig], max_games: int | None) -> None:
        slots = ThreadSlots(max_games)
        for config in configs:
            game = threading.Thread(
                target=run_games,
                args=(config, self._stop, slots, self._reports),
                name=f"test-game-{config.actor_id}",
            )
            game.start()
            self._games.append(game)

    def reports(self, timeout: float) -> list[Report]:
        out: list[Report] = []
        with contextlib.suppress(queue.Empty):
            out.append(self._reports.get(timeout=timeout))
            while True:
                out.append(self._reports.get_nowait())
        return out

    def games_alive(self) -> int:
        return sum(game.is_alive() for game in self._games)

    def stop(self) -> None:
        self._stop.set()
        for game in self._games:
            game.join(GAMES_STOP_TIMEOUT_S)
        if self.learner is not None:
            self.learner.stop()

    def kill(self) -> None:
        self._stop.set()  # the process exits next (quit_at_once): the threads end with it


def test_a_run_on_another_engine_plays_its_budget_beside_the_learner_and_leaves_no_thread(
    tmp_path,
):
    root = TrainingRoot(tmp_path / "root")
    config = RunConfig(
        root=root.path,
        games=12,
        actors=2,
        seed=1,
        until_solved=False,
        learner=LearnerSettings(n_epochs=1, verbose=False),
    )
    engine, lines = ThreadEngine(), []
    before = set(threading.enumerate())

    summary = Run(config, lines.append, engine=engine).run()

    assert [t.name for t in threading.enumerate() if t not in before] == []
    assert (summary.stop_reason, summary.exit_code, summary.error) == ("12 games", 0, None)
    assert lines[:4] == [
        f"[BG_LEARNER] Started (Monitoring {root.buffer})",  # the learner's lines too
        *LEARNER_STARTED,
        f"[INFO] Monitoring directory: {root.buffer}",
    ]
    assert lines[-2:-1] == ["[BG_LEARNER] Stopped"] and "[SUMMARY]" in lines[-1]
    saved = episodes(root)
    assert summary.games == len(saved) == 12  # every game reported is a file, and no more
    assert summary.steps == sum(load_episode(p).length for p in saved)
    games_logged = [line for line in root.metrics.read_text("utf-8").splitlines() if line]
    assert sum(json.loads(line)["event"] == "game" for line in games_logged) == 12
    latest = ModelStore(root.path).latest_version()
    assert latest is not None and latest >= 1  # the learner trained and published
    assert summary.last_version == latest
    assert engine.learner_settings is not None and engine.learner_settings.seed == 1
    assert mp.active_children() == []  # no process: everything ran here
    LearnerLock(root.path).acquire().release()  # the learner let go of the root


# --------------------------------------------------------------------------- interrupts


def test_the_first_interrupt_is_counted_and_the_second_quits(tmp_path):
    quits: list[str] = []
    before = signal.getsignal(signal.SIGTERM)
    with Interrupts(lambda: quits.append("now")) as signals:
        signal.raise_signal(signal.SIGTERM)
        assert (signals.count, quits) == (1, [])
        signal.raise_signal(signal.SIGINT)
        assert (signals.count, quits) == (2, ["now"])
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_first_interrupt_is_said_once_and_the_second_is_not_the_first_again():
    said: list[str] = []
    with Interrupts(lambda: said.append("second"), on_first=lambda: said.append("first")):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
    assert said == ["first", "second", "second"]


#: Two interrupts under :func:`quit_at_once`, in a process of its own (it exits it).
QUIT_SCRIPT = """
import functools, signal, sys
from bgtrain.runner.engine import Interrupts, quit_at_once

with Interrupts(functools.partial(quit_at_once, print, "[STOP] quitting")):
    print("[RUN] still here")  # buffered: stdout is a pipe
    signal.raise_signal(signal.SIGINT)
    signal.raise_signal(signal.SIGINT)
    print("not reached")
"""


def test_the_second_interrupt_quits_at_once_with_its_line_and_the_interrupted_code(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", QUIT_SCRIPT],
        capture_output=True,
        text=True,
        timeout=ENGINE_TIMEOUT_S,
        cwd=tmp_path,
    )
    assert result.returncode == INTERRUPTED_EXIT_CODE == 130, result.stderr
    assert result.stdout.splitlines() == ["[RUN] still here", "[STOP] quitting"]


def test_a_loop_that_cannot_look_is_stopped_by_a_keyboard_interrupt():
    """The StarCraft II runner's games run inside burnysc2: the first interrupt raises."""
    before = signal.getsignal(signal.SIGINT)
    with Interrupts(lambda: None, raise_first=True) as signals:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as burnysc2 leaves it after a game
        signals.install()
        assert signal.getsignal(signal.SIGINT) == signals._handle
    assert signal.getsignal(signal.SIGINT) is before  # the first previous handler, not SIG_DFL


def test_game_processes_of_a_seeded_run_never_share_a_seed():
    seeds = [actor_seed(seed, i) for seed in (0, 1, 2) for i in range(8)]
    assert len(set(seeds)) == len(seeds)
    assert actor_seed(3, 2) == 3002 and actor_seed(None, 2) is None
