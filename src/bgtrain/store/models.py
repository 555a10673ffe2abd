"""The model store: publish versions atomically, keep a history, load, roll back.

    models/rl_agent_model.npz                   the latest version, always whole
    models/history/rl_agent_model.vNNNNNN.npz   the last ``history_size`` versions

A version is written to ``history/`` first, then ``os.replace``d over the latest file
(guarantee 4), so the latest version is always in the history too. A game checks for a
new version between games with :meth:`ModelStore.latest_version`, which costs one
``stat`` while nothing changed. Only numpy is used here: game processes import this.

How many versions the history keeps belongs to the root: a store given a number (the
learner's ``history_size``) records it in ``state/model_history.json`` when it
publishes, and every other publisher of the root (``bgtrain rollback``,
``RLAgent.save_model``) keeps as many.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from bgtrain.common.faults import crash_point
from bgtrain.errors import InvalidEpisodeError, InvalidModelError, ModelNotFoundError
from bgtrain.store.fs import atomic_write, atomic_write_text, remove_temps
from bgtrain.store.root import TrainingRoot
from bgtrain.store.safe_npz import MiB, SizeLimits, load_npz

logger = logging.getLogger(__name__)

FORMAT = "bgtrain.model/1"
META_KEY = "meta"
DEFAULT_HISTORY_SIZE = 50
#: ``ModelStore(root, history_size=FROM_ROOT)``: keep as many as the root records.
FROM_ROOT: Literal["root"] = "root"
MODEL_LIMITS = SizeLimits(max_file_bytes=1024 * MiB, max_unpacked_bytes=2048 * MiB)
_HISTORY_NAME = re.compile(r"^rl_agent_model\.v(\d+)\.npz$")


@dataclass(frozen=True)
class ModelMeta:
    """The self-description stored in every model file (key ``meta``, JSON)."""

    version: int
    obs_dim: int
    n_actions: int
    created_at: str = ""
    #: Names of the episodes this version was trained on (exactly-once, guarantee 3).
    batch: tuple[str, ...] = ()
    layer_sizes: tuple[int, ...] = ()
    activation: str = ""
    algorithm: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    #: Running totals: batches, games, samples...
    counters: dict[str, Any] = field(default_factory=dict)
    #: Anything else (e.g. ``rolled_back_from``); kept as it is.
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        extra = data.pop("extra")
        return json.dumps({"format": FORMAT, **data, **extra})

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise InvalidModelError(f"not a {FORMAT} model (format: {found!r})")
        data.pop("format")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        for key in ("version", "obs_dim", "n_actions"):
            if not isinstance(known.get(key), int):
                raise InvalidModelError(f"model meta lacks a whole-number {key!r}")
        known["batch"] = tuple(known.get("batch", ()))
        known["layer_sizes"] = tuple(known.get("layer_sizes", ()))
        return cls(**known, extra=extra)


class LoadedModel(NamedTuple):
    meta: ModelMeta
    arrays: dict[str, np.ndarray]
    path: Path

    @property
    def version(self) -> int:
        return self.meta.version


def history_name(version: int) -> str:
    return f"rl_agent_model.v{version:06d}.npz"


def model_file_bytes(arrays: Mapping[str, np.ndarray], meta: ModelMeta) -> bytes:
    """A whole model file (format 1) in memory: arrays plus the JSON ``meta``."""
    if META_KEY in arrays:
        raise ValueError(f"'{META_KEY}' is reserved for the model's self-description")
    data = io.BytesIO()
    np.savez(data, **arrays, **{META_KEY: np.array(meta.to_json())})
    return data.getvalue()


def read_model_file(path: Path) -> LoadedModel:
    """Load a model file whole (never unpickling) and parse its meta."""
    try:
        _, arrays = load_npz(path, MODEL_LIMITS)
    except InvalidEpisodeError as exc:
        if exc.reason == "file not found":
            raise ModelNotFoundError(f"no model file at {path}") from None
        raise InvalidModelError(f"{path}: {exc.reason}") from None
    if META_KEY not in arrays:
        raise InvalidModelError(f"{path}: no '{META_KEY}' entry; not a bgtrain model")
    try:
        meta = ModelMeta.from_json(str(arrays.pop(META_KEY)))
    except (ValueError, TypeError) as exc:
        raise InvalidModelError(f"{path}: unreadable meta ({exc})") from None
    except InvalidModelError as exc:
        raise InvalidModelError(f"{path}: {exc}") from None
    return LoadedModel(meta, arrays, path)


def recorded_history_size(root: str | Path | TrainingRoot) -> int:
    """How many versions the root's history keeps, as its learner recorded it
    (:data:`DEFAULT_HISTORY_SIZE` if none did, or the record cannot be read)."""
    path = TrainingRoot.at(root).history_size_file
    try:
        found: Any = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return DEFAULT_HISTORY_SIZE
    except (OSError, ValueError) as exc:  # unreadable: a warning, and the default
        found = exc
    size = found.get("history_size") if isinstance(found, dict) else None
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        logger.warning(
            "%s holds no history size (%s): keeping the last %d versions",
            path,
            found,
            DEFAULT_HISTORY_SIZE,
        )
        return DEFAULT_HISTORY_SIZE
    return size


class ModelStore:
    """A root's published models. Publishing needs the learner lock; reading does not.

    ``history_size``: how many versions ``models/history/`` keeps. A number is recorded
    in the root when this store publishes; :data:`FROM_ROOT` (the default) keeps as many
    as the root records (:func:`recorded_history_size`); ``None`` keeps every version.
    Raises :class:`ValueError` for a number below 1.
    """

    def __init__(
        self,
        root: str | Path | TrainingRoot,
        history_size: int | Literal["root"] | None = FROM_ROOT,
    ) -> None:
        if isinstance(history_size, int) and history_size < 1:
            raise ValueError(
                f"history_size must be at least 1 (or None: keep all), got {history_size}"
            )
        self.root = TrainingRoot.at(root)
        self.history_size = history_size
        self._seen: tuple[tuple[int, int, int], int] | None = None
        self._recorded = False

    @property
    def path(self) -> Path:
        return self.root.model_file

    # ------------------------------------------------------------------ reading

    def latest_version(self) -> int | None:
        """The latest published version, or ``None``: one ``stat`` while unchanged."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._seen is not None and self._seen[0] == key:
            return self._seen[1]
        try:
            _, arrays = load_npz(self.path, MODEL_LIMITS, keys=(META_KEY,))
            version = int(json.loads(str(arrays[META_KEY]))["version"])
        except FileNotFoundError:
            return None
        except (InvalidEpisodeError, ValueError, KeyError, TypeError) as exc:
            raise InvalidModelError(f"{self.path}: cannot read its version ({exc})") from None
        self._seen = (key, version)
        return version

    def load(self, version: int | None = None) -> LoadedModel:
        """The latest model, or ``version`` from the history."""
        if version is None:
            if not self.path.exists():
                raise ModelNotFoundError(
                    f"no model published yet in {self.root.models}; the learner publishes "
                    "one after its first batch"
                )
            return read_model_file(self.path)
        path = self.root.history / history_name(version)
        if not path.exists():
            have = self.versions()
            raise ModelNotFoundError(
                f"version {version} is not in {self.root.history} "
                f"(available: {_ranges(have) if have else 'none'})"
            )
        return read_model_file(path)

    def load_if_newer(self, known: int | None) -> LoadedModel | None:
        """The latest model if its version differs from ``known``; for games, between games."""
        latest = self.latest_version()
        if latest is None or latest == known:
            return None
        return self.load()

    def versions(self) -> list[int]:
        """Versions kept in the history, oldest first."""
        try:
            names = os.listdir(self.root.history)
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for m in map(_HISTORY_NAME.match, names) if m)

    def latest_batch(self) -> frozenset[str]:
        """The episode names the latest version was trained on (empty if none)."""
        try:
            return frozenset(self.load().meta.batch)
        except ModelNotFoundError:
            return frozenset()

    # ------------------------------------------------------------------ writing

    def publish(self, arrays: Mapping[str, np.ndarray], meta: ModelMeta) -> ModelMeta:
        """Publish ``arrays`` as the next version. ``meta.version``/``created_at`` are set here.

        The caller must hold the root's learner lock (one publisher per root).
        """
        version = (self.latest_version() or 0) + 1
        meta = dataclasses.replace(
            meta, version=version, created_at=datetime.now().astimezone().isoformat()
        )
        payload = model_file_bytes(arrays, meta)
        self.root.history.mkdir(parents=True, exist_ok=True)
        self._record_history_size()
        # History first: if we die between the two writes, the latest file still holds
        # the previous version, and the next publish rewrites this same history slot.
        atomic_write(self.root.history / history_name(version), lambda f: f.write(payload))
        crash_point("after_history_write")
        atomic_write(self.path, lambda f: f.write(payload))
        self._prune_history()
        return meta

    def rollback(self, version: int) -> ModelMeta:
        """Republish history ``version`` as the newest version (the caller holds the lock)."""
        old = self.load(version)
        meta = dataclasses.replace(
            old.meta, batch=(), extra={**old.meta.extra, "rolled_back_from": version}
        )
        return self.publish(old.arrays, meta)

    def remove_leftover_temps(self) -> list[Path]:
        """The publisher's own temp files left by a crash (start-up recovery)."""
        return remove_temps(self.root.models) + remove_temps(self.root.history)

    def _record_history_size(self) -> None:
        """Record a number given to this store, once, before its first version is written:
        a failure then leaves the root as it was."""
        if self._recorded or not isinstance(self.history_size, int):
            return
        self.root.state.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"history_size": self.history_size})
        atomic_write_text(self.root.history_size_file, text)
        self._recorded = True

    def _prune_history(self) -> None:
        keep = (
            recorded_history_size(self.root)
            if self.history_size == FROM_ROOT
            else self.history_size
        )
        if keep is None:
            return
        versions = self.versions()
        for old in versions[: max(0, len(versions) - keep)]:
            (self.root.history / history_name(old)).unlink()
            logger.info("model history: removed version %d (keeping the last %d)", old, keep)


def _ranges(versions: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    parts: list[str] = []
    start = prev = versions[0]
    for v in [*versions[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(parts)
