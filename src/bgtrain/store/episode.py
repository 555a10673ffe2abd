"""Episode files, format 1 (DESIGN.md): build, validate, save atomically, load safely.

An :class:`Episode` in memory is always valid: every way to make one (``build_episode``,
``load_episode``) runs the same checks, and a broken one raises
:class:`~bgtrain.errors.InvalidEpisodeError` with one line naming the key, shape or index
at fault. The seed system's files (``states``/``actions``/``rewards`` only, float64 states,
compressed or not) are valid input.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from bgtrain.errors import InvalidEpisodeError
from bgtrain.store.fs import atomic_write
from bgtrain.store.npz_writer import npz_bytes
from bgtrain.store.safe_npz import DEFAULT_LIMITS, SizeLimits, load_npz, read_headers

FORMAT = "bgtrain.episode/1"
REQUIRED_KEYS = ("states", "actions", "rewards")
OPTIONAL_KEYS = ("logp", "policy_version", "terminated", "last_state", "meta")
OUTCOMES = ("Victory", "Defeat", "Tie")
#: ``meta["source"]`` of an episode no bgtrain policy played (a replay of a human or
#: another bot): its actions are labels, and a missing ``logp`` is not "on-policy".
DEMONSTRATION = "demonstration"

#: A log-probability is <= 0; float32 rounding may put log(1) a hair above it.
LOGP_TOLERANCE = 1e-4
#: The largest magnitude accepted in ``states``, ``rewards``, ``last_state`` and ``logp``. Values
#: beyond it are finite in float32 but overflow the learner's statistics (a reward of
#: 3e38 makes the value loss infinite, an observation of 1e30 makes its running variance
#: infinite): such a file would poison the model, so it is refused as invalid. Real games
#: stay far below it; scale values down if yours does not.
MAX_ABS_VALUE = 1e9

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


@dataclass(frozen=True, eq=False)
class Episode:
    """One recorded game, validated. Arrays are in the canonical dtypes of format 1."""

    states: np.ndarray  # float32 [T, obs_dim]
    actions: np.ndarray  # int64 [T]
    rewards: np.ndarray  # float32 [T]
    logp: np.ndarray | None = None  # float32 [T]; None: assume on-policy (seed files)
    policy_version: int | None = None
    terminated: bool = True
    last_state: np.ndarray | None = None  # float32 [obs_dim]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.states.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(self.states.shape[1])

    @property
    def total_reward(self) -> float:
        return float(self.rewards.sum(dtype=np.float64))

    @property
    def outcome(self) -> str | None:
        outcome = self.meta.get("outcome")
        return outcome if isinstance(outcome, str) else None

    @property
    def source(self) -> str | None:
        """``meta["source"]``: :data:`DEMONSTRATION` for a replay's episode; ``None`` (no
        source, as every file before it): played by the policy of ``policy_version``."""
        source = self.meta.get("source")
        return source if isinstance(source, str) else None

    @property
    def is_demonstration(self) -> bool:
        return self.source == DEMONSTRATION

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the ``.npz`` file, optional keys only when set."""
        arrays = {"states": self.states, "actions": self.actions, "rewards": self.rewards}
        if self.logp is not None:
            arrays["logp"] = self.logp
        if self.policy_version is not None:
            arrays["policy_version"] = np.array(self.policy_version, dtype=np.int64)
        arrays["terminated"] = np.array(self.terminated, dtype=np.bool_)
        if self.last_state is not None:
            arrays["last_state"] = self.last_state
        arrays["meta"] = np.array(json.dumps({"format": FORMAT, **self.meta}))
        return arrays


# --------------------------------------------------------------------------- checks


def _first_bad(mask: np.ndarray) -> str:
    index = tuple(int(i) for i in np.argwhere(mask)[0])
    return "[" + ", ".join(map(str, index)) + "]"


def _require_real(key: str, arr: np.ndarray, expected: str) -> None:
    if arr.dtype.kind not in "iuf":
        raise InvalidEpisodeError(f"'{key}' has dtype {arr.dtype}; expected {expected}")


