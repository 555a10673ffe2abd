"""11. Faults: the fault suite. ``python -m bench chaos [--quick] [--minutes N]``.

Real processes, real signals (Linux). On a training root, a writer process adds uniquely
named games (some longer than the learner's ``max_piece_steps``, so that it splits them;
invalid files; files too old to train on) while the learner
(``bgtrain learn``) is killed with SIGKILL at random moments and at each of the core's
named crash points (``BGTRAIN_CRASH_AT``, see ``bgtrain.common.faults``), two learners are
started at the same instant, the learner is stopped (SIGSTOP) and continued, a second
writer is killed while it writes, and a reader loads the model file throughout; then
one learner runs undisturbed while every process's memory is sampled (the soak). On a
second root, an 8 MB tmpfs (where the machine allows mounting one), the disk is filled
while the learner works, then freed.

At the end every root is audited from its files alone: each name a writer logged is in
exactly one of archive/, stale/, quarantine/, split/ (then each of its pieces is
accounted for in turn) or still waiting, in the folder its kind belongs in (a valid game
set aside is a fault: the writers' games are fresh and played by no old model); every
archived game is
in the batch of exactly one model version (the history keeps every version); the latest
model's observation count equals the steps of the games its versions list (a batch
applied to the weights twice shows as more); every set-aside file has its reason.

The quick mode (``--quick``, about a minute) is what CI runs (tests/test_chaos.py); the
full run (10 minutes by default) writes the "Faults" section of BENCHMARKS.md. The exit
code is 1 when a guarantee was broken.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bgtrain import TrainingRoot
from bgtrain.common.faults import ENV_VAR, POINTS
from bgtrain.learn.settings import LearnerSettings
from bgtrain.store.fs import atomic_write_text
from bgtrain.store.models import ModelStore
from bgtrain.store.spool import episode_entries

from .chaos_audit import (
    OLD_TEMP_S,
    STALE_TEMP_AGE_S,
    Audit,
    Expected,
    audit,
    read_midwriter_log,
    read_writer_log,
)
from .harness import Row, fmt, machine, markdown, save_json

NAME = "chaos"
TITLE = "11. Faults"
TARGET = (
    "0 episodes lost, duplicated or trained twice, 0 torn model reads, 0 set-aside files "
    "without a reason, through SIGKILLs of the learner (at random and at every crash point), "
    "writers killed mid-write, a full disk, SIGSTOP and simultaneous starts; every process's "
    "memory under 10 MB/hour after warm-up"
)
REPO = Path(__file__).resolve().parent.parent
READY = "[OK] Background parallel learner initialized and started"
#: Every version stays in the history (the audit reads every version's batch); a small
#: network and 2 epochs keep the learner's cycles short: faults, not learning, are tested.
LEARNER_FLAGS = (
    "--history-size", "10000000", "--n-epochs", "2", "--hidden-sizes", "16", "16",
    "--poll-interval", "0.5", "--torch-threads", "1", "--no-verbose",
    "--stale-temp-age", str(STALE_TEMP_AGE_S),
)  # fmt: skip
MB = 1024 * 1024
MEMORY_TARGET_MB_H = 10.0
#: A memory slope fitted on less than this is noise, not a trend: shown, not judged.
MIN_FIT_S = 120.0
_HOLDER_PID = re.compile(r"\bpid (\d+)")
_START_DELAY = re.compile(r"\[chaos\] start delay (-?[\d.]+) s")

# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    quick: bool
    #: Seconds of learner kills (the full mode; the quick mode runs one of each kind).
    chaos_s: float
    #: Seconds one learner runs undisturbed while memory is sampled.
    soak_s: float
    #: How long the learner stays stopped (SIGSTOP) in each pause.
    stop_s: float
    #: How long the disk stays full.
    disk_hold_s: float
    #: Memory sampling period and the warm-up left out of the fit.
    sample_s: float
    warmup_s: float
    #: Patience for anything that should happen (a start, a publish, a drain).
    deadline_s: float
    #: Steps of the games the mid-write writer writes (large: its writes take a while).
    mid_steps: int

    @classmethod
    def make(cls, quick: bool, minutes: float) -> Plan:
        if quick:
            return cls(
                quick=True, chaos_s=0.0, soak_s=8.0, stop_s=2.0, disk_hold_s=2.0,
                sample_s=0.5, warmup_s=3.0, deadline_s=60.0, mid_steps=30_000,
            )  # fmt: skip
        seconds = minutes * 60
        return cls(
            quick=False, chaos_s=0.45 * seconds, soak_s=0.45 * seconds, stop_s=15.0,
            disk_hold_s=20.0, sample_s=5.0, warmup_s=60.0, deadline_s=120.0, mid_steps=50_000,
        )  # fmt: skip


# --------------------------------------------------------------------------- processes


def _python(*args: str | Path) -> list[str]:
    return [sys.executable, *map(str, args)]


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env["PYTHONUNBUFFERED"] = "1"  # the suite reads the learner's lines as they come
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, **(extra or {})}


def _wait(predicate: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


def _rss_mb(pid: int) -> float | None:
    """Resident memory of ``pid`` from /proc (no dependency), else psutil if installed."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / MB
    except Exception:
        return None


