"""``bgtrain check FILE...``: one line per file (OK or the exact reason), exit 1 if any is bad."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bgtrain.cli import main
from bgtrain.store.episode import build_episode, save_episode

from .helpers import bgtrain_argv, bgtrain_cli, cli_env

UNICODE_NAME = "game_ünïcödé_対戦_Victory.npz"


class Canary:
    """Unpickling this creates the folder ``marker``: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker, 0o777, True))


def npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def seed_file(path: Path, t: int, obs: int, actions=None, rewards=None) -> Path:
    """A file as the seed system writes it: three arrays, float64 states, compressed."""
    np.savez_compressed(
        path,
        states=np.zeros((t, obs)),
        actions=np.zeros(t, np.int64) if actions is None else np.asarray(actions, np.int64),
        rewards=np.ones(t, np.float32) if rewards is None else np.asarray(rewards, np.float32),
    )
    return path


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A folder of good and bad episode files, all with obs_dim 3 unless named otherwise."""
    save_episode(
        build_episode(
            np.zeros((5, 3)),
            [0, 1, 2, 1, 0],
            [0.5, 1.0, 0.0, 0.0, 0.0],
            meta={"outcome": "Victory"},
            policy_version=2,
        ),
        tmp_path / "good.npz",
    )
    save_episode(
        build_episode(np.zeros((4, 3)), [0, 0, 0, 0], [0.0] * 4, terminated=False),
        tmp_path / "cut.npz",
        compress=True,
    )
    seed_file(tmp_path / "exp_3_ep12.npz", 6, 3)
    seed_file(tmp_path / "obs4.npz", 2, 4, actions=[0, 2])
    seed_file(tmp_path / "obs4_big_action.npz", 3, 4, actions=[0, 1, 3])
    seed_file(tmp_path / UNICODE_NAME, 2, 3)
    (tmp_path / "empty.npz").write_bytes(b"")
    seed_file(tmp_path / "nan.npz", 3, 3, rewards=[0.0, np.nan, 1.0])
    (tmp_path / "folder.npz").mkdir()
    evil = np.empty(2, dtype=object)
    evil[:] = [Canary(tmp_path / "marker"), Canary(tmp_path / "marker")]
    with zipfile.ZipFile(tmp_path / "evil.npz", "w") as zf:
        zf.writestr("states.npy", npy_bytes(evil, allow_pickle=True))
        zf.writestr("actions.npy", npy_bytes(np.zeros(2, np.int64)))
        zf.writestr("rewards.npy", npy_bytes(np.zeros(2, np.float32)))
    np.savez_compressed(  # 12.6 MiB of zeros once unpacked
        tmp_path / "bomb.npz",
        states=np.zeros((100_000, 30), np.float32),
        actions=np.zeros(100_000, np.int64),
        rewards=np.zeros(100_000, np.float32),
    )
    return tmp_path


GOOD = {
    "good.npz": "good.npz: OK (5 steps, obs_dim 3, return 1.5, Victory)",
    "cut.npz": "cut.npz: OK (4 steps, obs_dim 3, return 0, cut short)",
    "exp_3_ep12.npz": "exp_3_ep12.npz: OK (6 steps, obs_dim 3, return 6)",
    UNICODE_NAME: f"{UNICODE_NAME}: OK (2 steps, obs_dim 3, return 2)",
}
BAD = {
    "empty.npz": "empty.npz: empty file (0 bytes)",
    "nan.npz": "nan.npz: 'rewards' has NaN at [1]",
    "folder.npz": "folder.npz: is a folder, not a file",
    "missing.npz": "missing.npz: file not found",
    "evil.npz": "evil.npz: 'states' holds Python objects (dtype object); bgtrain never unpickles",
}


def run_check(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``bgtrain check ARGS`` in ``cwd`` (the names print as given, relative to it)."""
    return bgtrain_cli("check", *args, cwd=cwd)


def test_mixed_files_print_one_line_each_and_exit_1(files):
    names = ["good.npz", "empty.npz", "cut.npz", "nan.npz", "exp_3_ep12.npz"]
    names += ["folder.npz", UNICODE_NAME, "missing.npz", "evil.npz"]
    result = run_check(files, *names)

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [{**GOOD, **BAD}[n] for n in names] + ["4 OK, 5 bad"]
    assert result.stderr == ""
    assert not (files / "marker").exists()  # the pickled payload never ran
    assert (files / "empty.npz").read_bytes() == b""  # check reads, never moves or deletes
    assert (files / "folder.npz").is_dir()


def test_all_good_files_exit_0(files):
    result = run_check(files, *GOOD)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [*GOOD.values(), "4 OK, 0 bad"]
    assert result.stderr == ""


def test_a_single_file_prints_a_single_line(files):
    good = run_check(files, "good.npz")
    assert (good.returncode, good.stdout) == (0, GOOD["good.npz"] + "\n")
    bad = run_check(files, "nan.npz")
    assert (bad.returncode, bad.stdout) == (1, BAD["nan.npz"] + "\n")


