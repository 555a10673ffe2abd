"""A :class:`~bgtrain.integrations.sc2.bot.LearningBot` on the AI Arena ladder.

The ladder keeps only the bot's ``data/`` folder between games (zipped, 50 MB on the free
tier), allows about 40 ms a step, gives no network, and may kill the bot's process; burnysc2
re-raises an ``on_step`` error without calling ``on_end``. So here:

- ``data/`` is the training root (``models/``, ``data/buffer/``..., ``logs/``), with
  ``data/ladder/`` beside it: ``opponents.json`` (per-opponent results, written at each
  game's start and end, so a killed game still counts), ``summary.json`` (old games folded
  into totals to keep ``data/`` within its budget) and ``in_progress/`` (the game being
  played, rewritten every few decisions as cut short; the next start moves it into the
  buffer, so a killed bot's game is kept).
- An opening is chosen per opponent by win rate (untried ones first), as ladder bots do
  (ares-sc2 keeps per-opponent build results in JSON and picks by win rate).
- While a game plays, a learner process trains on ``data/``'s earlier games and publishes
  the next model there (``bgtrain learn --exit-when-idle``, niced, one torch thread): the
  bot's process never imports torch.

numpy and the standard library only: the bot's process imports this module, and
``python -m bgtrain.integrations.sc2.ladder learn DATA`` is the learner's entry point.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from bgtrain.integrations.sc2.settings import STRATEGY_NAMES, LadderSettings
from bgtrain.store.episode import build_episode, episode_bytes, episode_file_name, load_episode
from bgtrain.store.fs import atomic_write, atomic_write_text, is_temp_name, move_into, remove_temps
from bgtrain.store.root import TrainingRoot
from bgtrain.store.safe_npz import MiB

__all__ = [
    "KILLED",
    "Ladder",
    "LadderArguments",
    "LadderLearner",
    "OpponentBook",
    "enforce_budget",
    "join_ladder_game",
    "ladder_arguments",
    "ladder_portconfig",
    "run_ladder_game",
]

logger = logging.getLogger(__name__)

LADDER_DIR = "ladder"
OPPONENTS_NAME = "opponents.json"
SUMMARY_NAME = "summary.json"
IN_PROGRESS_DIR = "in_progress"
LEARNER_LOG_NAME = "ladder_learner.log"
#: The learner's entry point (``__name__`` is ``__main__`` when it runs as one).
LEARNER_MODULE = "bgtrain.integrations.sc2.ladder"
#: The key of games whose opponent the ladder did not name (a local game).
UNKNOWN_OPPONENT = "unknown"
#: The reason a checkpoint carries: it is only ever read when the game never ended.
KILLED = "the bot was stopped before the game ended (kept from its last save)"
#: Folding stops once ``data/`` is this share of its budget: the next games then fit
#: without folding one game at each end.
FOLD_TO = 0.8
#: A log over this is cut to its last this-many bytes when ``data/`` is over its budget.
LOG_KEEP_BYTES = 64 * 1024
#: Where folded games come from, oldest first in each: trained ones, set-aside ones, and
#: only then games still waiting for the learner.
FOLD_ORDER = ("archive", "stale", "quarantine", "split", "buffer")


# --------------------------------------------------------------------------- opponents


def _read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` when missing or unreadable (a bad file must not
    cost a ladder game: it is rewritten whole at the next write)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable %s: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _new_record() -> dict[str, Any]:
    return {"games": 0, "wins": 0, "losses": 0, "cut_short": 0, "unfinished": 0, "openings": {}}


def _result_key(outcome: str, terminated: bool) -> str:
    if not terminated:
        return "cut_short"
    return {"Victory": "wins", "Defeat": "losses"}.get(outcome, "cut_short")


class OpponentBook:
    """Per-opponent results in ``data/ladder/opponents.json``: games, wins, losses, games
    cut short, games never ended (the bot was killed), and each opening's games and wins.

    Written at each game's start (the game counts from then on, marked in progress) and
    at its end; a game still in progress at the next start counts as unfinished, not won.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Any]:
        data = _read_json(self.path)
        data.setdefault("opponents", {})
        data.setdefault("in_progress", None)
        return data

    def record(self, opponent: str | None) -> dict[str, Any]:
        """The record of ``opponent`` (a new one if never met)."""
        return self.read()["opponents"].get(opponent or UNKNOWN_OPPONENT, _new_record())

    def choose_opening(self, opponent: str | None, openings: tuple[str, ...]) -> str | None:
        """The opening to play: one never tried against ``opponent`` first (in the order
        given), else the best win rate, smoothed as (wins + 1) / (games + 2) so that one
        lucky game does not lock an opening in; ``None`` when there is none to choose."""
        played = self.record(opponent)["openings"]

        def rate(name: str) -> float:
            o = played.get(name, {"games": 0, "wins": 0})
            return (o["wins"] + 1) / (o["games"] + 2)

        untried = [name for name in openings if not played.get(name, {}).get("games")]
        if untried:
            return untried[0]
        return max(openings, key=rate, default=None)

    def start(self, opponent: str | None, opening: str | None) -> None:
        data = self.read()
        self._close_unfinished(data)
        key = opponent or UNKNOWN_OPPONENT
        record = data["opponents"].setdefault(key, _new_record())
        record["games"] += 1
        if opening is not None:
            record["openings"].setdefault(opening, {"games": 0, "wins": 0})["games"] += 1
        data["in_progress"] = {
            "opponent": key,
            "opening": opening,
            "started": datetime.now().isoformat(timespec="seconds"),
        }
        self._write(data)

    def end(self, outcome: str, terminated: bool) -> None:
        data = self.read()
        game = data["in_progress"]
        if not game:
            return
        record = data["opponents"].setdefault(game["opponent"], _new_record())
        key = _result_key(outcome, terminated)
        record[key] += 1
        opening = game.get("opening")
        if key == "wins" and opening is not None:
            record["openings"].setdefault(opening, {"games": 1, "wins": 0})["wins"] += 1
        data["in_progress"] = None
        self._write(data)

    @staticmethod
    def _close_unfinished(data: dict[str, Any]) -> None:
        game = data["in_progress"]
        if game:
            record = data["opponents"].setdefault(game["opponent"], _new_record())
            record["unfinished"] += 1
            data["in_progress"] = None

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True))