class Processes:
    """The suite's own child processes: started, signalled and reaped by their pid only."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self._all: list[subprocess.Popen] = []
        self._logs: dict[int, Path] = {}
        self._lock = threading.Lock()

    def start(
        self, args: list[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, cwd=self.work, env=_child_env(env)
            )
        with self._lock:
            self._all.append(proc)
            self._logs[proc.pid] = log
        return proc

    def log_text(self, proc: subprocess.Popen) -> str:
        try:
            return self._logs[proc.pid].read_text("utf-8", errors="replace")
        except OSError:
            return ""

    @staticmethod
    def kill(proc: subprocess.Popen) -> bool:
        """SIGKILL ``proc`` if it is still running; True if this call killed it."""
        if proc.poll() is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)  # a stopped process dies as well, but reap it
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True

    @staticmethod
    def terminate(proc: subprocess.Popen, timeout: float) -> int | None:
        """SIGTERM, then wait; the exit code, or None if it had to be killed."""
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            Processes.kill(proc)
            return None

    def kill_all(self) -> None:
        with self._lock:
            procs = list(self._all)
        for proc in procs:
            self.kill(proc)


class MemorySampler(threading.Thread):
    """Samples the resident memory of every tracked process every ``period`` seconds."""

    def __init__(self, period: float) -> None:
        super().__init__(name="chaos-memory", daemon=True)
        self.period = period
        self.samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self._tracked: dict[str, int] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def track(self, label: str, pid: int) -> None:
        with self._lock:
            self._tracked[label] = pid

    def run(self) -> None:
        while not self._halt.is_set():
            now = time.monotonic()
            with self._lock:
                tracked = dict(self._tracked)
            for label, pid in tracked.items():
                rss = _rss_mb(pid)
                if rss:  # None: gone; 0: a zombie not yet reaped
                    self.samples[label].append((now, rss))
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join()


@dataclass
class Growth:
    """A process's memory over the soak: MB/hour from a linear fit after the warm-up."""

    label: str
    first_mb: float
    last_mb: float
    span_s: float
    fitted_s: float
    mb_per_hour: float | None


def growth(label: str, samples: list[tuple[float, float]], warmup_s: float) -> Growth | None:
    if len(samples) < 2:
        return None
    t0, t_end = samples[0][0], samples[-1][0]
    kept = [(t, mb) for t, mb in samples if t - t0 >= warmup_s]
    slope = None
    if len(kept) >= 3 and kept[-1][0] > kept[0][0]:
        hours = np.array([t - kept[0][0] for t, _ in kept]) / 3600
        slope = float(np.polyfit(hours, np.array([mb for _, mb in kept]), 1)[0])
    fitted = kept[-1][0] - kept[0][0] if kept else 0.0
    return Growth(label, samples[0][1], samples[-1][1], t_end - t0, fitted, slope)


# --------------------------------------------------------------------------- the scenarios


@dataclass
class Figures:
    """Everything counted while the faults were made."""

    kills_random: int = 0
    kills_at: Counter = field(default_factory=Counter)
    points_not_reached: Counter = field(default_factory=Counter)
    kills_lock_winner: int = 0
    writer_kills: int = 0
    races: int = 0
    races_wrong: list[str] = field(default_factory=list)
    races_late: int = 0
    pauses: int = 0
    pauses_not_resumed: int = 0
    written_while_paused: int = 0
    unexpected_exits: list[str] = field(default_factory=list)
    unclean_stops: list[str] = field(default_factory=list)
    reads: int = 0
    torn: int = 0
    torn_errors: list[str] = field(default_factory=list)
    went_back: int = 0
    writer_notes: list[str] = field(default_factory=list)
    disk: dict[str, object] = field(default_factory=dict)
    disk_skipped: str | None = None
    growth: list[Growth] = field(default_factory=list)
    not_drained: list[str] = field(default_factory=list)

    @property
    def learner_kills(self) -> int:
        return self.kills_random + sum(self.kills_at.values()) + self.kills_lock_winner


