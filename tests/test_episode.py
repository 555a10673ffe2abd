"""Episode files, format 1 (DESIGN.md): round trip, the seed system's files, and every bad
input refused with its exact one-line reason, never unpickled, never followed, never touched
(guarantee 7)."""

from __future__ import annotations

import io
import json
import os
import time
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from bgtrain.errors import InvalidEpisodeError
from bgtrain.store import fs, safe_npz
from bgtrain.store.episode import (
    build_episode,
    check_episode_file,
    episode_file_name,
    episode_steps,
    load_episode,
    save_episode,
)
from bgtrain.store.safe_npz import MiB, SizeLimits

T, OBS = 5, 3
UNICODE_NAME = "game_ünïcödé_対戦_Victory.npz"


# --------------------------------------------------------------------------- builders


def seed_arrays(t: int = T, obs: int = OBS, **overrides) -> dict[str, np.ndarray]:
    """The three arrays of a seed-system file; an override of ``None`` drops the key."""
    arrays = {
        "states": np.zeros((t, obs), np.float32),
        "actions": np.zeros(t, np.int64),
        "rewards": np.zeros(t, np.float32),
    }
    arrays.update(overrides)
    return {k: v for k, v in arrays.items() if v is not None}


def write_npz(path: Path, compress: bool = False, **overrides) -> Path:
    (np.savez_compressed if compress else np.savez)(path, **seed_arrays(**overrides))
    return path


def npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def write_members(path: Path, members: dict[str, bytes]) -> Path:
    """An ``.npz`` made by hand: each member's raw bytes, exactly as given."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def npz_with_object(path: Path, key: str, obj_array: np.ndarray) -> Path:
    """A valid seed episode plus (or with ``key`` replaced by) a pickled object array."""
    members = {f"{k}.npy": npy_bytes(v) for k, v in seed_arrays().items()}
    members[f"{key}.npy"] = npy_bytes(obj_array, allow_pickle=True)
    return write_members(path, members)


def huge_header_npz(path: Path, shape: tuple[int, ...]) -> Path:
    """A tiny file whose ``states`` header declares ``shape`` float32 (data: 64 bytes)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    return write_members(
        path,
        {
            "states.npy": header.getvalue() + b"\0" * 64,
            "actions.npy": npy_bytes(np.zeros(1, np.int64)),
            "rewards.npy": npy_bytes(np.zeros(1, np.float32)),
        },
    )


class Canary:
    """Unpickling this creates the folder ``marker``: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker, 0o777, True))


def canary_array(marker: Path) -> np.ndarray:
    arr = np.empty(T, dtype=object)
    arr[:] = [Canary(marker) for _ in range(T)]
    return arr


def snapshot(path: Path) -> tuple:
    """What is on disk at ``path``, without following a link."""
    if path.is_symlink():
        return ("link", os.readlink(path))
    if path.is_dir():
        return ("dir", sorted(os.listdir(path)))
    return ("file", path.read_bytes())


def make_symlink(link: Path, target: Path) -> Path:
    try:
        link.symlink_to(target)
    except (OSError, NotImplementedError) as exc:  # Windows without the privilege
        pytest.skip(f"cannot create symbolic links here: {exc}")
    return link


def reason_of(path: Path, **kwargs) -> str:
    """The reason ``load_episode`` gives; also checks the error's path and message."""
    with pytest.raises(InvalidEpisodeError) as info:
        load_episode(path, **kwargs)
    assert info.value.path == path
    assert str(info.value) == f"{path}: {info.value.reason}"
    return info.value.reason


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("compress", [False, True], ids=["stored", "compressed"])
def test_round_trip_keeps_every_field_in_canonical_dtypes(tmp_path, compress):
    rng = np.random.default_rng(0)
    states = rng.normal(size=(7, 4))  # float64 in: stored as float32
    actions = [0, 2, 1, 1, 0, 2, 2]  # Python ints in: stored as int64
    rewards = rng.normal(size=7)
    logp = -rng.random(7)
    last_state = rng.normal(size=4)
    meta = {"env": "CartPole-v1", "outcome": "Victory", "seed": 3, "tags": ["a", "b"]}
    episode = build_episode(
        states,
        actions,
        rewards,
        logp=logp,
        policy_version=7,
        terminated=False,
        last_state=last_state,
        meta=meta,
        obs_dim=4,
        n_actions=3,
    )

    path = save_episode(episode, tmp_path / "game.npz", compress=compress)

    assert path == tmp_path / "game.npz"
    assert sorted(os.listdir(tmp_path)) == ["game.npz"]  # no dot-named temp left behind
    with zipfile.ZipFile(path) as zf:
        kinds = {info.compress_type for info in zf.infolist()}
    assert kinds == {zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED}

    loaded = load_episode(path, obs_dim=4, n_actions=3)
    for got, want, dtype in (
        (loaded.states, states, np.float32),
        (loaded.actions, actions, np.int64),
        (loaded.rewards, rewards, np.float32),
        (loaded.logp, logp, np.float32),
        (loaded.last_state, last_state, np.float32),
    ):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, np.asarray(want).astype(dtype))
    assert loaded.states.shape == (7, 4)
    assert (loaded.length, loaded.obs_dim) == (7, 4)
    assert loaded.policy_version == 7
    assert loaded.terminated is False
    assert loaded.meta == meta
    assert loaded.outcome == "Victory"
    assert loaded.total_reward == pytest.approx(float(rewards.astype(np.float32).sum()), rel=1e-5)


