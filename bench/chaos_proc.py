"""The fault suite's child processes: ``python -m bench.chaos_proc ROLE ...`` (see chaos.py).

Each writes what it did to its own log, a line per file, flushed at once, so the suite can
count losses and duplicates exactly even when the process is killed:

``writer``     a game-like process: bursts of 20-step games through ``EpisodeRecorder``
               (the game-side API, never flushed until the end, as a game process runs),
               now and then a game longer than the learner's ``max_piece_steps`` (it is
               split), plus invalid files (to quarantine) and files older than
               ``max_file_age`` (to stale/). Logs ``KIND NAME STEPS``. ``--sync`` flushes
               after every game and logs a game only once it is on disk (``failed NAME``
               if it could not be written): for the full-disk scenario, where writes fail.
``midwriter``  writes large compressed games one after another, logging ``begin NAME STEPS
               T`` and ``done NAME T``; the suite kills it while it writes.
``reader``     loads the model file back to back, counting whole and failed (torn) reads.
``learn-at``   ``bgtrain learn ARGS`` started at the instant the suite writes into a file
               (torch imported before): two of them start at the same instant.

SIGTERM ends ``writer`` and ``reader`` cleanly (final summary in ``LOG.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

import numpy as np

from bgtrain import TrainingRoot
from bgtrain.errors import EpisodeWriteError, ModelNotFoundError
from bgtrain.game.recorder import EpisodeRecorder
from bgtrain.store.episode import build_episode, save_episode
from bgtrain.store.fs import atomic_write_text
from bgtrain.store.models import read_model_file

#: Steps of every game the writer records (the suite checks the model's sample count).
GAME_STEPS = 20
OBS_DIM = 4
#: How far in the past a stale file's mtime is set (the learner's max_file_age is 3600 s).
STALE_AGE_S = 2 * 3600


def _stopper() -> threading.Event:
    """An event set by SIGTERM (and SIGINT): the process finishes its loop and says so."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _log(log: TextIO, line: str) -> None:
    log.write(line + "\n")
    log.flush()


def _play(recorder: EpisodeRecorder, rng: np.random.Generator, steps: int) -> None:
    for _ in range(steps):
        recorder.record(rng.random(OBS_DIM, dtype=np.float32), int(rng.integers(2)), 1.0, -0.69)


def _drop(buffer: Path, name: str, write, mtime: float | None = None) -> bool:
    """Put a file into ``buffer/NAME`` whole: written under a dot-name, then renamed.
    False if the disk refused it (nothing is left behind then)."""
    staging = buffer / f".{name}.staging"
    try:
        write(staging)
        if mtime is not None:
            os.utime(staging, (mtime, mtime))
        os.rename(staging, buffer / name)
    except OSError:
        staging.unlink(missing_ok=True)
        return False
    return True


def _invalid(path: Path, n: int) -> None:
    if n % 2:
        path.write_bytes(b"not a zip file, dropped by the fault suite")
    else:  # a real .npz without the required arrays
        with path.open("wb") as f:
            np.savez(f, states=np.zeros((3, OBS_DIM), np.float32))


def _stale(path: Path, rng: np.random.Generator) -> None:
    episode = build_episode(
        rng.random((GAME_STEPS, OBS_DIM), dtype=np.float32),
        rng.integers(0, 2, GAME_STEPS),
        np.ones(GAME_STEPS, np.float32),
    )
    # save_episode writes atomically to ``path`` (itself a dot-name here).
    save_episode(episode, path)


def _dropped_by_hand(args: argparse.Namespace, n: int, rng: np.random.Generator):
    """``(kind, write, mtime, steps)`` if the ``n``-th file is dropped into buffer/ by hand
    (an invalid file, or a valid one too old to train on), else ``None``."""
    if args.invalid_every and n % args.invalid_every == 0:
        return "invalid", lambda p: _invalid(p, n), None, 0
    if args.stale_every and n % args.stale_every == 0:
        return "stale", lambda p: _stale(p, rng), time.time() - STALE_AGE_S, GAME_STEPS
    return None


def writer(args: argparse.Namespace) -> int:
    stop = _stopper()
    root = TrainingRoot(args.root).ensure()
    rng = np.random.default_rng(args.seed)
    recorder = EpisodeRecorder(root, actor=f"chaos{args.seed}", env="chaos")
    counts = {"valid": 0, "invalid": 0, "stale": 0, "failed": 0}
    n = 0
    with open(args.log, "a", encoding="utf-8") as log:
        while not stop.is_set():
            for _ in range(int(rng.integers(1, args.burst + 1))):
                n += 1
                dropped = _dropped_by_hand(args, n, rng)
                if dropped is not None:
                    kind, write, mtime, steps = dropped
                    name = f"chaos{args.seed}_{kind}_{n:07d}.npz"
                    ok = _drop(root.buffer, name, write, mtime)
                    _log(log, f"{kind} {name} {steps}" if ok else f"failed {name} 0")
                    counts[kind if ok else "failed"] += 1
                    continue
                long = bool(args.long_every and n % args.long_every == 0)
                steps = args.long_steps if long else GAME_STEPS
                _play(recorder, rng, steps)
                path = recorder.finish("Victory")
                assert path is not None
                if not args.sync:
                    # Logged when handed to the recorder (its write is checked at the end).
                    _log(log, f"valid {path.name} {steps}")
                    counts["valid"] += 1
                    continue
                try:
                    for written in recorder.flush():
                        _log(log, f"valid {written.name} {steps}")
                        counts["valid"] += 1
                except EpisodeWriteError:  # a full disk: the game is not on disk
                    _log(log, f"failed {path.name} 0")
                    counts["failed"] += 1
            stop.wait(args.pause)
        summary: dict[str, object] = {"counts": counts, "write_failures": 0}
        try:
            recorder.close()  # every game handed to it is on disk, or this says why not
        except EpisodeWriteError as exc:
            summary["write_failures"] = str(exc)
    atomic_write_text(Path(f"{args.log}.json"), json.dumps(summary))
    return 0


