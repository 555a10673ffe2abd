"""The event log of a training root, ``logs/metrics.jsonl``: one typed record per line.

Each kind of line has one dataclass here, with the one function that writes it
(:func:`append_event`) and the one that reads it back (:func:`parse_event`); the learner
and the run write, the monitor, the plot, ``tools/`` and ``bench/`` read. The JSON field
names are Stable-Baselines3's (``train/*``, ``rollout/*``, ``time/*``) and Sample
Factory's (``train/version_diff_*``), as users' tools already read them; a field's Python
name maps to its JSON name through the field's metadata.

Which record of a game is the truth: a game is described in its episode file's meta, in
the run's ``game`` event and in the ``episodes`` of the batch that trained it. For the
games *played*, :class:`GameLog` decides, in one place: the run's ``game`` events when a
run wrote any (every game, trained or not, in the order they ended), else (a learner fed
by games played elsewhere: ``bgtrain learn``, a StarCraft II bot) the games each batch
trained, stamped with the batch's time.

Torch-free: the run, the learner, the monitor, the plot, bench and tools go through it.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from bgtrain.store.root import TrainingRoot

logger = logging.getLogger(__name__)

#: How many of the last games "recent" means: the run's solved check and best mean, the
#: monitor's mean return and win rate, the plot's rolling mean.
RECENT_GAMES = 20


def _json(name: str, default: Any = None) -> Any:
    """A field whose JSON name is not a Python name (``train/loss``, ``return``)."""
    return field(default=default, metadata={"json": name})


def now_iso() -> str:
    """The local time with its offset, to the millisecond: the ``time`` field of events."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def finite_or_none(x: float | None) -> float | None:
    """JSON has no NaN: a figure that is not finite is written as null."""
    return float(x) if x is not None and math.isfinite(x) else None


E = TypeVar("E", bound="Event")


@dataclass(frozen=True)
class Event:
    """What every line has: its kind (``event``) and when it was written (``t``, Unix s)."""

    kind: ClassVar[str] = ""
    t: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The line's JSON object: ``event`` first, then each field under its JSON name."""
        return {"event": self.kind, **self.fields_json()}

    def fields_json(self) -> dict[str, Any]:
        """The fields under their JSON names (a record nested in another has no ``event``)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and value and isinstance(value[0], Event):
                value = [item.fields_json() for item in value]
            out[f.metadata.get("json", f.name)] = value
        return out

    @classmethod
    def from_json(cls: type[E], record: Mapping[str, Any]) -> E:
        """The event a line holds; fields it lacks take their defaults (older lines)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = f.metadata.get("json", f.name)
            if key in record:
                values[f.name] = record[key]
        return cls(**values)


@dataclass(frozen=True)
class GameEvent(Event):
    """A game that ended and was saved (the run writes one per game; a batch lists the
    ones it trained, without ``t``, ``time`` and ``actor``)."""

    kind: ClassVar[str] = "game"
    time: str | None = None
    actor: int | None = None
    #: The episode file's name (in a batch's list; the run does not know it).
    name: str | None = None
    #: Sum of the game's rewards.
    return_: float | None = _json("return")
    #: Game steps.
    length: int = 0
    outcome: str | None = None
    #: The model version that played it (``None``: a policy outside bgtrain).
    policy_version: int | None = None
    #: Ended by the game (``True``) or cut short (``False``).
    terminated: bool | None = None
    #: The machine that played it, when a cluster's engine said (``--engine ray``).
    machine: str | None = None

    def fields_json(self) -> dict[str, Any]:
        out = super().fields_json()
        return {k: v for k, v in out.items() if v is not None or k in _GAME_KEEP_NULL}


#: A game's fields that are written even when null (the rest are left out when unknown,
#: so a batch's list of games stays as it always was).
_GAME_KEEP_NULL = frozenset({"return", "outcome", "policy_version", "terminated"})