# --------------------------------------------------------------------------- the game in progress


class GameCheckpoint:
    """The game being played, saved every few decisions as cut short into
    ``data/ladder/in_progress/`` (atomically: a killed bot leaves the last whole save).

    The writes happen in a thread of their own: the game's step only copies the decisions.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._steps: list[tuple[np.ndarray, int, float, float | None]] = []
        self._name: str | None = None
        self._meta: dict[str, Any] = {}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bgtrain-checkpoint")
        self._last: Future[None] | None = None

    def begin(self, actor: str, meta: dict[str, Any]) -> None:
        self._steps = []
        self._name = episode_file_name(datetime.now(), actor, "Tie")
        self._meta = {"outcome": "Tie", "actor": actor, "env": "sc2", "reason": KILLED, **meta}

    @property
    def steps(self) -> int:
        return len(self._steps)

    def record(self, state: np.ndarray, action: int, reward: float, logp: float | None) -> None:
        self._steps.append((np.array(state, dtype=np.float32), action, reward, logp))

    def save(self, last_state: np.ndarray, policy_version: int | None) -> None:
        """Hand the decisions so far, with ``last_state`` to bootstrap from, to the writer."""
        if not self._steps or self._name is None:
            return
        steps, path = list(self._steps), self.folder / self._name
        last = np.array(last_state, dtype=np.float32)
        self._last = self._writer.submit(self._write, path, steps, last, policy_version)

    def _write(
        self,
        path: Path,
        steps: list[tuple[np.ndarray, int, float, float | None]],
        last_state: np.ndarray,
        policy_version: int | None,
    ) -> None:
        states, actions, rewards, logp = zip(*steps, strict=True)
        episode = build_episode(
            np.stack(states),
            np.asarray(actions),
            np.asarray(rewards, dtype=np.float64),
            logp=None if logp[0] is None else np.asarray(logp, dtype=np.float32),
            policy_version=policy_version,
            terminated=False,
            last_state=last_state,
            meta={**self._meta, "n_actions": len(STRATEGY_NAMES)},
        )
        data = episode_bytes(episode)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: f.write(data))

    def wait(self) -> None:
        """Wait for the last save (its error is logged, never raised: a lost checkpoint
        must not cost the game)."""
        if self._last is not None:
            exc = self._last.exception()
            if exc is not None:
                logger.error("could not save the game in progress: %s", exc)

    def discard(self) -> None:
        """The game ended and was saved whole: its checkpoint is no longer needed."""
        self.wait()
        if self._name is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.folder / self._name).unlink()
        self._steps, self._name = [], None

    def close(self) -> None:
        self._writer.shutdown(wait=True)


def recover_killed_games(in_progress: Path, buffer: Path) -> list[Path]:
    """Move the saves of games that never ended (the bot was killed) into the buffer."""
    if not in_progress.is_dir():
        return []
    remove_temps(in_progress)  # a save cut by the kill: its last whole save is kept
    moved = []
    for path in sorted(in_progress.glob("*.npz")):
        if not is_temp_name(path.name):
            moved.append(move_into(path, buffer))
            logger.warning("kept the game the bot was killed in: %s", moved[-1].name)
    return moved


# --------------------------------------------------------------------------- the size budget


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _oldest_games(root: TrainingRoot) -> Iterator[Path]:
    for name in FOLD_ORDER:
        folder = root.data / name
        files = [p for p in folder.rglob("*.npz") if not is_temp_name(p.name)]
        yield from sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def _fold(summary: dict[str, Any], path: Path) -> None:
    """Add the game in ``path`` to ``summary``'s totals (an unreadable one as unreadable)."""
    summary["games"] = summary.get("games", 0) + 1
    try:
        ep = load_episode(path)
    except Exception as exc:  # a damaged file still goes: the budget is a hard cap
        summary["unreadable"] = summary.get("unreadable", 0) + 1
        logger.warning("folding unreadable %s: %s", path.name, exc)
        return
    outcome = (ep.meta.get("outcome") or "Unknown") + ("" if ep.terminated else " cut short")
    outcomes = summary.setdefault("outcomes", {})
    outcomes[outcome] = outcomes.get(outcome, 0) + 1
    summary["decisions"] = summary.get("decisions", 0) + ep.length
    summary["total_reward"] = round(summary.get("total_reward", 0.0) + ep.total_reward, 6)
    summary.setdefault("first", path.name)
    summary["last"] = path.name