def test_obs_dim_and_n_actions_are_applied(files):
    names = ["good.npz", "obs4.npz", "obs4_big_action.npz"]
    loose = run_check(files, *names)
    assert loose.returncode == 0, loose.stdout

    strict = run_check(files, "--obs-dim", "4", "--n-actions", "3", *names)
    assert strict.returncode == 1, strict.stderr
    assert strict.stdout.splitlines() == [
        "good.npz: obs_dim is 3, but this root's model expects 4",
        "obs4.npz: OK (2 steps, obs_dim 4, return 2)",
        "obs4_big_action.npz: 'actions'[2] = 3 is out of range: this root has 3 actions (0..2)",
        "1 OK, 2 bad",
    ]

    # With the right numbers every file of that root passes.
    result = run_check(files, "--obs-dim", "3", "--n-actions", "3", "good.npz", "cut.npz")
    assert result.returncode == 0, result.stdout


def test_bad_option_values_are_refused_by_the_parser(files):
    result = run_check(files, "--obs-dim", "0", "good.npz")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "argument --obs-dim: must be at least 1, got 0" in result.stderr


# --------------------------------------------------------------------------- in process


def test_main_in_process_matches_the_command(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    names = ["good.npz", "empty.npz", "cut.npz", "nan.npz", UNICODE_NAME, "folder.npz"]
    assert main(["check", *names]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [{**GOOD, **BAD}[n] for n in names] + ["3 OK, 3 bad"]
    assert err == ""

    assert main(["check", *GOOD]) == 0
    assert capsys.readouterr().out.splitlines() == [*GOOD.values(), "4 OK, 0 bad"]


def test_main_applies_obs_dim_and_n_actions(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    assert main(["check", "--n-actions", "2", "good.npz", "exp_3_ep12.npz"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "good.npz: 'actions'[2] = 2 is out of range: this root has 2 actions (0..1)",
        GOOD["exp_3_ep12.npz"],
        "1 OK, 1 bad",
    ]
    assert main(["check", "--obs-dim", "4", "obs4.npz"]) == 0
    assert capsys.readouterr().out == "obs4.npz: OK (2 steps, obs_dim 4, return 2)\n"


def test_main_applies_the_unpacked_size_limit(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    assert main(["check", "bomb.npz"]) == 0
    assert capsys.readouterr().out == "bomb.npz: OK (100000 steps, obs_dim 30, return 0)\n"
    assert main(["check", "--max-unpacked-mb", "1", "bomb.npz"]) == 1
    assert capsys.readouterr().out == (
        "bomb.npz: unpacks to 12.6 MiB, over the size limit of 1.0 MiB\n"
    )
    assert main(["check", "--max-file-mb", "1", "bomb.npz"]) == 0  # 13 KiB on disk
    capsys.readouterr()


def test_main_refuses_a_bad_option_value(files, capsys):
    with pytest.raises(SystemExit) as info:
        main(["check", "--n-actions", "0", str(files / "good.npz")])
    assert info.value.code == 2
    assert "argument --n-actions: must be at least 1, got 0" in capsys.readouterr().err


def test_check_refuses_finite_values_too_large_to_train_on(tmp_path, capsys):
    """Rewards of 3e38 are finite float32, but they poison training (before: "OK")."""
    path = seed_file(tmp_path / "poison.npz", 4, 3, rewards=[0.0, 0.0, 3e38, 0.0])
    assert main(["check", str(path)]) == 1
    assert capsys.readouterr().out.strip() == (
        f"{path}: 'rewards' value at [2] is 3e+38, outside +-1e+09 "
        "(the largest magnitude bgtrain trains on; scale the game's values down)"
    )


@pytest.mark.skipif(shutil.which("head") is None, reason="needs head")
def test_check_piped_into_head_ends_quietly(files):
    """``bgtrain check ... | head -n 1``: once head has its line and leaves, the output
    beyond it cannot be written; the command ends quietly with 141 (128 + SIGPIPE, as a
    shell reports a command ended by a closed pipe): no BrokenPipeError traceback, no
    "Exception ignored" at exit. 3000 lines are more than a pipe holds, so the write
    meets the closed pipe whatever the timing."""
    check = subprocess.Popen(
        bgtrain_argv("check", *["good.npz"] * 3000),
        cwd=files,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    head = subprocess.Popen(["head", "-n", "1"], stdin=check.stdout, stdout=subprocess.PIPE)
    assert check.stdout is not None and check.stderr is not None
    check.stdout.close()  # head holds the only reading end: its exit closes the pipe
    first, _ = head.communicate(timeout=120)
    err = check.stderr.read().decode()
    assert check.wait(timeout=120) == 141, err
    assert first.decode() == GOOD["good.npz"] + "\n"
    assert err == ""
