"""Time to solve, bgtrain against Stable-Baselines3 PPO: the shared part of benchmarks 1-4.

Each attempt is a fresh process timed from start to exit (start-up and shutdown count),
evaluated greedily over 10 games every ``eval_every`` game steps on both sides, with the
evaluations' time counted. Seeds alternate between the two so drift in the machine's
speed falls on both. A run that does not solve within its cap counts as the cap: the
figure is then a lower bound, and the row says how many solved.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bgtrain.game.gymnasium_games import game_info
from bgtrain.store.events import E, EvalEvent, Event, GameEvent, StaleEvent, of_kind, read_events

from .harness import Row

REPO = Path(__file__).resolve().parent.parent
#: Beyond its own cap, a process gets this long to stop before it is killed.
GRACE_S = 120.0


@dataclass(frozen=True)
class Attempt:
    solved: bool
    seconds: float
    #: Game steps played when the solving evaluation ran (or by the end).
    steps: int
    #: Games played in all, and those set aside as stale (never learned from): bgtrain only.
    games: int = 0
    stale: int = 0


@dataclass(frozen=True)
class BgtrainRun:
    """A finished ``bgtrain run``: its wall time and the events of its metrics.jsonl."""

    seconds: float
    events: list[Event]

    def of(self, kind: type[E]) -> list[E]:
        """The events of one kind (GameEvent, EvalEvent, StaleEvent, ...), in order."""
        return of_kind(self.events, kind)


@dataclass(frozen=True)
class Race:
    env: str
    #: rl-baselines3-zoo's hyperparameters for SB3 (bench.peers.sb3_ppo.ZOO).
    zoo: str
    seeds: tuple[int, ...]
    eval_every: int
    cap_s: float
    #: Most bgtrain / SB3 time to solve that meets the target.
    target: float
    #: Add a row: the share of bgtrain's games set aside as stale (never learned from).
    stale_row: bool = False

    def quick(self) -> Race:
        """The smoke version: one seed, a few seconds a side, that both sides run and report."""
        return replace(self, seeds=(1,), eval_every=max(1_000, self.eval_every // 10), cap_s=8.0)


def _timed(command: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        done = subprocess.CompletedProcess(command, -9, exc.stdout or "", exc.stderr or "")
    return done, time.perf_counter() - started


def _failed(side: str, done: subprocess.CompletedProcess) -> RuntimeError:
    tail = (str(done.stdout)[-1500:] + "\n" + str(done.stderr)[-1500:]).strip()
    return RuntimeError(f"{side} exited with {done.returncode}:\n{tail}")


def bgtrain_attempt(race: Race, seed: int) -> Attempt:
    """``bgtrain run`` with its defaults, the same evaluation schedule, and a time cap."""
    threshold = game_info(race.env).reward_threshold
    assert threshold is not None, f"{race.env} has no reward threshold to race to"
    return time_bgtrain_run(race.env, seed, race.eval_every, race.cap_s, threshold)


def time_bgtrain_run(
    env: str,
    seed: int,
    eval_every: int,
    cap_s: float,
    threshold: float,
    flags: Sequence[str] = (),
) -> Attempt:
    """One ``bgtrain run`` (with extra ``flags``) on a fresh root, timed from launch to
    exit; solved when an evaluation's mean reached ``threshold``. Raises RuntimeError with
    the run's output if it fails."""
    run = run_bgtrain(env, seed, eval_every, cap_s, flags)
    solving = [e for e in run.of(EvalEvent) if e.mean >= threshold]
    games = run.of(GameEvent)
    steps = solving[0].steps if solving else sum(e.length for e in games)
    return Attempt(bool(solving), run.seconds, steps, len(games), len(run.of(StaleEvent)))