def enforce_budget(data_dir: Path, budget_bytes: int) -> int:
    """Keep ``data_dir`` within ``budget_bytes``: the oldest games (trained ones first) are
    folded into ``ladder/summary.json``'s totals and removed, down to :data:`FOLD_TO` of
    the budget; logs are then cut to their ends if still needed. Returns the games folded.

    The one place bgtrain removes games from a root: the ladder's cap on ``data/``.
    """
    size = folder_bytes(data_dir)
    if size <= budget_bytes:
        return 0
    target = int(budget_bytes * FOLD_TO)
    summary_path = data_dir / LADDER_DIR / SUMMARY_NAME
    summary = _read_json(summary_path)
    folded = 0
    for path in _oldest_games(TrainingRoot(data_dir)):
        if size <= target:
            break
        _fold(summary, path)
        size -= path.stat().st_size
        path.unlink()
        folded += 1
    if folded:
        summary["updated"] = datetime.now().isoformat(timespec="seconds")
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(summary_path, json.dumps(summary, indent=1, sort_keys=True))
        logger.info("folded %d old games into %s (data/ budget)", folded, summary_path)
    if size > target:
        _trim_logs(TrainingRoot(data_dir).logs)
    return folded


def _trim_logs(logs: Path) -> None:
    for path in logs.glob("*"):
        if path.is_file() and path.stat().st_size > LOG_KEEP_BYTES:
            with open(path, "rb") as f:
                f.seek(-LOG_KEEP_BYTES, os.SEEK_END)
                tail = f.read()
            atomic_write(path, lambda f, tail=tail: f.write(tail))


# --------------------------------------------------------------------------- the learner