def test_round_trip_of_a_minimal_episode_uses_the_defaults(tmp_path):
    episode = build_episode(np.ones((3, 2)), [1, 0, 1], [0.0, 0.0, 1.0])
    loaded = load_episode(save_episode(episode, tmp_path / "e.npz"))
    assert loaded.logp is None
    assert loaded.policy_version is None
    assert loaded.terminated is True
    assert loaded.last_state is None
    assert loaded.meta == {}
    assert loaded.outcome is None
    np.testing.assert_array_equal(loaded.actions, np.array([1, 0, 1], np.int64))


def test_saved_file_is_plain_numpy_with_a_json_meta_string(tmp_path):
    """Any tool can read a bgtrain episode with numpy alone, pickle disabled."""
    episode = build_episode(np.ones((2, 3)), [0, 1], [1.0, 2.0], meta={"outcome": "Tie"})
    path = save_episode(episode, tmp_path / "e.npz", compress=True)
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {"states", "actions", "rewards", "terminated", "meta"}
        assert data["states"].dtype == np.float32
        assert data["meta"].dtype.kind == "U" and data["meta"].shape == ()
        assert json.loads(str(data["meta"])) == {"format": "bgtrain.episode/1", "outcome": "Tie"}


def test_save_replaces_an_existing_file_whole(tmp_path):
    path = tmp_path / "e.npz"
    save_episode(build_episode(np.zeros((2, 2)), [0, 0], [0.0, 0.0]), path)
    save_episode(build_episode(np.ones((4, 2)), [1, 1, 1, 1], [1.0] * 4), path)
    assert load_episode(path).length == 4
    assert sorted(os.listdir(tmp_path)) == ["e.npz"]


def test_a_save_that_fails_half_way_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "e.npz"
    save_episode(build_episode(np.zeros((2, 2)), [0, 0], [0.0, 0.0]), path)
    before = path.read_bytes()

    def disk_full(fd):  # the data is in the temp file; the disk says no when it is synced
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fs.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_episode(build_episode(np.ones((3, 2)), [1, 1, 1], [1.0] * 3), path)

    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["e.npz"]


class WindowsHold:
    """An action that fails as a file held open on Windows does, ``holds`` times."""

    def __init__(self, holds: int) -> None:
        self.holds = holds
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.holds:
            raise PermissionError(13, "The process cannot access the file")
        return "done"


def test_a_move_held_for_a_while_is_retried_until_it_succeeds():
    hold = WindowsHold(holds=3)
    assert fs.retry_on_permission_error(hold) == "done"
    assert hold.calls == 4


def test_a_move_held_for_good_raises_after_the_last_attempt():
    hold = WindowsHold(holds=fs.REPLACE_ATTEMPTS)
    with pytest.raises(PermissionError, match="cannot access"):
        fs.retry_on_permission_error(hold)
    assert hold.calls == fs.REPLACE_ATTEMPTS