def midwriter(args: argparse.Namespace) -> int:
    root = TrainingRoot(args.root).ensure()
    rng = np.random.default_rng(args.seed)
    recorder = EpisodeRecorder(root, actor=f"mid{args.seed}", env="chaos", compress=True)
    with open(args.log, "a", encoding="utf-8") as log:
        while True:
            _play(recorder, rng, args.steps)
            path = recorder.finish("Defeat")
            assert path is not None
            _log(log, f"begin {path.name} {args.steps} {time.time():.6f}")
            recorder.flush()
            _log(log, f"done {path.name} {time.time():.6f}")


def reader(args: argparse.Namespace) -> int:
    stop = _stopper()
    path = TrainingRoot(args.root).model_file
    stats: dict[str, object] = {"reads": 0, "missing_before_first": 0, "torn": 0}
    errors: list[str] = []
    seen, last_version, went_back = False, 0, 0
    last_save = time.monotonic()
    while not stop.is_set():
        try:
            version = read_model_file(path).version
        except ModelNotFoundError:
            # Before the first publish, no model is no fault; after it, the file must
            # always be there (a publish replaces it atomically).
            if seen:
                stats["torn"] += 1  # type: ignore[operator]
                errors.append("model file missing after a publish")
            else:
                stats["missing_before_first"] += 1  # type: ignore[operator]
        except Exception as exc:  # anything else is a torn or unreadable file
            stats["torn"] += 1  # type: ignore[operator]
            errors.append(f"{type(exc).__name__}: {exc}")
        else:
            seen = True
            stats["reads"] += 1  # type: ignore[operator]
            if version < last_version:
                went_back += 1
            last_version = max(last_version, version)
        if time.monotonic() - last_save > 1.0:  # killed or not, the counts are on disk
            _save_reader(args.out, stats, errors, went_back, last_version)
            last_save = time.monotonic()
        stop.wait(args.pause)
    _save_reader(args.out, stats, errors, went_back, last_version)
    return 0


def _save_reader(
    out: Path, stats: dict[str, object], errors: list[str], went_back: int, version: int
) -> None:
    record = {**stats, "went_back": went_back, "last_version": version, "errors": errors[:5]}
    atomic_write_text(out, json.dumps(record))


def learn_at(args: argparse.Namespace) -> int:
    """Import everything, say so (``GO.PID.ready``), wait for the suite to write the start
    instant into ``GO``, then run ``bgtrain learn`` at that instant."""
    import bgtrain.learn.learner  # noqa: F401  (torch: the slow part of a start)
    from bgtrain.cli import main

    Path(f"{args.go}.{os.getpid()}.ready").touch()
    deadline = time.monotonic() + 300
    while not args.go.exists():
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.001)
    delay = float(args.go.read_text("utf-8")) - time.time()
    # The suite checks that the start was on time (a negative delay: this one was late).
    print(f"[chaos] start delay {delay:.3f} s", flush=True)
    if delay > 0:
        time.sleep(delay)
    return main(["learn", *args.learn_args])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.chaos_proc")
    sub = p.add_subparsers(dest="role", required=True)
    w = sub.add_parser("writer")
    w.add_argument("root", type=Path)
    w.add_argument("log", type=Path)
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--burst", type=int, default=8, help="most games in one burst")
    w.add_argument("--pause", type=float, default=0.5, help="seconds between bursts")
    w.add_argument("--invalid-every", type=int, default=23)
    w.add_argument("--stale-every", type=int, default=29)
    w.add_argument("--long-every", type=int, default=0, help="every Nth game is long")
    w.add_argument("--long-steps", type=int, default=5000, help="steps of a long game")
    w.add_argument("--sync", action="store_true")
    m = sub.add_parser("midwriter")
    m.add_argument("root", type=Path)
    m.add_argument("log", type=Path)
    m.add_argument("--seed", type=int, default=1)
    m.add_argument("--steps", type=int, default=20_000)
    r = sub.add_parser("reader")
    r.add_argument("root", type=Path)
    r.add_argument("out", type=Path)
    r.add_argument("--pause", type=float, default=0.002)
    a = sub.add_parser("learn-at")
    a.add_argument("go", type=Path)
    a.add_argument("learn_args", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    role = {"writer": writer, "midwriter": midwriter, "reader": reader, "learn-at": learn_at}
    return role[args.role](args)


if __name__ == "__main__":
    sys.exit(main())