class LadderLearner:
    """``bgtrain learn --exit-when-idle`` on ``data/`` in a child process of lower priority
    (POSIX: ``os.nice`` in the child; Windows: the below-normal priority class) and one
    torch thread. It trains on the games waiting, publishes, and exits."""

    def __init__(self, root: TrainingRoot, settings: LadderSettings) -> None:
        self.root = root
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            LEARNER_MODULE,
            "learn",
            str(self.root.path),
            "--nice",
            str(self.settings.learner_nice),
            "--history-size",
            str(self.settings.history_size),
        ]

    def start(self) -> bool:
        """Start it when games wait and it is not already running; whether it started."""
        if self.running or not any(self.root.buffer.glob("*.npz")):
            return False
        self.root.logs.mkdir(parents=True, exist_ok=True)
        flags = 0
        if sys.platform == "win32" and self.settings.learner_nice:
            flags = subprocess.BELOW_NORMAL_PRIORITY_CLASS  # type: ignore[attr-defined]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        # The bot's own import path (a bot may carry bgtrain in a folder of its own).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        with open(self.root.logs / LEARNER_LOG_NAME, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                creationflags=flags,
            )
        return True

    def stop(self, timeout: float) -> int | None:
        """Ask it to stop after its batch in hand (SIGTERM), and kill it after ``timeout``
        seconds; its exit code (``None``: none was running)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None
        return process.returncode


def lower_priority(nice: int) -> None:
    """This process at ``nice`` lower priority where the system allows it (POSIX)."""
    if nice and hasattr(os, "nice"):
        try:
            os.nice(nice)
        except OSError as exc:  # not allowed here: learn at normal priority
            logger.warning("could not lower the learner's priority: %s", exc)


def learner_main(argv: list[str] | None = None) -> int:
    """The learner's process: lower priority, one torch thread, train, publish, exit."""
    parser = argparse.ArgumentParser(prog=f"python -m {LEARNER_MODULE} learn")
    parser.add_argument("root", type=Path)
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--history-size", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.root.is_dir():  # a mistyped folder must not become a new, empty root
        parser.error(f"no data folder at {args.root}")
    lower_priority(args.nice)
    from bgtrain.cli.learn import LearnConfig, run  # torch: in this process only
    from bgtrain.learn.settings import LearnerSettings

    settings = LearnerSettings(torch_threads=1, history_size=args.history_size, verbose=False)
    return run(LearnConfig(args.root, settings, exit_when_idle=True))


# --------------------------------------------------------------------------- the bot's ladder mode


class Ladder:
    """What a :class:`LearningBot` does on the ladder, called from its game hooks."""

    def __init__(self, settings: LadderSettings) -> None:
        self.settings = settings
        self.root = TrainingRoot(Path(settings.data_dir))  # a str is taken too
        self.folder = self.root.path / LADDER_DIR
        self.book = OpponentBook(self.folder / OPPONENTS_NAME)
        self.checkpoint = GameCheckpoint(self.folder / IN_PROGRESS_DIR)
        self.learner = LadderLearner(self.root, settings)
        self.opponent: str | None = None
        self.opening: str | None = None
        self.recovered: list[Path] = []

    @property
    def budget_bytes(self) -> int:
        return int(self.settings.budget_mb * MiB)

    def game_started(self, opponent: str | None, actor: str) -> None:
        """Keep a killed game, keep the budget, choose the opening, start the learner."""
        self.root.ensure()
        self.recovered = recover_killed_games(self.folder / IN_PROGRESS_DIR, self.root.buffer)
        enforce_budget(self.root.path, self.budget_bytes)
        self.opponent = opponent
        self.opening = (
            self.book.choose_opening(opponent, self.settings.openings)
            if self.settings.opening_minutes > 0
            else None
        )
        self.book.start(opponent, self.opening)
        self.checkpoint.begin(actor, self.episode_meta())
        if self.settings.background_learning:
            self.learner.start()

    def episode_meta(self) -> dict[str, Any]:
        return {"opponent": self.opponent or UNKNOWN_OPPONENT, "opening": self.opening or ""}

    def opening_action(self, game_time_s: float) -> int | None:
        """The opening's strategy while it is held, else ``None`` (the model chooses)."""
        if self.opening is None or game_time_s >= self.settings.opening_minutes * 60:
            return None
        return STRATEGY_NAMES.index(self.opening)

    def recorded(self, state: np.ndarray, action: int, reward: float, logp: float | None) -> None:
        self.checkpoint.record(state, action, reward, logp)

    def decided(self, state: np.ndarray, policy_version: int | None) -> None:
        """After a decision: every ``checkpoint_every`` recorded ones, save the game so far."""
        steps = self.checkpoint.steps
        if steps and steps % self.settings.checkpoint_every == 0:
            self.checkpoint.save(state, policy_version)

    def game_ended(self, outcome: str, terminated: bool) -> None:
        """The game is saved whole: drop its checkpoint, count its result, stop the
        learner (after its batch in hand), keep the budget."""
        self.checkpoint.discard()
        self.book.end(outcome, terminated)
        self.learner.stop(self.settings.learner_stop_s)
        enforce_budget(self.root.path, self.budget_bytes)

    def close(self) -> None:
        self.checkpoint.close()