def test_an_error_other_than_a_hold_is_not_retried(tmp_path):
    with pytest.raises(FileNotFoundError):
        fs.move_into(tmp_path / "missing.npz", tmp_path / "archive")
    calls = []

    def fails() -> None:
        calls.append(1)
        raise FileNotFoundError(2, "gone")

    with pytest.raises(FileNotFoundError):
        fs.retry_on_permission_error(fails)
    assert calls == [1]


def test_build_refuses_bad_data_with_the_same_reason_as_a_file(tmp_path):
    states = np.zeros((T, OBS))
    states[2, 1] = np.nan
    with pytest.raises(InvalidEpisodeError) as info:
        build_episode(states, np.zeros(T, np.int64), np.zeros(T))
    assert info.value.reason == "'states' has NaN at [2, 1]"
    assert info.value.path is None
    assert str(info.value) == "'states' has NaN at [2, 1]"
    path = write_npz(tmp_path / "nan.npz", states=states)
    assert check_episode_file(path) == info.value.reason


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"logp": [0.0, 0.5, -1.0]}, "'logp'[1] = 0.5 is above 0 (not a log-probability)"),
        ({"logp": [0.0, -1.0]}, "'logp' has 2 entries, states has 3 rows"),
        ({"last_state": [1.0, 2.0]}, "'last_state' must have shape (3,), got (2,)"),
    ],
    ids=["logp-positive", "logp-length", "last-state-shape"],
)
def test_build_refuses_bad_optional_keys(kwargs, reason):
    with pytest.raises(InvalidEpisodeError) as info:
        build_episode(np.zeros((3, 3)), [0, 1, 2], [0.0, 0.0, 0.0], **kwargs)
    assert info.value.reason == reason


def test_several_faults_are_reported_one_at_a_time_in_the_fixed_order(tmp_path):
    """Each check names the first fault; fixing it shows the next, in the order of the
    format: required keys, shapes, values, then logp, policy_version, terminated,
    last_state, meta. The same file always fails for the same reason."""
    faults = {
        "states": np.array([[np.nan, 0.0, 0.0]] * T, np.float32),
        "logp": np.full(T, 0.5, np.float32),
        "policy_version": np.array(-1),
        "terminated": np.array(2),
        "last_state": np.zeros(2, np.float32),
        "meta": np.array("[1]"),
    }
    reasons = [
        "'states' has NaN at [0, 0]",
        "'logp'[0] = 0.5 is above 0 (not a log-probability)",
        "'policy_version' must be a whole number >= 0, got -1",
        "'terminated' must be true or false, got 2",
        f"'last_state' must have shape ({OBS},), got (2,)",
        "'meta' must be a JSON object, got list",
    ]
    for key, reason in zip(list(faults), reasons, strict=True):
        path = write_npz(tmp_path / f"until_{key}.npz", **faults)
        assert reason_of(path) == reason
        del faults[key]  # fixed: the next fault shows
    assert load_episode(write_npz(tmp_path / "fixed.npz", **faults)).length == T


def test_logp_a_hair_above_zero_from_float32_rounding_is_accepted():
    episode = build_episode(np.zeros((2, 1)), [0, 0], [0.0, 0.0], logp=[5e-5, -1.0])
    assert episode.logp is not None and episode.logp.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"policy_version": -1}, "'policy_version' must be a whole number >= 0, got -1"),
        ({"terminated": 2}, "'terminated' must be true or false, got 2"),
    ],
    ids=["policy-version", "terminated"],
)
def test_reason_for_a_bad_scalar_shows_the_value_not_a_numpy_repr(kwargs, reason):
    with pytest.raises(InvalidEpisodeError) as info:
        build_episode(np.zeros((3, 3)), [0, 1, 2], [0.0, 0.0, 0.0], **kwargs)
    assert info.value.reason == reason


def test_fortran_ordered_arrays_load_with_the_right_values(tmp_path):
    states = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(4, 3))
    path = write_npz(tmp_path / "f.npz", t=4, states=states)
    np.testing.assert_array_equal(load_episode(path).states, np.ascontiguousarray(states))


# --------------------------------------------------------------------------- seed files


