"""10. Engines: the local engine against the Ray engine on this machine, same games.

Both sides are ``bgtrain run`` on CartPole-v1 with their defaults (one game process and
the spare one on 2 cores), the same seeds and evaluation schedule; the Ray side starts a
Ray instance of its own here (``--engine ray``, no ``--address``), so its games go
through the root's writer actor and pull models from it as a cluster's would.

Then, on paper from measured figures, how many game machines one learner can feed: the
learner's training rate (new samples per second of training, from its batch events)
over one game machine's decision rate. CartPole's and LunarLander's decision rates are
measured here (one game process, a run's own games); StarCraft II's is not (the game
cannot run here): a bot deciding every 4 game seconds at burnysc2's default game speed
(``realtime=False``, as fast as the machine plays it) is taken at the real-time rate
times the game's "faster" speed (1.4), a lower bound.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime

from bgtrain.store.events import BatchEvent, EvalEvent, GameEvent

from .harness import Row
from .solving import BgtrainRun, run_bgtrain

NAME = "engines"
TITLE = "10. Engines"
TARGET = "Ray engine games/s >= local / 1.15; the same steps to solve"
ENV = "CartPole-v1"
THRESHOLD = 475.0
EVAL_EVERY = 5_000
CAP_S = 120.0
#: StarCraft II, on paper: one decision every 4 game seconds, "faster" speed (1.4x real
#: time) at the least, one game per core of a game machine.
SC2_DECISIONS_PER_S = 1.4 / 4
GAME_MACHINE_CORES = 8


def _seconds(stamp: str | None) -> float:
    return datetime.fromisoformat(str(stamp)).timestamp()


def _measure(seed: int, engine: str, cap_s: float, eval_every: int) -> dict[str, float]:
    flags = ["--engine", engine] if engine != "local" else []
    launched = time.time()
    run: BgtrainRun = run_bgtrain(ENV, seed, eval_every, cap_s, flags)
    games = run.of(GameEvent)
    solving = [e for e in run.of(EvalEvent) if e.mean >= THRESHOLD]
    first, last = _seconds(games[0].time), _seconds(games[-1].time)
    return {
        "seconds": run.seconds,
        "steps": float(solving[0].steps if solving else sum(g.length for g in games)),
        "solved": float(bool(solving)),
        "games_per_s": (len(games) - 1) / max(last - first, 1e-9),
        "steps_per_s": sum(g.length for g in games[1:]) / max(last - first, 1e-9),
        "startup_s": first - launched,
    }


def _row(
    label: str, unit: str, ours: list[float], local: list[float], target: str | None = None
) -> Row:
    median, peer = statistics.median(ours), statistics.median(local)
    ratio = median / peer if peer else None
    met = None
    if target == "games/s" and ratio is not None:
        met, target = ratio >= 1 / 1.15, ">= 1/1.15 of local"
    elif target == "steps" and ratio is not None:
        met, target = ratio <= 1.15, "<= 1.15 of local"
    return Row(
        label,
        unit,
        median,
        min(ours),
        max(ours),
        peer="local engine",
        peer_median=peer,
        ratio=ratio,
        target=target,
        met=met,
        values=ours,
        peer_values=local,
    )


def _game_rate(env: str, seconds: float) -> tuple[float, float]:
    """One game process's decisions per second on ``env`` and the learner's training
    rate there, from a short local run (random first, then learning: both rates real)."""
    run = run_bgtrain(env, 1, 10**9, seconds, ["--no-spare-actor", "--actors", "1"])
    games = run.of(GameEvent)
    first, last = _seconds(games[0].time), _seconds(games[-1].time)
    batches = run.of(BatchEvent)
    learner = sum(b.samples for b in batches) / max(sum(b.train_s for b in batches), 1e-9)
    return sum(g.length for g in games[1:]) / max(last - first, 1e-9), learner


def _paper_rows(quick: bool) -> list[Row]:
    seconds = 6.0 if quick else 60.0
    cartpole_game, cartpole_learner = _game_rate(ENV, seconds)
    lunar_game, lunar_learner = _game_rate("LunarLander-v3", seconds)
    rows = []
    for label, learner, per_game in (
        ("CartPole-v1", cartpole_learner, cartpole_game),
        ("LunarLander-v3", lunar_learner, lunar_game),
        ("StarCraft II bot (4 s a decision)", lunar_learner, SC2_DECISIONS_PER_S),
    ):
        machines = learner / (per_game * GAME_MACHINE_CORES)
        rows.append(
            Row(
                f"game machines of {GAME_MACHINE_CORES} games one learner feeds: {label} "
                f"(learner {learner:,.0f} samples/s, a game {per_game:,.2f} decisions/s)",
                "machines",
                machines,
                machines,
                machines,
            )
        )
    return rows


def run(quick: bool) -> list[Row]:
    seeds = (1,) if quick else (1, 2, 3, 4, 5)
    cap_s, eval_every = (10.0, 1_000) if quick else (CAP_S, EVAL_EVERY)
    measured: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
    for seed in seeds:
        for engine in ("local", "ray"):  # interleaved: drift touches both alike
            measured[engine].append(_measure(seed, engine, cap_s, eval_every))
    ray, local = measured["ray"], measured["local"]

    def of(side: list[dict[str, float]], key: str) -> list[float]:
        return [m[key] for m in side]

    rows = [
        _row("Ray engine: games/s", "games/s", of(ray, "games_per_s"), of(local, "games_per_s"),
             "games/s"),
        _row("Ray engine: game steps/s", "steps/s", of(ray, "steps_per_s"),
             of(local, "steps_per_s")),
        _row("Ray engine: game steps to solve", "steps", of(ray, "steps"), of(local, "steps"),
             "steps"),
        _row("Ray engine: time to solve (launch to exit)", "s", of(ray, "seconds"),
             of(local, "seconds")),
        _row("Ray engine: launch to first game", "s", of(ray, "startup_s"),
             of(local, "startup_s")),
    ]  # fmt: skip
    return rows + _paper_rows(quick)