def _as_finite_float32(
    key: str, arr: np.ndarray, expected: str, bound: float | None = None
) -> np.ndarray:
    _require_real(key, arr, expected)
    for label, bad in (("NaN", np.isnan(arr)), ("Inf", np.isinf(arr))):
        if bad.any():
            raise InvalidEpisodeError(f"'{key}' has {label} at {_first_bad(bad)}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(np.float32, copy=False)
    if arr.dtype != np.float32:
        overflow = np.isinf(out)
        if overflow.any():
            raise InvalidEpisodeError(
                f"'{key}' value at {_first_bad(overflow)} is too large for float32"
            )
    if bound is not None:
        outside = np.abs(out) > bound
        if outside.any():
            where = _first_bad(outside)
            value = float(out[tuple(np.argwhere(outside)[0])])
            raise InvalidEpisodeError(
                f"'{key}' value at {where} is {value:.3g}, outside +-{bound:.0e} "
                "(the largest magnitude bgtrain trains on; scale the game's values down)"
            )
    return out


def _check_1d(key: str, arr: np.ndarray, length: int | None = None) -> None:
    if arr.ndim != 1:
        raise InvalidEpisodeError(f"'{key}' must be 1-D [T], got shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise InvalidEpisodeError(f"'{key}' has {arr.shape[0]} entries, states has {length} rows")


def _as_actions(arr: np.ndarray, n_actions: int | None) -> np.ndarray:
    _require_real("actions", arr, "int64")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.argmax(bad))
            raise InvalidEpisodeError(f"'actions'[{i}] = {arr[i]} is not a whole number")
    negative = arr < 0
    if negative.any():
        i = int(np.argmax(negative))
        raise InvalidEpisodeError(f"'actions'[{i}] = {arr[i]} is negative")
    if arr.dtype.kind in "uf":
        # uint64 or float values past int64 would wrap to negatives in the cast below.
        too_large = arr > np.iinfo(np.int64).max
        if too_large.any():
            i = int(np.argmax(too_large))
            raise InvalidEpisodeError(f"'actions'[{i}] = {arr[i]} is too large for int64")
    _check_action_range(arr, n_actions)
    with np.errstate(invalid="ignore"):
        return arr.astype(np.int64, copy=False)


def _check_action_range(actions: np.ndarray, n_actions: int | None) -> None:
    if n_actions is None:
        return
    too_big = actions >= n_actions
    if too_big.any():
        i = int(np.argmax(too_big))
        raise InvalidEpisodeError(
            f"'actions'[{i}] = {actions[i]} is out of range: "
            f"this root has {n_actions} actions (0..{n_actions - 1})"
        )


def _check_obs_dim(found: int, expected: int | None) -> None:
    if expected is not None and found != expected:
        raise InvalidEpisodeError(f"obs_dim is {found}, but this root's model expects {expected}")


def check_fits(episode: Episode, obs_dim: int | None, n_actions: int | None) -> None:
    """Raise :class:`InvalidEpisodeError` if a valid episode does not fit a root's model."""
    _check_obs_dim(episode.obs_dim, obs_dim)
    _check_action_range(episode.actions, n_actions)


def _scalar(key: str, arr: np.ndarray) -> np.ndarray:
    if arr.shape != ():
        raise InvalidEpisodeError(f"'{key}' must be a scalar, got shape {arr.shape}")
    return arr


def _parse_meta(arr: np.ndarray) -> dict[str, Any]:
    if arr.dtype.kind != "U" or arr.shape != ():
        raise InvalidEpisodeError(
            f"'meta' must be a JSON string scalar, got dtype {arr.dtype} shape {arr.shape}"
        )
    try:
        meta = json.loads(str(arr))
    except ValueError as exc:
        raise InvalidEpisodeError(f"'meta' is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise InvalidEpisodeError(f"'meta' must be a JSON object, got {type(meta).__name__}")
    if meta.get("format", FORMAT) != FORMAT:
        raise InvalidEpisodeError(
            f"'meta' says format {meta['format']!r}; this bgtrain reads {FORMAT} only"
        )
    return meta


def validate_arrays(
    arrays: Mapping[str, np.ndarray],
    obs_dim: int | None = None,
    n_actions: int | None = None,
) -> Episode:
    """Check ``arrays`` against format 1 (and the root's ``obs_dim``/``n_actions``).

    The checks run in a fixed order (required keys, shapes, values, then each optional key),
    so a file with several faults is always refused for the same first one. Raises
    :class:`InvalidEpisodeError` (``path`` unset) naming the key, shape or index at fault.
    """
    _require_keys(arrays)
    states, actions, rewards = _steps(arrays, obs_dim, n_actions)
    t, width = states.shape
    return Episode(  # the arguments run in order: the optional keys' checks are ordered too
        states,
        actions,
        rewards,
        logp=_optional_logp(arrays, t),
        policy_version=_optional_policy_version(arrays),
        terminated=_optional_terminated(arrays),
        last_state=_optional_last_state(arrays, width),
        meta=_optional_meta(arrays),
    )


def _require_keys(arrays: Mapping[str, np.ndarray]) -> None:
    for key in REQUIRED_KEYS:
        if key not in arrays:
            raise InvalidEpisodeError(
                f"required key '{key}' is missing (keys: {', '.join(sorted(arrays)) or 'none'})"
            )


def _check_step_shapes(states: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
    """States [T, obs_dim] with obs_dim >= 1, actions and rewards [T], T >= 1; all real."""
    _require_real("states", states, "float32")
    if states.ndim != 2:
        raise InvalidEpisodeError(f"'states' must be 2-D [T, obs_dim], got shape {states.shape}")
    if states.shape[1] == 0:
        raise InvalidEpisodeError(f"'states' has no columns (shape {states.shape}, obs_dim 0)")
    _require_real("actions", actions, "int64")
    _require_real("rewards", rewards, "float32")
    _check_1d("actions", actions)
    _check_1d("rewards", rewards)
    t = states.shape[0]
    if not t == actions.shape[0] == rewards.shape[0]:
        raise InvalidEpisodeError(
            f"lengths differ: states has {t} rows, actions has {actions.shape[0]}, "
            f"rewards has {rewards.shape[0]}"
        )
    if t == 0:
        raise InvalidEpisodeError("episode is empty (T = 0 steps)")


def _steps(
    arrays: Mapping[str, np.ndarray], obs_dim: int | None, n_actions: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The required arrays, checked and cast: float32 states, int64 actions, float32 rewards."""
    states = np.asarray(arrays["states"])
    actions = np.asarray(arrays["actions"])
    rewards = np.asarray(arrays["rewards"])
    _check_step_shapes(states, actions, rewards)
    _check_obs_dim(states.shape[1], obs_dim)
    states = _as_finite_float32("states", states, "float32", MAX_ABS_VALUE)
    rewards = _as_finite_float32("rewards", rewards, "float32", MAX_ABS_VALUE)
    return states, _as_actions(actions, n_actions), rewards


def _optional_logp(arrays: Mapping[str, np.ndarray], t: int) -> np.ndarray | None:
    if "logp" not in arrays:
        return None
    raw = np.asarray(arrays["logp"])
    _require_real("logp", raw, "float32")
    _check_1d("logp", raw, t)
    logp = _as_finite_float32("logp", raw, "float32", MAX_ABS_VALUE)
    positive = logp > LOGP_TOLERANCE
    if positive.any():
        i = int(np.argmax(positive))
        raise InvalidEpisodeError(f"'logp'[{i}] = {logp[i]} is above 0 (not a log-probability)")
    return logp


def _optional_policy_version(arrays: Mapping[str, np.ndarray]) -> int | None:
    if "policy_version" not in arrays:
        return None
    raw = _scalar("policy_version", np.asarray(arrays["policy_version"]))
    if raw.dtype.kind not in "iu" or int(raw) < 0:
        raise InvalidEpisodeError(
            f"'policy_version' must be a whole number >= 0, got {raw.item()!r}"
        )
    return int(raw)


def _optional_terminated(arrays: Mapping[str, np.ndarray]) -> bool:
    if "terminated" not in arrays:
        return True  # the seed's files end with the game
    raw = _scalar("terminated", np.asarray(arrays["terminated"]))
    if raw.dtype.kind not in "biu" or int(raw) not in (0, 1):
        raise InvalidEpisodeError(f"'terminated' must be true or false, got {raw.item()!r}")
    return bool(raw)


def _optional_last_state(arrays: Mapping[str, np.ndarray], obs_dim: int) -> np.ndarray | None:
    if "last_state" not in arrays:
        return None
    raw = np.asarray(arrays["last_state"])
    if raw.shape != (obs_dim,):
        raise InvalidEpisodeError(f"'last_state' must have shape ({obs_dim},), got {raw.shape}")
    return _as_finite_float32("last_state", raw, "float32", MAX_ABS_VALUE)


def _optional_meta(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The meta object without its ``format`` (the file's, not the game's)."""
    meta = _parse_meta(np.asarray(arrays["meta"])) if "meta" in arrays else {}
    meta.pop("format", None)
    return meta


# --------------------------------------------------------------------------- build/save/load


def build_episode(
    states: Any,
    actions: Any,
    rewards: Any,
    *,
    logp: Any = None,
    policy_version: int | None = None,
    terminated: bool = True,
    last_state: Any = None,
    meta: Mapping[str, Any] | None = None,
    obs_dim: int | None = None,
    n_actions: int | None = None,
) -> Episode:
    """An :class:`Episode` from array-likes, validated exactly as a loaded file would be."""
    arrays: dict[str, np.ndarray] = {
        "states": np.asarray(states),
        "actions": np.asarray(actions),
        "rewards": np.asarray(rewards),
        "terminated": np.asarray(terminated),
        "meta": np.array(json.dumps(dict(meta or {}))),
    }
    if logp is not None:
        arrays["logp"] = np.asarray(logp)
    if policy_version is not None:
        arrays["policy_version"] = np.asarray(policy_version)
    if last_state is not None:
        arrays["last_state"] = np.asarray(last_state)
    return validate_arrays(arrays, obs_dim=obs_dim, n_actions=n_actions)


def episode_bytes(episode: Episode, compress: bool = False) -> bytes:
    """The ``.npz`` file of ``episode``, whole, in memory (stored unless ``compress``)."""
    arrays = episode.to_arrays()
    data = None if compress else npz_bytes(arrays)
    if data is None:
        out = io.BytesIO()
        (np.savez_compressed if compress else np.savez)(out, **arrays)
        data = out.getvalue()
    return data


def save_episode(episode: Episode, path: Path, compress: bool = False) -> Path:
    """Write ``episode`` to ``path`` atomically (dot-named temp, fsync, rename)."""
    data = episode_bytes(episode, compress)
    atomic_write(Path(path), lambda f: f.write(data))
    return Path(path)


def load_episode(
    path: Path,
    obs_dim: int | None = None,
    n_actions: int | None = None,
    limits: SizeLimits = DEFAULT_LIMITS,
) -> Episode:
    """Load and validate an episode file; never unpickles, never follows a link.

    Raises :class:`InvalidEpisodeError` (with ``path`` set) on any problem.
    """
    path = Path(path)
    try:
        _, arrays = load_npz(path, limits, keys=(*REQUIRED_KEYS, *OPTIONAL_KEYS))
        return validate_arrays(arrays, obs_dim=obs_dim, n_actions=n_actions)
    except InvalidEpisodeError as exc:
        if exc.path is None:
            raise InvalidEpisodeError(exc.reason, path, exc.error) from None
        raise


def check_episode_file(
    path: Path,
    obs_dim: int | None = None,
    n_actions: int | None = None,
    limits: SizeLimits = DEFAULT_LIMITS,
) -> str | None:
    """``None`` if ``path`` is a valid episode, else the one-line reason."""
    try:
        load_episode(path, obs_dim, n_actions, limits)
    except InvalidEpisodeError as exc:
        return exc.reason
    return None


def episode_steps(path: Path, limits: SizeLimits = DEFAULT_LIMITS) -> int | None:
    """T from the ``states`` header alone (cheap), or ``None`` if the file is not readable."""
    try:
        header = read_headers(path, limits).get("states")
    except InvalidEpisodeError:
        return None
    if header is None or len(header.shape) != 2:
        return None
    return header.shape[0]


def piece_name(name: str, k: int, n: int) -> str:
    """``game_X.npz`` -> ``game_X.p03of12.npz``: the name of piece ``k`` (1-based) of ``n``;
    zero-padded so that the pieces sort in order."""
    stem = name[: -len(".npz")] if name.endswith(".npz") else name
    width = len(str(n))
    return f"{stem}.p{k:0{width}d}of{n}.npz"


def split_episode(episode: Episode, max_steps: int, meta: Mapping[str, Any]) -> list[Episode]:
    """Cut ``episode`` into pieces of at most ``max_steps`` steps, in order.

    Every piece but the last is cut short (``terminated=False``) with the next state as
    its ``last_state``, so the learner bootstraps from the value where it was cut; the last
    piece keeps the episode's own ending. Each piece keeps the behaviour ``logp`` and
    ``policy_version`` of its steps, and its meta is the episode's plus ``meta``, plus
    ``piece`` (1-based) and ``pieces``. Deterministic: the same call makes the same pieces.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    bounds = [
        (lo, min(lo + max_steps, episode.length)) for lo in range(0, episode.length, max_steps)
    ]
    pieces = []
    for k, (lo, hi) in enumerate(bounds, start=1):
        last = hi == episode.length
        pieces.append(
            Episode(
                states=episode.states[lo:hi],
                actions=episode.actions[lo:hi],
                rewards=episode.rewards[lo:hi],
                logp=None if episode.logp is None else episode.logp[lo:hi],
                policy_version=episode.policy_version,
                terminated=episode.terminated if last else False,
                last_state=episode.last_state if last else episode.states[hi],
                meta={**episode.meta, **meta, "piece": k, "pieces": len(bounds)},
            )
        )
    return pieces


def episode_file_name(when: datetime, actor: str, outcome: str) -> str:
    """``game_YYYYMMDD_HHMMSS_<ms>_<actor>_<Outcome>.npz``, the seed system's pattern."""
    ms = when.microsecond // 1000
    actor = _NAME_UNSAFE.sub("-", actor).strip("-") or "0"
    outcome = _NAME_UNSAFE.sub("", outcome) or "Unknown"
    return f"game_{when:%Y%m%d_%H%M%S}_{ms:03d}_{actor}_{outcome}.npz"