# --------------------------------------------------------------------------- joining a ladder game


class LadderArguments(argparse.Namespace):
    GamePort: int | None
    StartPort: int | None
    LadderServer: str | None
    OpponentId: str | None
    RealTime: bool

    @property
    def on_ladder(self) -> bool:
        """The ladder started this process (it always gives the game port)."""
        return self.GamePort is not None


def ladder_arguments(argv: list[str] | None = None) -> LadderArguments:
    """AI Arena's arguments (``--GamePort --StartPort --LadderServer --OpponentId
    --RealTime``); others are ignored, as the ladder may add its own."""
    parser = argparse.ArgumentParser(description="a bgtrain bot on the AI Arena ladder")
    parser.add_argument("--GamePort", type=int, help="the game's port (given: a ladder game)")
    parser.add_argument("--StartPort", type=int, help="the first of the game's LAN ports")
    parser.add_argument("--LadderServer", help="the ladder server's address (default: 127.0.0.1)")
    parser.add_argument("--OpponentId", help="the opponent's id on the ladder")
    parser.add_argument("--RealTime", action="store_true", help="play in real time")
    args, _ = parser.parse_known_args(argv, namespace=LadderArguments())
    return args


def ladder_portconfig(start_port: int | None) -> Any:
    """burnysc2's ``Portconfig`` of a ladder game: the 5 ports after ``start_port``, the
    first unused, as every AI Arena python bot joins (``None`` without a start port)."""
    if start_port is None:
        return None
    from sc2.portconfig import Portconfig

    ports = [start_port + p for p in range(1, 6)]
    return Portconfig(server_ports=[ports[1], ports[2]], player_ports=[[ports[3], ports[4]]])


async def join_ladder_game(
    host: str, port: int, player: Any, realtime: bool, portconfig: Any
) -> Any:
    """Join the game the ladder hosts at ``ws://host:port/sc2api`` and play it (burnysc2
    7.3 has no ladder entry point: this is the one AI Arena's python bots carry)."""
    import aiohttp
    from sc2.client import Client
    from sc2.main import _play_game
    from sc2.protocol import ConnectionAlreadyClosedError

    # aiohttp 3.11 took the close timeout into ClientWSTimeout; older ones take a number.
    close_after = (
        aiohttp.ClientWSTimeout(ws_close=120) if hasattr(aiohttp, "ClientWSTimeout") else 120
    )
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"ws://{host}:{port}/sc2api", timeout=close_after)
        try:
            return await _play_game(player, Client(ws), realtime, portconfig)
        except ConnectionAlreadyClosedError:
            logger.error("the connection was closed before the game ended")
            return None
        finally:
            await ws.close()


def run_ladder_game(player: Any, args: LadderArguments) -> Any:
    """Play the ladder's game with burnysc2's ``player`` (``Bot(race, bot)``); the bot
    learns whom it plays from ``--OpponentId``. Returns the game's result."""
    player.ai.opponent_id = args.OpponentId
    host = args.LadderServer or "127.0.0.1"
    assert args.GamePort is not None
    return asyncio.run(
        join_ladder_game(
            host, args.GamePort, player, args.RealTime, ladder_portconfig(args.StartPort)
        )
    )


if __name__ == "__main__":
    if sys.argv[1:2] != ["learn"]:
        sys.exit(f"usage: python -m {LEARNER_MODULE} learn DATA_DIR [--nice N] [--history-size N]")
    sys.exit(learner_main(sys.argv[2:]))