def run_bgtrain(
    env: str, seed: int, eval_every: int, cap_s: float, flags: Sequence[str] = ()
) -> BgtrainRun:
    """One ``bgtrain run --minutes cap_s/60`` (with extra ``flags``) on a fresh root, timed
    from launch to exit, with the events it logged. Raises RuntimeError with the run's
    output if it fails."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-bgtrain-"))
    try:
        root = tmp / "root"
        command = [
            sys.executable, "-m", "bgtrain", "run", "--root", str(root), "--env", env,
            "--seed", str(seed), "--eval-every-steps", str(eval_every),
            "--minutes", f"{cap_s / 60:.4f}", *flags,
        ]  # fmt: skip
        done, seconds = _timed(command, cap_s + GRACE_S)
        if done.returncode != 0:
            raise _failed("bgtrain run", done)
        events = read_events(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return BgtrainRun(seconds, events)


def sb3_attempt(race: Race, seed: int) -> Attempt:
    """Stable-Baselines3 PPO (zoo hyperparameters), the same schedule and cap."""
    command = [
        sys.executable, "-m", "bench.peers.sb3_ppo", "--env", race.env, "--zoo", race.zoo,
        "--seed", str(seed), "--eval-every", str(race.eval_every),
        "--seconds", str(race.cap_s),
    ]  # fmt: skip
    done, seconds = _timed(command, race.cap_s + GRACE_S)
    if done.returncode != 0:
        raise _failed("Stable-Baselines3", done)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Attempt(result["solved"], seconds, result["steps"])


def run_race(race: Race, quick: bool) -> list[Row]:
    """Both sides on every seed, alternating; rows for time and steps to solve."""
    race = race.quick() if quick else race
    ours: list[Attempt] = []
    peers: list[Attempt] = []
    for seed in race.seeds:
        for side, attempt, into in (
            ("bgtrain", bgtrain_attempt, ours),
            ("SB3 PPO", sb3_attempt, peers),
        ):
            result = attempt(race, seed)
            into.append(result)
            print(
                f"[bench]   {race.env} seed {seed} {side}: "
                f"{'solved' if result.solved else 'NOT solved'} in {result.seconds:.1f} s, "
                f"{result.steps:,} steps",
                flush=True,
            )
    rows = [
        _row("seconds to solve", "s", "seconds", ours, peers, race.target),
        _row("game steps to solve", "steps", "steps", ours, peers, STEPS_TARGET),
    ]
    return rows + ([stale_row(ours)] if race.stale_row else [])


#: Most bgtrain / SB3 game steps to solve that meets the target (issue 12: learn as much
#: from every game as the peer).
STEPS_TARGET = 1.0
#: Most share of bgtrain's games (%) set aside as stale that meets the target.
STALE_TARGET_PCT = 5.0


def stale_row(ours: list[Attempt]) -> Row:
    """The share of the games bgtrain played that were set aside as stale, never learned
    from: the median of the runs' shares (the label counts all runs' games together)."""
    games, stale = sum(a.games for a in ours), sum(a.stale for a in ours)
    values = [100.0 * a.stale / a.games if a.games else 0.0 for a in ours]
    median = statistics.median(values)
    return Row(
        f"bgtrain games set aside as stale, never learned from (all runs: {stale:,} of {games:,})",
        "%",
        median,
        min(values),
        max(values),
        target=f"<= {STALE_TARGET_PCT:g}%",
        met=bool(games) and median <= STALE_TARGET_PCT,
        values=values,
    )


def _row(
    what: str,
    unit: str,
    field: str,
    ours: list[Attempt],
    peers: list[Attempt],
    target: float | None,
) -> Row:
    values = [float(getattr(a, field)) for a in ours]
    peer_values = [float(getattr(a, field)) for a in peers]
    solved, peer_solved = sum(a.solved for a in ours), sum(a.solved for a in peers)
    median, peer_median = statistics.median(values), statistics.median(peer_values)
    ratio = median / peer_median
    label = f"{what} (solved: bgtrain {solved}/{len(ours)}, SB3 {peer_solved}/{len(peers)})"
    return Row(
        label,
        unit,
        median,
        min(values),
        max(values),
        peer="SB3 PPO",
        peer_median=peer_median,
        ratio=ratio,
        target=None if target is None else f"<= {target}",
        met=None if target is None else (ratio <= target and solved == len(ours)),
        values=values,
        peer_values=peer_values,
    )