@pytest.mark.parametrize(
    "name, shape, dtype, savez",
    [
        ("game_20250101_120000_Victory.npz", (40, 15), np.float32, np.savez_compressed),
        ("exp_3_ep12.npz", (30, 50), np.float64, np.savez_compressed),
        ("game_20250101_120500_Defeat.npz", (30, 50), np.float64, np.savez),
        ("exp_0_ep1.npz", (12, 15), np.float32, np.savez),
    ],
    ids=["f32-compressed", "f64-compressed", "f64-stored", "f32-stored"],
)
def test_seed_system_files_load(tmp_path, name, shape, dtype, savez):
    rng = np.random.default_rng(1)
    n, obs = shape
    states = rng.normal(size=shape).astype(dtype)
    actions = rng.integers(0, 5, size=n).astype(np.int64)
    rewards = rng.normal(size=n).astype(np.float32)
    path = tmp_path / name
    savez(path, states=states, actions=actions, rewards=rewards)  # as the seed system does
    assert sorted(os.listdir(tmp_path)) == [name]

    episode = load_episode(path, obs_dim=obs, n_actions=5)

    assert episode.states.shape == shape
    assert episode.states.dtype == np.float32
    np.testing.assert_array_equal(episode.states, states.astype(np.float32))
    assert episode.actions.dtype == np.int64
    np.testing.assert_array_equal(episode.actions, actions)
    assert episode.rewards.dtype == np.float32
    np.testing.assert_array_equal(episode.rewards, rewards)
    assert episode.logp is None  # "assume on-policy"
    assert episode.terminated is True
    assert episode.policy_version is None
    assert episode.last_state is None
    assert check_episode_file(path, obs_dim=obs, n_actions=5) is None
    assert episode_steps(path) == n


def test_a_non_ascii_name_is_valid(tmp_path):
    seed_file = write_npz(tmp_path / UNICODE_NAME, compress=True)
    assert check_episode_file(seed_file) is None
    assert load_episode(seed_file).length == T

    other = tmp_path / "saved" / UNICODE_NAME
    other.parent.mkdir()
    save_episode(build_episode(np.zeros((2, 2)), [0, 1], [1.0, 1.0]), other)
    assert load_episode(other).total_reward == 2.0


# --------------------------------------------------------------------------- bad input

# Each case: (id, builder(folder) -> path, expected reason, load_episode keyword arguments).
Case = tuple[str, Callable[[Path], Path], str, dict]


def _zero_bytes(d: Path) -> Path:
    (d / "x.npz").write_bytes(b"")
    return d / "x.npz"


def _random_text(d: Path) -> Path:
    (d / "x.npz").write_text("states,actions,rewards\n0.1,2,0.5\n")
    return d / "x.npz"


def _plain_npy(d: Path) -> Path:
    with open(d / "x.npz", "wb") as f:  # np.save instead of np.savez: one bare array
        np.save(f, np.zeros((T, OBS), np.float32))
    return d / "x.npz"