@dataclass(frozen=True)
class GameRefusedEvent(Event):
    """A game the game process refused to save (NaN, values of the wrong size...)."""

    kind: ClassVar[str] = "game_refused"
    actor: int | None = None
    length: int = 0
    policy_version: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class GameUnsavedEvent(Event):
    """A game the recorder could not write (a full disk...)."""

    kind: ClassVar[str] = "game_unsaved"
    actor: int | None = None
    name: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class EvalEvent(Event):
    """A greedy (or sampled) evaluation of one model version."""

    kind: ClassVar[str] = "eval"
    #: Game steps the run had played when it started.
    steps: int = 0
    version: int = 0
    episodes: int = 0
    greedy: bool = True
    mean: float = 0.0
    std: float = 0.0
    min: float = 0.0
    max: float = 0.0
    win_rate: float = 0.0
    returns: list[float] = field(default_factory=list)
    #: Games stopped at ``step_limit`` before they ended.
    cut_short: int = 0
    step_limit: int | None = None


@dataclass(frozen=True)
class SetAsideEvent(Event):
    """An episode file the learner moved out of the way, with the reason its reason file
    holds; the line's ``event`` is the folder it went to (``quarantine`` or ``stale``)."""

    time: str | None = None
    name: str = ""
    reason: str | None = None


@dataclass(frozen=True)
class QuarantineEvent(SetAsideEvent):
    """An episode file that cannot be trained on, moved to ``quarantine/``."""

    kind: ClassVar[str] = "quarantine"


@dataclass(frozen=True)
class StaleEvent(SetAsideEvent):
    """An episode file too old or played too many versions ago, moved to ``stale/``."""

    kind: ClassVar[str] = "stale"


def set_aside_event(folder: str, name: str, reason: str | None) -> SetAsideEvent:
    """The event of a file set aside into ``folder`` (``"quarantine"`` or ``"stale"``)."""
    cls = QuarantineEvent if folder == QuarantineEvent.kind else StaleEvent
    return cls(time=now_iso(), name=name, reason=reason)


@dataclass(frozen=True)
class GuardEvent(Event):
    """The collapse guard went back to the best version's weights."""

    kind: ClassVar[str] = "guard"
    restored_version: int = 0
    at_version: int = 0
    recent_mean: float = 0.0
    best_mean: float = 0.0
    baseline: float = 0.0


@dataclass(frozen=True)
class BatchEvent(Event):
    """A published batch: what it trained on and the training figures (SB3's names)."""

    kind: ClassVar[str] = "batch"
    time: str | None = None
    version: int = 0
    loss: float | None = _json("train/loss")
    policy_gradient_loss: float | None = _json("train/policy_gradient_loss")
    value_loss: float | None = _json("train/value_loss")
    entropy_loss: float | None = _json("train/entropy_loss")
    approx_kl: float | None = _json("train/approx_kl")
    clip_fraction: float | None = _json("train/clip_fraction")
    explained_variance: float | None = _json("train/explained_variance")
    behaviour_ratio_mean: float | None = _json("train/behaviour_ratio_mean")
    n_updates: int = _json("train/n_updates", 0)
    #: Policy lag of the batch's games, in model versions (Sample Factory's names).
    version_diff_min: int = _json("train/version_diff_min", 0)
    version_diff_avg: float = _json("train/version_diff_avg", 0.0)
    version_diff_max: int = _json("train/version_diff_max", 0)
    #: Sample reuse: replayed samples per new sample, and how far behind they were.
    replay_ratio: float = _json("train/replay_ratio", 0.0)
    replay_version_diff_avg: float = _json("train/replay_version_diff_avg", 0.0)
    replay_version_diff_max: int = _json("train/replay_version_diff_max", 0)
    ep_rew_mean: float | None = _json("rollout/ep_rew_mean")
    ep_len_mean: float = _json("rollout/ep_len_mean", 0.0)
    win_rate: float | None = _json("rollout/win_rate")
    batch_s: float = _json("time/batch_s", 0.0)
    train_s: float = _json("time/train_s", 0.0)
    fps: float | None = _json("time/fps")
    files: int = _json("batch/files", 0)
    samples: int = _json("batch/samples", 0)
    quarantined: int = _json("batch/quarantined", 0)
    stale: int = _json("batch/stale", 0)
    files_processed: int = _json("totals/files_processed", 0)
    batches_trained: int = _json("totals/batches_trained", 0)
    total_samples: int = _json("totals/total_samples", 0)
    #: The games the batch trained on.
    episodes: tuple[GameEvent, ...] = ()

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> BatchEvent:
        event = super().from_json(record)
        games = tuple(GameEvent.from_json(g) for g in record.get("episodes") or ())
        return dataclasses.replace(event, episodes=games)

    def scalars(self) -> dict[str, float]:
        """The numeric ``group/name`` figures (for TensorBoard)."""
        return {
            key: value
            for key, value in self.to_json().items()
            if "/" in key and isinstance(value, (int, float)) and not isinstance(value, bool)
        }