class Scenario:
    """One training root with its writer, reader and learner incarnations."""

    def __init__(
        self, where: Path, logs: Path, plan: Plan, figures: Figures, rng: random.Random
    ) -> None:
        #: The root's folder (``where/root``) and the folder of the processes' logs.
        self.where = where
        self.work = logs
        self.plan = plan
        self.f = figures
        self.rng = rng
        self.root = TrainingRoot(where / "root")
        logs.mkdir(parents=True, exist_ok=True)
        self.procs = Processes(logs)
        self.store = ModelStore(self.root, history_size=None)
        self.expected = Expected()
        self._incarnation = itertools.count(1)
        self.startup_s: list[float] = []

    # ------------------------------------------------------------------ helpers

    def learner(self, env: dict[str, str] | None = None) -> subprocess.Popen:
        n = next(self._incarnation)
        args = _python("-m", "bgtrain", "learn", "--root", self.root.path, *LEARNER_FLAGS)
        return self.procs.start(args, self.work / f"learner-{n:03d}.log", env)

    def ready(self, proc: subprocess.Popen, timeout: float | None = None) -> bool:
        """Wait for the learner's start-up line (False: it died or took too long)."""
        started = time.monotonic()
        ok = _wait(
            lambda: READY in self.procs.log_text(proc) or proc.poll() is not None,
            timeout or self.plan.deadline_s,
        )
        if ok and proc.poll() is None:
            self.startup_s.append(time.monotonic() - started)
            return True
        return False

    def version(self) -> int:
        try:
            return self.store.latest_version() or 0
        except Exception:  # being replaced as we read: ask again later
            return 0

    def waiting(self) -> tuple[int, int]:
        return len(episode_entries(self.root.buffer)), len(episode_entries(self.root.processing))

    def expect_alive(self, proc: subprocess.Popen, what: str) -> bool:
        if proc.poll() is None:
            return True
        tail = self.procs.log_text(proc).strip().splitlines()[-1:] or ["(no output)"]
        self.f.unexpected_exits.append(f"{what}: exit {proc.returncode}: {tail[0][:200]}")
        return False

    def start_reader(self) -> subprocess.Popen:
        out = self.work / "reader.json"
        return self.procs.start(
            _python("-m", "bench.chaos_proc", "reader", self.root.path, out, "--pause", "0.005"),
            self.work / "reader.log",
        )

    def stop_reader(self, proc: subprocess.Popen) -> None:
        self.procs.terminate(proc, 30)
        try:
            stats = json.loads((self.work / "reader.json").read_text("utf-8"))
        except (OSError, ValueError):
            self.f.torn_errors.append(f"{self.work.name}: the reader left no counts")
            return
        self.f.reads += stats["reads"]
        self.f.torn += stats["torn"]
        self.f.went_back += stats["went_back"]
        self.f.torn_errors += stats["errors"]

    def start_writer(self, *extra: str) -> subprocess.Popen:
        """The game-like writer; with a game longer than the learner's ``max_piece_steps``
        every 37th, so that the learner splits games while it is killed."""
        limit = getattr(LearnerSettings(), "max_piece_steps", None)
        if limit is not None and "--sync" not in extra:
            extra = ("--long-every", "37", "--long-steps", str(limit + limit // 4), *extra)
        return self.procs.start(
            _python("-m", "bench.chaos_proc", "writer", self.root.path, self.work / "writer.txt",
                    *extra),
            self.work / "writer.log",
        )  # fmt: skip

    def stop_writer(self, proc: subprocess.Popen) -> None:
        code = self.procs.terminate(proc, 60)
        if code != 0:
            self.f.writer_notes.append(f"{self.work.name}: writer exit {code}")
        try:
            summary = json.loads((self.work / "writer.txt.json").read_text("utf-8"))
        except (OSError, ValueError):
            summary = {}
        if summary.get("write_failures"):
            self.f.writer_notes.append(f"writes failed: {summary['write_failures']}")

    def drain_and_stop(self, proc: subprocess.Popen) -> None:
        """Wait until nothing waits, then stop the learner as a user would (SIGTERM)."""
        calm = 0

        def drained() -> bool:
            nonlocal calm
            calm = calm + 1 if self.waiting() == (0, 0) else 0
            return calm >= 3 or proc.poll() is not None

        if not _wait(drained, self.plan.deadline_s * 3, step=0.2) or proc.poll() is not None:
            buffer, processing = self.waiting()
            self.f.not_drained.append(
                f"{self.work.name}: {buffer} in buffer/, {processing} in processing/"
            )
        self.expect_alive(proc, f"{self.work.name} learner before its stop")
        code = self.procs.terminate(proc, self.plan.deadline_s)
        if code != 0:
            self.f.unclean_stops.append(
                f"{self.work.name}: SIGTERM -> "
                + ("killed after no exit" if code is None else f"exit {code}")
            )

    def pause(self, proc: subprocess.Popen) -> None:
        """SIGSTOP the learner while the writers write, SIGCONT, and see it publish again."""
        if not _wait(lambda: self.version() > 0, self.plan.deadline_s):
            self.f.pauses += 1
            self.f.pauses_not_resumed += 1
            self.f.unexpected_exits.append(f"{self.where.name}: no model to pause the learner on")
            return
        before, games = self.version(), _count_lines(self.work / "writer.txt", "valid ")
        os.kill(proc.pid, signal.SIGSTOP)
        time.sleep(self.plan.stop_s)  # the fault itself: the learner stays stopped this long
        written = _count_lines(self.work / "writer.txt", "valid ") - games
        os.kill(proc.pid, signal.SIGCONT)
        self.f.pauses += 1
        self.f.written_while_paused += written
        # The games go on while the learner is stopped, and it carries on where it was.
        resumed = _wait(lambda: self.version() > before, self.plan.deadline_s)
        if not resumed or written == 0:
            self.f.pauses_not_resumed += 1


class MainScenario(Scenario):
    """Kills of every kind on one root, then the soak."""

    def run(self) -> None:
        self.root.ensure()
        reader, writer = self.start_reader(), self.start_writer()
        sampler = MemorySampler(self.plan.sample_s)
        sampler.track("writer (EpisodeRecorder)", writer.pid)
        sampler.track("model reader", reader.pid)
        sampler.start()
        stop_mid = threading.Event()
        mid = threading.Thread(target=self._kill_midwriters, args=(stop_mid,), daemon=True)
        mid.start()
        try:
            self._chaos()
        finally:
            stop_mid.set()
            mid.join()
        learner = self.learner()
        if self.ready(learner):
            sampler.track("learner (soak)", learner.pid)
            soak_end = time.monotonic() + self.plan.soak_s
            time.sleep(self.plan.soak_s * 0.4)  # the soak: the processes run undisturbed
            self.pause(learner)
            time.sleep(max(0.0, soak_end - time.monotonic()))
            self.expect_alive(learner, "soak learner")
        else:
            self.expect_alive(learner, "soak learner start")
        sampler.stop()
        self.stop_writer(writer)
        self.drain_and_stop(learner)
        self.stop_reader(reader)
        for label, samples in sampler.samples.items():
            span = samples[-1][0] - samples[0][0] if samples else 0.0
            # After the start-up (imports, first model): the fit is of the steady state.
            g = growth(label, samples, max(self.plan.warmup_s, 0.25 * span))
            if g is not None:
                self.f.growth.append(g)
        read_writer_log(self.work / "writer.txt", self.expected)
        for log in sorted(self.work.glob("mid-*.txt")):
            read_midwriter_log(log, self.expected)

    def _events(self) -> Iterator[str]:
        """One of each kind first (the quick mode's whole run), then a random mix."""
        yield from (*POINTS, "pair", "random")
        if self.plan.quick:
            return
        end = time.monotonic() + self.plan.chaos_s
        kinds = [*POINTS, "random", "random", "random", "random", "pair", "stop"]
        while time.monotonic() < end:
            yield self.rng.choice(kinds)

    def _chaos(self) -> None:
        for event in self._events():
            began = time.monotonic()
            self._event(event)
            print(f"[chaos] {event}: {time.monotonic() - began:.1f} s", flush=True)

    def _event(self, event: str) -> None:
        if event in POINTS:
            self._crash_at(event)
        elif event == "pair":
            self._race()
        elif event == "stop":
            learner = self.learner()
            if self.ready(learner):
                self.pause(learner)
            self._kill_now(learner, "paused learner")
        else:
            self._random_kill()

    def _kill_now(self, proc: subprocess.Popen, what: str) -> None:
        if self.expect_alive(proc, what) and self.procs.kill(proc):
            self.f.kills_random += 1

    def _crash_at(self, point: str) -> None:
        """The learner kills itself at ``point`` (BGTRAIN_CRASH_AT)."""
        proc = self.learner({ENV_VAR: point})
        if _wait(lambda: proc.poll() is not None, self.plan.deadline_s):
            if proc.returncode == -signal.SIGKILL:
                self.f.kills_at[point] += 1
            else:
                self.expect_alive(proc, f"learner to crash at {point}")
            return
        self.f.points_not_reached[point] += 1
        self._kill_now(proc, f"learner to crash at {point}")

    def _random_kill(self) -> None:
        proc = self.learner()
        if self.rng.random() < 0.3:  # during start-up and recovery
            _wait(lambda: proc.poll() is not None, self.rng.uniform(0.5, 5.0))
        elif self.ready(proc):
            _wait(lambda: proc.poll() is not None, self.rng.uniform(0.0, 3.0))
        self._kill_now(proc, "learner")

    def _race(self) -> None:
        """Two learners started at the same instant: one runs, the other names it."""
        n = next(self._incarnation)
        go = self.work / f"race-{n:03d}.go"
        args = [str(go), "--root", str(self.root.path), *LEARNER_FLAGS]
        pair = [
            self.procs.start(
                _python("-m", "bench.chaos_proc", "learn-at", *args),
                self.work / f"learner-{n:03d}{side}.log",
            )
            for side in "ab"
        ]
        self.f.races += 1
        # Both import torch first; then both are given the same instant, just ahead.
        _wait(lambda: len(list(self.work.glob(f"{go.name}.*.ready"))) == 2, self.plan.deadline_s)
        atomic_write_text(go, f"{time.time() + 0.3:.6f}")

        def settled() -> bool:
            done = [p for p in pair if p.poll() is not None]
            running = [p for p in pair if READY in self.procs.log_text(p)]
            return len(done) == 2 or (len(done) == 1 and running) or len(running) == 2

        _wait(settled, self.plan.deadline_s)
        delays = [_START_DELAY.search(self.procs.log_text(p)) for p in pair]
        if any(d is None or float(d[1]) < 0 for d in delays):  # a start-up slower than planned
            self.f.races_late += 1
        refused = [p for p in pair if p.poll() is not None]
        running = [p for p in pair if p.poll() is None]
        if len(refused) != 1 or len(running) != 1:
            self.f.races_wrong.append(
                f"{len(running)} learners ran, {len(refused)} refused: "
                + " | ".join(self.procs.log_text(p).strip()[-200:] for p in refused)
            )
        else:
            text = self.procs.log_text(refused[0])
            named = {int(pid) for pid in _HOLDER_PID.findall(text)}
            if named != {running[0].pid}:
                self.f.races_wrong.append(
                    f"the refused learner named pid {named or 'none'}, the live holder is "
                    f"pid {running[0].pid}: {text.strip()[-300:]}"
                )
        for proc in running:
            _wait(lambda p=proc: p.poll() is not None, self.rng.uniform(0.5, 2.5))
            if self.expect_alive(proc, "lock race winner") and self.procs.kill(proc):
                self.f.kills_lock_winner += 1

    def _kill_midwriters(self, stop: threading.Event) -> None:
        """A writer killed while it writes its dot-temp, again and again."""
        durations: list[float] = []
        for n in itertools.count(1):
            if stop.is_set() or (self.plan.quick and n > 3):
                return
            log = self.work / f"mid-{n:03d}.txt"
            proc = self.procs.start(
                _python("-m", "bench.chaos_proc", "midwriter", self.root.path, log,
                        "--seed", str(n), "--steps", str(self.plan.mid_steps)),
                self.work / f"mid-{n:03d}.log",
            )  # fmt: skip
            if not durations:  # the first one writes twice whole: how long a write takes
                _wait(lambda log=log: _count_lines(log, "done ") >= 2, 60)
                durations = read_midwriter_log(log, Expected()) or [0.2]
            # Killed at a random moment of a write that has begun.
            begun = _count_lines(log, "begin ")
            _wait(lambda log=log, b=begun: _count_lines(log, "begin ") > b, 60, 0.005)
            time.sleep(self.rng.uniform(0, 1.3 * float(np.median(durations))))
            if self.procs.kill(proc):
                self.f.writer_kills += 1
            else:
                self.f.writer_notes.append(f"mid-write writer {n} exited by itself")
            stop.wait(self.rng.uniform(0.2, 1.0) if self.plan.quick else self.rng.uniform(1, 4))


class FullDiskScenario(Scenario):
    """An 8 MB tmpfs: fill it while the learner has a backlog, hold, free it."""

    SIZE = "8m"
    #: The root's audit, made while the tmpfs is still mounted.
    _audit: Audit | None = None

    def run(self) -> None:
        self.where.mkdir(parents=True, exist_ok=True)
        why = self._mount(self.where)
        if why:
            self.f.disk_skipped = why
            print(f"[chaos] full disk not tested: {why}", flush=True)
            return
        try:
            self._run()
        finally:
            self.procs.kill_all()
            subprocess.run(["umount", str(self.where)], capture_output=True)

    def audit(self) -> Audit | None:
        """Audited while mounted: called from :meth:`_run` (the tmpfs goes with umount)."""
        return self._audit

    @staticmethod
    def _mount(path: Path) -> str | None:
        if not sys.platform.startswith("linux"):
            return f"tmpfs needs Linux (this is {sys.platform})"
        if shutil.which("mount") is None:
            return "no mount command"
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={FullDiskScenario.SIZE}", "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            return f"mount -t tmpfs not permitted here ({done.stderr.strip() or done.returncode})"
        return None

    def _run(self) -> None:
        d = self.f.disk
        self.root.ensure()
        reader = self.start_reader()
        # Games written one by one and logged once on disk: on a full disk writes fail.
        writer = self.start_writer(
            "--sync", "--pause", "0.2", "--invalid-every", "7", "--stale-every", "11"
        )
        learner = self.learner()
        d["learner died"] = 0
        if not (self.ready(learner) and _wait(lambda: self.version() >= 1, self.plan.deadline_s)):
            self.expect_alive(learner, "full-disk learner start")
            d["learner died"] = 1
            self.procs.kill(learner)
            self._finish(writer, reader)
            return
        # A backlog first (the learner stopped), so that it works while the disk is full.
        os.kill(learner.pid, signal.SIGSTOP)
        _wait(lambda: self.waiting()[0] >= 15, 20)
        ballast = self.where / "ballast"
        d["ballast MB"] = round(self._fill(ballast) / MB, 2)
        os.kill(learner.pid, signal.SIGCONT)
        full_from = time.monotonic()
        died = _wait(lambda: learner.poll() is not None, self.plan.disk_hold_s)
        d["held full s"] = round(time.monotonic() - full_from, 1)
        d["writes refused"] = _count_lines(self.work / "writer.txt", "failed ")
        ballast.unlink()
        freed, before = time.time(), self.version()
        if died:
            self.expect_alive(learner, "learner on a full disk")
            d["learner died"] = 1
            learner = self.learner()  # the data must survive even so
            self.ready(learner)
        started = time.monotonic()
        republished = _wait(lambda: self.version() > before, self.plan.deadline_s)
        d["republished after freeing s"] = (
            round(time.monotonic() - started, 2) if republished else None
        )
        heartbeat = self.root.state / "heartbeat.json"
        d["heartbeat back"] = int(
            _wait(lambda: _mtime(heartbeat) > freed + 0.5, self.plan.deadline_s)
        )
        self.stop_writer(writer)
        self.drain_and_stop(learner)
        self._finish(writer, reader)

    def _finish(self, writer: subprocess.Popen, reader: subprocess.Popen) -> None:
        """Stop the writer and reader, and audit the root while it is still mounted."""
        if writer.poll() is None:
            self.stop_writer(writer)
        self.stop_reader(reader)
        logs = "".join(
            p.read_text("utf-8", errors="replace") for p in self.work.glob("learner-*.log")
        )
        self.f.disk["tracebacks logged"] = logs.count("Traceback")
        read_writer_log(self.work / "writer.txt", self.expected)
        self._audit = audit(self.root, self.expected)

    @staticmethod
    def _fill(path: Path) -> int:
        """Write zeros until the file system is full; the bytes written."""
        written = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            for chunk in (b"\0" * 65536, b"\0" * 512):
                while True:
                    try:
                        written += os.write(fd, chunk)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        return written


def _count_lines(path: Path, prefix: str) -> int:
    try:
        return sum(line.startswith(prefix) for line in path.read_text("utf-8").splitlines())
    except OSError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# --------------------------------------------------------------------------- report


def _count_row(label: str, value: float, unit: str, target: str | None = "0") -> Row:
    met = None if target is None else value == 0
    return Row(label, unit, float(value), float(value), float(value), target=target, met=met)


def rows_for(f: Figures, a: Audit, plan: Plan) -> list[Row]:
    at = ", ".join(f"{p} {f.kills_at[p]}" for p in POINTS)
    rows = [
        _count_row(
            f"learner SIGKILLs survived (random {f.kills_random}; at crash points: {at}; "
            f"lock-race winners {f.kills_lock_winner})",
            f.learner_kills,
            "kills",
            None,
        ),
        _count_row(
            f"writers SIGKILLed mid-write ({a.interrupted_writes} games cut; dot-temps left "
            f"in buffer/: {a.writer_temps_left}, {a.writer_temps_bytes / MB:.1f} MB)",
            f.writer_kills,
            "kills",
            None,
        ),
        _count_row(
            f"files written (valid {a.written['valid']}, invalid {a.written['invalid']}, too "
            f"old {a.written['stale']}); model versions {a.versions}",
            sum(a.written.values()),
            "files",
            None,
        ),
        _count_row("episodes lost", len(a.lost), "files"),
        _count_row("episodes duplicated", len(a.duplicated), "files"),
        _count_row(
            "episodes trained twice (in two versions' batches)", len(a.trained_twice), "files"
        ),
        _count_row(
            "samples trained into the weights other than once (model obs_count - steps listed"
            + (")" if a.obs_excess is not None else "; unknown: history incomplete)"),
            abs(a.obs_excess) if a.obs_excess is not None else 0,
            "samples",
            "0" if a.obs_excess is not None else None,
        ),
        _count_row(
            "exactly-once breaks (archived in no batch, in a batch not archived, history gaps)",
            len(a.archived_unlisted) + len(a.listed_unarchived) + len(a.history_gaps),
            "files",
        ),
        _count_row(f"torn model reads (of {f.reads:,} reads)", f.torn, "reads"),
        _count_row(
            f"set-aside files without NAME.reason.json, or split and the split not finished "
            f"(of {a.set_aside})",
            len(a.without_reason) + len(a.incomplete_splits),
            "files",
        ),
        _count_row(
            "valid games set aside, invalid or too old ones archived", len(a.misplaced), "files"
        ),
        _count_row("writer dot-temps taken as episodes", len(a.writer_temps_taken), "files"),
        _count_row(
            f"simultaneous starts where the refused learner did not name the live holder "
            f"(of {f.races})",
            len(f.races_wrong),
            "races",
        ),
        _count_row(
            f"SIGSTOP pauses ({plan.stop_s:g} s) during which no game was written or after "
            f"which the learner did not publish (of {f.pauses}; {f.written_while_paused} "
            "games written while stopped)",
            f.pauses_not_resumed,
            "pauses",
        ),
        _count_row(
            "learner exits nobody asked for, unclean stops (SIGTERM), roots not drained",
            len(f.unexpected_exits) + len(f.unclean_stops) + len(f.not_drained),
            "events",
        ),
        _disk_row(f),
        _count_row(
            "counters.json totals that disagree with the root"
            + (
                " (" + "; ".join(f"{k} {v[0]} vs {v[1]}" for k, v in a.counters_off.items()) + ")"
                if a.counters_off
                else ""
            ),
            len(a.counters_off),
            "totals",
        ),
    ]
    for g in f.growth:
        if g.mb_per_hour is None:  # too few samples after the warm-up: see the notes
            continue
        judged = not plan.quick and g.fitted_s >= MIN_FIT_S
        slope = round(g.mb_per_hour, 2)
        rows.append(
            Row(
                f"memory growth, {g.label} ({g.first_mb:.1f} -> {g.last_mb:.1f} MB over "
                f"{g.span_s / 60:.1f} min, fitted on the last {g.fitted_s / 60:.1f})"
                + ("" if judged else "; too short to judge"),
                "MB/hour",
                slope,
                slope,
                slope,
                target=f"< {MEMORY_TARGET_MB_H:g}" if judged else None,
                met=(abs(slope) < MEMORY_TARGET_MB_H) if judged else None,
            )
        )
    return rows


def _disk_row(f: Figures) -> Row:
    if f.disk_skipped or not f.disk:
        why = f.disk_skipped or "not run"
        return _count_row(f"full disk: not tested ({why})", 0, "faults", None)
    d = f.disk
    failures = (
        int(d.get("learner died", 0))
        + (d.get("republished after freeing s") is None)
        + (1 - int(d.get("heartbeat back", 0)))
    )
    details = ", ".join(f"{k} {v}" for k, v in d.items())
    return _count_row(
        f"full disk (tmpfs {FullDiskScenario.SIZE}): learner died, did not publish again or "
        f"its heartbeat did not come back after space was freed ({details})",
        failures,
        "faults",
    )


def details(f: Figures, a: Audit) -> list[str]:
    """What each broken guarantee was, name by name (the first few)."""
    out = []

    def some(items: list[str], n: int = 5) -> str:
        return "; ".join(items[:n]) + (f"; ... ({len(items)} in all)" if len(items) > n else "")

    for title, items in (
        ("lost", a.lost),
        ("duplicated", a.duplicated),
        ("trained twice", a.trained_twice),
        ("archived in no version's batch", a.archived_unlisted),
        ("in a batch, not archived", a.listed_unarchived),
        ("history gaps", [str(v) for v in a.history_gaps]),
        ("without a reason", a.without_reason),
        ("split, the split not finished", a.incomplete_splits),
        ("set aside or archived wrongly", [f"{k} ({v})" for k, v in a.misplaced.items()]),
        ("dot-temps taken", a.writer_temps_taken),
        (f"dot-temps older than {OLD_TEMP_S} s not swept", a.writer_temps_old),
        ("torn reads", f.torn_errors),
        ("lock races", f.races_wrong),
        ("unexpected exits", f.unexpected_exits),
        ("unclean stops", f.unclean_stops),
        ("not drained", f.not_drained),
        ("unknown files in the root", a.unknown),
        ("writers", f.writer_notes),
        ("crash points not reached in time", [f"{k} {v}" for k, v in f.points_not_reached.items()]),
    ):
        if items:
            out.append(f"{title}: {some(list(items))}")
    if a.obs_excess:
        out.append(f"model obs_count - steps listed in its versions' batches: {a.obs_excess:+,.0f}")
    if f.went_back:
        out.append(f"the reader saw the model version go back {f.went_back} times")
    if a.learner_temps_left or a.orphan_reasons:
        out.append(
            f"left-overs: {a.learner_temps_left} learner temp(s) in stale/ or quarantine/, "
            f"{a.orphan_reasons} reason file(s) without their file"
        )
    for g in f.growth:
        if g.mb_per_hour is None:
            out.append(
                f"memory of {g.label} not judged: {g.span_s / 60:.1f} min sampled, all of it "
                "warm-up (run longer)"
            )
    if f.races_late:
        out.append(f"{f.races_late} simultaneous start(s) began late (slow start-up)")
    return out


def summary_lines(f: Figures, a: Audit) -> list[str]:
    memory = ", ".join(
        f"{g.label} {fmt(round(g.mb_per_hour, 2)) if g.mb_per_hour is not None else '-'}"
        for g in f.growth
    )
    return [
        f"kills survived: {f.learner_kills} learner (random {f.kills_random}, at points "
        f"{dict(f.kills_at)}, lock-race winners {f.kills_lock_winner}), "
        f"{f.writer_kills} writers mid-write",
        f"episodes lost: {len(a.lost)}, duplicated: {len(a.duplicated)}, trained twice: "
        f"{len(a.trained_twice)} (weights: obs_count - listed = {a.obs_excess})",
        f"torn reads: {f.torn} of {f.reads}, files without reasons: {len(a.without_reason)} "
        f"of {a.set_aside}",
        f"MB/hour: {memory or 'not sampled'}",
    ]


def failures(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.met is False]


# --------------------------------------------------------------------------- entry points


@dataclass
class Outcome:
    rows: list[Row]
    notes: list[str]
    summary: list[str]
    minutes: float


def run_suite(plan: Plan, keep: Path | None = None, seed: int = 0) -> Outcome:
    if not hasattr(signal, "SIGKILL"):  # pragma: no cover - SIGKILL, SIGSTOP: POSIX
        raise SystemExit("python -m bench chaos: the fault suite needs POSIX signals (Linux)")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bgtrain-chaos-")) if keep is None else keep
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    figures = Figures()
    main_root = MainScenario(work / "main", work / "main", plan, figures, rng)
    disk = FullDiskScenario(work / "disk", work / "disk-logs", plan, figures, rng)
    try:
        print("[chaos] kills, races, pauses and writers killed mid-write ...", flush=True)
        main_root.run()
        print("[chaos] full disk ...", flush=True)
        disk.run()
        found = audit(main_root.root, main_root.expected)
        disk_audit = disk.audit()
        if disk_audit is not None:
            found = found.merge(disk_audit)
    finally:
        main_root.procs.kill_all()
        disk.procs.kill_all()
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    rows = rows_for(figures, found, plan)
    return Outcome(
        rows, details(figures, found), summary_lines(figures, found),
        (time.monotonic() - started) / 60,
    )  # fmt: skip


def run(quick: bool) -> list[Row]:
    """The harness's entry: the quick mode or a 10-minute run."""
    return run_suite(Plan.make(quick, 10)).rows


def section(outcome: Outcome, info: dict[str, object], command: str) -> str:
    text = markdown(TITLE, TARGET, outcome.rows)
    text += (
        f"\n\nMeasured {info['date']} on {info['cores']} cores, {info['machine']}, Python "
        f"{info['python']}; command `{command}`, {outcome.minutes:.1f} minutes. Separate from "
        "the speed figures above (it runs alone: `python -m bench chaos`)."
    )
    broken = failures(outcome.rows)
    if outcome.notes:
        text += "\n\n" + ("Found: " if broken else "Notes: ") + " | ".join(outcome.notes)
    return text


def faults_at(text: str) -> int:
    """Where the Faults section starts (-1: none), whatever its number: a page written
    before the sections were renumbered keeps its Faults section too."""
    name = TITLE.split(". ", 1)[1]
    found = re.search(rf"^### \d+\. {re.escape(name)}$", text, re.MULTILINE)
    return found.start() if found else -1


def kept_section(page: Path) -> str:
    """The Faults section of an existing page ("" if none): the speed run keeps it."""
    try:
        text = page.read_text("utf-8")
    except OSError:
        return ""
    at = faults_at(text)
    if at < 0:
        return ""
    _, _, body = text[at:].partition("\n")  # its heading, under the section's number now
    return f"\n\n### {TITLE}\n" + body.rstrip()


def write_section(page: Path, text: str) -> None:
    """Put the Faults section into the page (replacing the last one), keeping the rest."""
    try:
        old = page.read_text("utf-8")
    except OSError:
        old = "# Benchmarks\n"
    at = faults_at(old)
    head = old[:at] if at >= 0 else old
    page.write_text(head.rstrip() + "\n\n" + text + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench chaos",
        description="The fault suite: kills, a full disk, pauses, races; audits the roots.",
    )
    p.add_argument("--quick", action="store_true", help="one fault of each kind (about a minute)")
    p.add_argument("--minutes", type=float, default=10.0, help="length of a full run (default 10)")
    p.add_argument(
        "--out", type=Path, help="page to put the Faults section in (default: BENCHMARKS.md; "
        "--quick: none unless given)"
    )  # fmt: skip
    p.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--keep", type=Path, metavar="DIR", help="run in DIR and keep its roots")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill schedule")
    a = p.parse_args(argv)
    if not a.quick and a.minutes < 10:
        print("[chaos] note: the figures for BENCHMARKS.md need --minutes 10 or more", flush=True)
    command = "python -m bench chaos" + (" --quick" if a.quick else f" --minutes {a.minutes:g}")
    info = machine()
    print(f"[bench] {TITLE} ...", flush=True)
    outcome = run_suite(Plan.make(a.quick, a.minutes), a.keep, a.seed)
    save_json(a.results, NAME, outcome.rows, info, a.quick, command)
    text = section(outcome, info, command)
    print(text + "\n", flush=True)
    for line in outcome.summary:
        print(f"[chaos] {line}", flush=True)
    out = a.out or (None if a.quick else REPO / "BENCHMARKS.md")
    if out is not None:
        write_section(out, text)
        print(f"[bench] wrote the Faults section of {out}", flush=True)
    broken = failures(outcome.rows)
    if broken:
        print(f"[chaos] FAULTS FOUND: {'; '.join(r.label for r in broken)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