def _truncated(d: Path) -> Path:
    data = write_npz(d / "whole.npz", compress=True).read_bytes()
    (d / "whole.npz").unlink()
    (d / "x.npz").write_bytes(data[: len(data) // 2])
    return d / "x.npz"


def _txt_member(d: Path) -> Path:
    members = {f"{k}.npy": npy_bytes(v) for k, v in seed_arrays().items()}
    return write_members(d / "x.npz", {**members, "notes.txt": b"good game"})


def _garbage_npy(d: Path) -> Path:
    return write_members(d / "x.npz", {"x.npy": b"garbage bytes, not an array"})


def _empty_zip(d: Path) -> Path:
    return write_members(d / "x.npz", {})


def _object_member(key: str) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        arr = np.empty(T, dtype=object)
        arr[:] = [{"hp": i} for i in range(T)]
        return npz_with_object(d / "x.npz", key, arr)

    return build


def _bomb(d: Path) -> Path:
    n = 100_000  # zeros: 12.6 MiB of arrays in a ~13 KiB file
    return write_npz(d / "x.npz", compress=True, t=n, obs=30)


def _folder(d: Path) -> Path:
    (d / "x.npz").mkdir()
    (d / "x.npz" / "states.npy").write_bytes(npy_bytes(np.zeros((T, OBS), np.float32)))
    return d / "x.npz"


def _symlink_to_valid(d: Path) -> Path:
    target = write_npz(d / "real_episode.npz")
    assert check_episode_file(target) is None
    return make_symlink(d / "x.npz", target)


def _dangling_symlink(d: Path) -> Path:
    return make_symlink(d / "x.npz", d / "nowhere.npz")


def _states(arr) -> Callable[[Path], Path]:
    return lambda d: write_npz(d / "x.npz", states=np.asarray(arr))


def _with(**overrides) -> Callable[[Path], Path]:
    return lambda d: write_npz(d / "x.npz", **overrides)


def _with_value(key: str, index: tuple, value: float, dtype=np.float32) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        arr = seed_arrays()[key].astype(dtype)
        arr[index] = value
        return write_npz(d / "x.npz", **{key: arr})

    return build


ACTIONS_BAD = np.array([0, 1, 2, 3, 4])
CASES: list[Case] = [
    ("zero-bytes", _zero_bytes, "empty file (0 bytes)", {}),
    ("random-text", _random_text, "not an .npz file (not a zip archive)", {}),
    ("bare-npy", _plain_npy, "not an .npz file (not a zip archive)", {}),
    ("truncated-zip", _truncated, "truncated or damaged zip archive", {}),
    ("txt-member", _txt_member, "zip member 'notes.txt' is not a .npy array", {}),
    (
        "garbage-npy-member",
        _garbage_npy,
        "'x' is not a valid .npy array (the magic string is not correct; "
        "expected b'\\x93NUMPY', got b'garbag')",
        {},
    ),
    ("empty-zip", _empty_zip, "required key 'states' is missing (keys: none)", {}),
    (
        "missing-states",
        _with(states=None),
        "required key 'states' is missing (keys: actions, rewards)",
        {},
    ),
    (
        "missing-actions",
        _with(actions=None),
        "required key 'actions' is missing (keys: rewards, states)",
        {},
    ),
    (
        "missing-rewards",
        _with(rewards=None),
        "required key 'rewards' is missing (keys: actions, states)",
        {},
    ),
    (
        "unicode-states",
        _states(np.full((T, OBS), "0.5")),
        "'states' has dtype <U3; expected float32",
        {},
    ),
    (
        "object-states",
        _object_member("states"),
        "'states' holds Python objects (dtype object); bgtrain never unpickles",
        {},
    ),
    (
        "object-extra-key",
        _object_member("notes"),
        "'notes' holds Python objects (dtype object); bgtrain never unpickles",
        {},
    ),
    (
        "states-1d",
        _states(np.zeros(T, np.float32)),
        "'states' must be 2-D [T, obs_dim], got shape (5,)",
        {},
    ),
    (
        "states-3d",
        _states(np.zeros((T, OBS, 2), np.float32)),
        "'states' must be 2-D [T, obs_dim], got shape (5, 3, 2)",
        {},
    ),
    (
        "short-actions",
        _with(actions=np.zeros(T - 1, np.int64)),
        "lengths differ: states has 5 rows, actions has 4, rewards has 5",
        {},
    ),
    (
        "long-rewards",
        _with(rewards=np.zeros(T + 1, np.float32)),
        "lengths differ: states has 5 rows, actions has 5, rewards has 6",
        {},
    ),
    ("empty-episode", _with(t=0), "episode is empty (T = 0 steps)", {}),
    ("nan-states", _with_value("states", (2, 1), np.nan), "'states' has NaN at [2, 1]", {}),
    (
        "inf-states",
        _with_value("states", (3, 0), -np.inf, np.float64),
        "'states' has Inf at [3, 0]",
        {},
    ),
    ("nan-rewards", _with_value("rewards", (4,), np.nan), "'rewards' has NaN at [4]", {}),
    ("inf-rewards", _with_value("rewards", (1,), np.inf), "'rewards' has Inf at [1]", {}),
    (
        "float64-overflow",
        _states(np.full((T, OBS), 1e300)),
        "'states' value at [0, 0] is too large for float32",
        {},
    ),
    (
        "fractional-action",
        _with(actions=np.array([0, 1.5, 2, 0, 0])),
        "'actions'[1] = 1.5 is not a whole number",
        {},
    ),
    (
        "nan-action",
        _with(actions=np.array([0, 0, np.nan, 0, 0])),
        "'actions'[2] = nan is not a whole number",
        {},
    ),
    (
        "negative-action",
        _with(actions=np.array([0, 1, 2, -1, 0])),
        "'actions'[3] = -1 is negative",
        {},
    ),
    (
        "action-too-big",
        _with(actions=ACTIONS_BAD),
        "'actions'[4] = 4 is out of range: this root has 4 actions (0..3)",
        {"n_actions": 4},
    ),
    (
        "float-action-too-big",
        _with(actions=ACTIONS_BAD.astype(np.float64)),
        "'actions'[3] = 3.0 is out of range: this root has 3 actions (0..2)",
        {"n_actions": 3},
    ),
    (
        "bool-actions",
        _with(actions=np.ones(T, bool)),
        "'actions' has dtype bool; expected int64",
        {},
    ),
    ("wrong-obs-dim", _with(), "obs_dim is 3, but this root's model expects 4", {"obs_dim": 4}),
    (
        "over-unpacked-limit",
        _bomb,
        "unpacks to 12.6 MiB, over the size limit of 1.0 MiB",
        {"limits": SizeLimits(max_unpacked_bytes=MiB)},
    ),
    (
        "declares-huge-arrays",
        lambda d: huge_header_npz(d / "x.npz", (10**9, 1000)),
        "arrays declare 3814697.3 MiB, over the size limit of 256.0 MiB",
        {},
    ),
    ("folder", _folder, "is a folder, not a file", {}),
    (
        "symlink-to-valid",
        _symlink_to_valid,
        "is a symbolic link; bgtrain never follows links",
        {},
    ),
    (
        "dangling-symlink",
        _dangling_symlink,
        "is a symbolic link; bgtrain never follows links",
        {},
    ),
]


OVERFLOW_WARNING = pytest.mark.filterwarnings("ignore:overflow encountered in cast")


@pytest.mark.parametrize(
    "build, reason, kwargs",
    [
        pytest.param(*c[1:], id=c[0], marks=OVERFLOW_WARNING if "overflow" in c[0] else ())
        for c in CASES
    ],
)
def test_bad_file_is_refused_with_its_exact_reason_and_left_untouched(
    tmp_path, build, reason, kwargs
):
    path = build(tmp_path)
    before = {p.name: snapshot(p) for p in tmp_path.iterdir()}

    assert reason_of(path, **kwargs) == reason
    assert check_episode_file(path, **kwargs) == reason
    assert "\n" not in reason

    assert {p.name: snapshot(p) for p in tmp_path.iterdir()} == before


def test_a_file_over_the_size_limit_on_disk_is_refused_before_reading(tmp_path):
    path = write_npz(tmp_path / "x.npz", t=200, obs=10)
    size = path.stat().st_size
    assert 1024 < size < MiB
    before = path.read_bytes()

    limits = SizeLimits(max_file_bytes=1024)
    reason = f"file is {size / 1024:.1f} KiB, over the size limit of 1.0 KiB"
    assert reason_of(path, limits=limits) == reason
    assert check_episode_file(path, limits=limits) == reason
    assert path.read_bytes() == before

    # Exactly at the limit is allowed.
    assert check_episode_file(path, limits=SizeLimits(max_file_bytes=size)) is None


def test_a_missing_file_is_reported_not_raised(tmp_path):
    path = tmp_path / "gone.npz"
    assert reason_of(path) == "file not found"
    assert check_episode_file(path) == "file not found"


@pytest.mark.parametrize(
    "shape, declared",
    [((10**9, 1000), "3814697.3 MiB"), ((300_000, 1000), "1144.4 MiB")],
    ids=["4TB", "1GB"],
)
def test_huge_declared_shape_is_refused_fast_without_allocating(tmp_path, shape, declared):
    path = huge_header_npz(tmp_path / "x.npz", shape)
    assert path.stat().st_size < 2048

    tracemalloc.start()
    try:
        probe = np.empty(2 * MiB, np.uint8)  # the measure sees numpy's allocations
        _, probe_peak = tracemalloc.get_traced_memory()
        del probe
        tracemalloc.reset_peak()
        start = time.perf_counter()
        with pytest.raises(InvalidEpisodeError) as info:
            load_episode(path)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert probe_peak >= 2 * MiB
    assert info.value.reason == f"arrays declare {declared}, over the size limit of 256.0 MiB"
    assert peak < MiB
    assert elapsed < 2.0
    assert episode_steps(path) is None  # the cheap header read refuses it too


def test_loading_never_unpickles(tmp_path):
    # The payload is live: numpy with allow_pickle=True would run it.
    proof = tmp_path / "proof_marker"
    live = npz_with_object(tmp_path / "live.npz", "states", canary_array(proof))
    with np.load(live, allow_pickle=True) as data:
        data["states"]
    assert proof.exists()

    marker = tmp_path / "marker"
    folder = tmp_path / "evil"
    folder.mkdir()
    for key in ("states", "actions", "logp", "meta", "extra"):
        path = npz_with_object(folder / f"{key}.npz", key, canary_array(marker))
        reason = f"'{key}' holds Python objects (dtype object); bgtrain never unpickles"
        assert reason_of(path) == reason
        assert check_episode_file(path) == reason
        assert episode_steps(path) is None
    assert not os.path.lexists(marker)


def test_episode_steps_reads_t_from_the_header(tmp_path):
    assert episode_steps(write_npz(tmp_path / "a.npz", t=17)) == 17
    assert episode_steps(write_npz(tmp_path / "b.npz", compress=True, t=3)) == 3
    (tmp_path / "empty.npz").write_bytes(b"")
    assert episode_steps(tmp_path / "empty.npz") is None
    assert episode_steps(write_npz(tmp_path / "flat.npz", states=np.zeros(T))) is None
    assert episode_steps(tmp_path / "missing.npz") is None


# --------------------------------------------------------------------------- known gaps


@pytest.mark.parametrize(
    "actions, shown",
    [
        (np.array([0, 2**63 + 5, 0, 0, 0], np.uint64), "9223372036854775813"),
        (np.array([0, 1e30, 0, 0, 0]), "1e+30"),
    ],
    ids=["uint64", "float"],
)
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")
def test_actions_beyond_int64_are_refused(tmp_path, actions, shown):
    path = write_npz(tmp_path / "x.npz", actions=actions)
    reason = check_episode_file(path)
    assert reason is not None and reason.startswith(f"'actions'[1] = {shown} ")


def test_float32_overflow_is_reported_without_a_warning(tmp_path):
    path = write_npz(tmp_path / "x.npz", states=np.full((T, OBS), 1e300))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_episode_file(path) == "'states' value at [0, 0] is too large for float32"


def test_a_flipped_bit_is_reported_as_zip_damage_whatever_the_member_size(tmp_path):
    path = write_npz(tmp_path / "x.npz", states=np.ones((T, OBS), np.float32))
    data = bytearray(path.read_bytes())
    one = np.float32(1.0).tobytes()
    data[data.index(one) + 3] ^= 0x01  # 1.0 -> another float: the CRC no longer matches
    path.write_bytes(bytes(data))
    assert check_episode_file(path) == (
        "truncated or damaged zip archive ('states': Bad CRC-32 for file 'states.npy')"
    )


def test_a_short_array_is_not_blamed_on_the_zip(tmp_path):
    members = {f"{k}.npy": npy_bytes(v) for k, v in seed_arrays().items()}
    members["states.npy"] = members["states.npy"][:-20]  # 60 data bytes declared, 40 present
    path = write_members(tmp_path / "x.npz", members)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None  # the archive itself is sound
    reason = check_episode_file(path)
    assert reason is not None
    assert reason == "'states' has 40 of the 60 data bytes its header declares"
    assert "zip archive" not in reason
    assert reason.count("'states'") == 1


def test_states_without_columns_are_refused(tmp_path):
    path = write_npz(tmp_path / "x.npz", obs=0)
    reason = check_episode_file(path)
    assert reason is not None and reason.startswith("'states'")


# --------------------------------------------------------------------------- file names


def test_episode_file_name_follows_the_seed_pattern():
    when = datetime(2025, 1, 2, 3, 4, 5, 678901)
    assert episode_file_name(when, "w3", "Victory") == "game_20250102_030405_678_w3_Victory.npz"
    early = datetime(2025, 12, 31, 23, 59, 59, 7000)
    assert episode_file_name(early, "w-1", "Defeat") == "game_20251231_235959_007_w-1_Defeat.npz"


@pytest.mark.parametrize(
    "actor, outcome, want_actor, want_outcome",
    [
        ("runner_1/env_2", "Victory", "runner-1-env-2", "Victory"),
        ("../../etc", "Tie", "etc", "Tie"),
        ("a\\b", "Vic_tory/x", "a-b", "Victoryx"),
        ("host:7 pid 12", "Defeat", "host-7-pid-12", "Defeat"),
    ],
)
def test_episode_file_name_sanitises_actor_and_outcome(actor, outcome, want_actor, want_outcome):
    when = datetime(2025, 1, 2, 3, 4, 5, 0)
    name = episode_file_name(when, actor, outcome)
    assert name == f"game_20250102_030405_000_{want_actor}_{want_outcome}.npz"


@pytest.mark.parametrize(
    "actor, outcome",
    [("", ""), ("___", "///"), ("ünï", "勝利"), ("a/b\\c", "..")],
)
def test_episode_file_name_always_has_six_nonempty_fields(actor, outcome):
    name = episode_file_name(datetime(2025, 1, 2, 3, 4, 5, 1000), actor, outcome)
    assert name == Path(name).name and "/" not in name and "\\" not in name
    fields = name.removesuffix(".npz").split("_")
    assert len(fields) == 6 and all(fields)
    assert fields[:4] == ["game", "20250102", "030405", "001"]


# --------------------------------------------------------------------------- .npy headers

HEADER_ARRAYS = [
    np.zeros((), np.float32),
    np.zeros(0, np.int64),
    np.zeros((0, 4), np.float32),
    np.arange(5, dtype=np.int8),
    np.ones((3, 4), ">f8"),
    np.asfortranarray(np.ones((2, 3), np.float32)),
    np.ones((2, 3, 4), np.uint16),
    np.array(True),
    np.array('{"outcome": "Victory"}'),
]


@pytest.mark.parametrize("array", HEADER_ARRAYS, ids=lambda a: f"{a.dtype.str}{a.shape}")
@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_every_header_np_save_writes_reads_as_numpy_reads_it(array, version):
    out = io.BytesIO()
    np.lib.format.write_array(out, array, version=version)
    ours, theirs = io.BytesIO(out.getvalue()), io.BytesIO(out.getvalue())
    assert np.lib.format.read_magic(ours) == np.lib.format.read_magic(theirs) == version
    read = getattr(np.lib.format, f"read_array_header_{version[0]}_0")

    assert safe_npz._parse_header(ours, version) == read(theirs)
    assert ours.tell() == theirs.tell()  # both stop where the data starts


def _npz_with_header(path: Path, header: str) -> Path:
    text = header + " " * (-(10 + len(header) + 1) % 64) + "\n"
    member = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()
    data = np.arange(3, dtype=np.float32).tobytes()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("states.npy", member + data)
    return path


def test_a_header_in_another_key_order_is_read_by_numpys_parser(tmp_path):
    path = _npz_with_header(
        tmp_path / "x.npz", "{'shape': (3,), 'fortran_order': False, 'descr': '<f4', }"
    )
    assert safe_npz.read_headers(path)["states"].shape == (3,)
    np.testing.assert_array_equal(safe_npz.load_npz(path)[1]["states"], [0.0, 1.0, 2.0])


def test_a_header_numpy_refuses_is_refused_with_numpys_reason(tmp_path):
    path = _npz_with_header(
        tmp_path / "x.npz", "{'descr': '<f4', 'fortran_order': False, 'shape': (3), }"
    )
    with pytest.raises(InvalidEpisodeError) as info:
        safe_npz.read_headers(path)
    assert info.value.reason == ("'states' is not a valid .npy array (shape is not valid: 3)")