@dataclass(frozen=True)
class RunEvent(Event):
    """A ``bgtrain run`` started: which game, on which engine, with how many games at once."""

    kind: ClassVar[str] = "run"
    time: str | None = None
    env: str | None = None
    #: ``local`` or ``ray`` (``bgtrain run --engine``).
    engine: str = "local"
    #: The Ray cluster it joined (``None``: its own, or the local engine).
    address: str | None = None
    #: Game processes (the spare one aside).
    actors: int = 0


#: Every kind of line, by its ``event`` value.
EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        GameEvent,
        GameRefusedEvent,
        GameUnsavedEvent,
        EvalEvent,
        QuarantineEvent,
        StaleEvent,
        GuardEvent,
        BatchEvent,
        RunEvent,
    )
}


def parse_event(line: str | bytes) -> Event | None:
    """The event of one line, or ``None`` for a line that is not one (torn, unknown kind:
    a newer bgtrain's, a user's own)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    kind = record.get("event")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return None
    try:
        return cls.from_json(record)
    except TypeError:  # a line of the right kind with a field of the wrong shape
        return None


def append_event(root: str | Path | TrainingRoot, event: Event) -> None:
    """One line, in one ``write`` on an append-mode descriptor: the learner and the run
    both append to this file, and a single appending write is not interleaved.

    Raises:
        OSError: the line could not be written (a full disk...): callers say so once and
            go on, since the counters and the files on disk hold the truth.
    """
    root = TrainingRoot.at(root)
    if event.t is None:
        event = dataclasses.replace(event, t=time.time())
    root.logs.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(event.to_json()) + "\n").encode("utf-8")
    fd = os.open(root.metrics, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_events(root: str | Path | TrainingRoot) -> list[Event]:
    """Every event of a root's ``metrics.jsonl``, in order (none if there is no file)."""
    try:
        text = TrainingRoot.at(root).metrics.read_text("utf-8")
    except FileNotFoundError:
        return []
    return [e for e in map(parse_event, text.splitlines()) if e is not None]


def of_kind(events: Iterable[Event], cls: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, cls)]


class GameLog:
    """The games played, by the rule in this module's docstring, from events in order.

    ``maxlen`` bounds what is kept (the monitor keeps the last few thousand).
    """

    def __init__(self, maxlen: int | None = None) -> None:
        self._games: deque[GameEvent] = deque(maxlen=maxlen)
        self.has_game_events = False

    def add(self, event: Event) -> None:
        if isinstance(event, GameEvent):
            if not self.has_game_events:  # the run's events win over the batches' lists
                self._games.clear()
            self.has_game_events = True
            self._games.append(event)
        elif isinstance(event, BatchEvent) and not self.has_game_events:
            self._games.extend(dataclasses.replace(g, t=event.t) for g in event.episodes)

    def extend(self, events: Iterable[Event]) -> GameLog:
        for event in events:
            self.add(event)
        return self

    def __iter__(self) -> Iterator[GameEvent]:
        return iter(self._games)

    def __len__(self) -> int:
        return len(self._games)

    def recent(self, n: int = RECENT_GAMES) -> list[GameEvent]:
        """The last ``n`` games, oldest first (without copying the whole log)."""
        return list(itertools.islice(reversed(self._games), n))[::-1]
