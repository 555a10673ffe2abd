"""Every failure a user can cause at the command line ends in one ``error:`` line and a
non-zero exit code, before anything starts and with nothing lost (issue 11, items 8
and 14): bad settings from flags and files, a ``--root`` that is a file, a read-only
root, a full disk at start and at stop. Full and read-only disks are real ones (tmpfs
mounts): the tests run as root, for whom permissions do not stop a write."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bgtrain import ModelStore, TrainingRoot
from bgtrain.cli import main
from bgtrain.errors import RootError
from bgtrain.monitor.snapshot import Watcher
from bgtrain.store.root import describe_os_error

from .helpers import bgtrain_argv, bgtrain_cli, cli_env, wait_until, write_episode

FILE_ROOT_ERROR = (
    "error: training root {root} is a file, not a folder: pass --root with a folder "
    "(or a path that does not exist yet)"
)
READ_ONLY_ERROR = "error: training root {root} is on a read-only file system: use a writable --root"


def invoke(argv: list[str | Path], capsys) -> tuple[int, str, str]:
    """``bgtrain ARGV`` in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes: proof that nothing changed or was lost."""
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def names(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.rglob("*.npz") if not p.name.startswith(".")}


# --------------------------------------------------------------------------- settings (item 14)


def test_run_with_a_bad_activation_stops_at_once_with_one_usage_line(tmp_path):
    """It printed 323 tracebacks in 24 s, quarantined 18 valid games and exited 0."""
    root = tmp_path / "root"
    result = bgtrain_cli("run", "--root", root, "--activation", "foo", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "bgtrain run: error: argument --activation: must be one of tanh, relu, got 'foo'"
    )
    assert result.stdout == ""
    assert not root.exists()  # nothing started: no root, no game, no learner


ISSUE_EXAMPLES = [
    # (argv after the command, exit code, the last line of stderr)
    (
        ["run", "--learning-rate", "-1"],
        2,
        "bgtrain run: error: argument --learning-rate: must be greater than 0 and at most 1, "
        "got -1.0",
    ),
    (
        ["run", "--minibatch-size", "0"],
        2,
        "bgtrain run: error: argument --minibatch-size: must be at least 1, got 0",
    ),
    (
        ["run", "--gamma", "2"],
        2,
        "bgtrain run: error: argument --gamma: must be from 0 to 1, got 2.0",
    ),
    (
        ["run", "--max-waiting", "-3"],
        2,
        "bgtrain run: error: argument --max-waiting: must be at least 0 (or none), got -3",
    ),
    (
        ["run", "--minutes", "-1"],
        2,
        "bgtrain run: error: argument --minutes: must be greater than 0 (or none), got -1.0",
    ),
    (
        ["run", "--lr", "0"],  # the seed system's spelling: the same range
        2,
        "error: setting 'learning_rate' must be greater than 0 and at most 1, got 0.0",
    ),
    (
        ["run", "--activation", "rleu"],
        2,
        "bgtrain run: error: argument --activation: must be one of tanh, relu, got 'rleu' "
        "(did you mean 'relu'?)",
    ),
    (
        ["learn", "--batch-steps", "0"],
        2,
        "bgtrain learn: error: argument --batch-steps: must be at least 1 (or none), got 0",
    ),
    (
        ["learn", "--poll-interval", "nan"],
        2,
        "bgtrain learn: error: argument --poll-interval: must be greater than 0 and at most "
        "3600, got nan",
    ),
    (
        ["run", "--lerning-rate", "0.1"],
        2,
        "bgtrain run: error: unrecognized arguments: --lerning-rate "
        "(did you mean --learning-rate?)",
    ),
    (
        ["monitor", "--refresh", "-1"],
        2,
        "bgtrain monitor: error: argument --refresh: must be at least 0.1, got -1.0",
    ),
]


@pytest.mark.parametrize(("argv", "code", "line"), ISSUE_EXAMPLES, ids=lambda v: str(v))
def test_a_bad_setting_is_refused_before_anything_starts(tmp_path, capsys, argv, code, line):
    root = tmp_path / "root"
    got, out, err = invoke([*argv, "--root", root], capsys)
    assert (got, err.splitlines()[-1]) == (code, line)
    assert out == ""
    assert not root.exists()


@pytest.mark.parametrize("command", ["run", "learn"])
def test_a_misspelled_table_in_the_settings_file_is_refused(tmp_path, capsys, command):
    """``[learnr]`` was ignored: the learner ran on its defaults without a word."""
    config = tmp_path / "bgtrain.toml"
    config.write_text("[learnr]\nlearning_rate = 0.01\n", encoding="utf-8")
    root = tmp_path / "root"
    assert invoke([command, "--root", root, "--config", config], capsys) == (
        2,
        "",
        f"error: settings file {config}: unknown table [learnr] (did you mean [learner]?); "
        "known tables: [learner], [run]\n",
    )
    assert not root.exists()


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "[learner]\nlearning_rat = 0.01\n",
            "error: unknown setting 'learning_rat' for LearnerSettings "
            "(did you mean 'learning_rate'?); known: ",
        ),
        (
            "[run]\nmax_waitng = 2\n",
            "error: unknown setting 'max_waitng' for RunConfig (did you mean 'max_waiting'?); "
            "known: ",
        ),
        ("[learner]\ngamma = 2\n", "error: setting 'gamma' must be from 0 to 1, got 2.0"),
        (
            "[run]\nminutes = -1\n",
            "error: setting 'minutes' must be greater than 0 (or none), got -1.0",
        ),
    ],
)
def test_a_misspelled_or_bad_key_in_the_settings_file_is_refused(tmp_path, capsys, text, line):
    config = tmp_path / "bgtrain.toml"
    config.write_text(text, encoding="utf-8")
    root = tmp_path / "root"
    code, out, err = invoke(["run", "--root", root, "--config", config], capsys)
    assert code == 2 and out == ""
    assert err.startswith(line) and err.count("\n") == 1
    assert not root.exists()


# --------------------------------------------------------------------------- a file as --root


ROOT_COMMANDS = [
    ["run", "--games", "1"],
    ["learn", "--exit-when-idle"],
    ["plot"],
    ["monitor", "--once"],
    ["monitor", "--json"],
    ["monitor"],
    ["eval"],
    ["requeue", "--from", "stale"],
    ["rollback", "1"],
]


@pytest.mark.parametrize("argv", ROOT_COMMANDS, ids=" ".join)
def test_a_file_as_root_is_refused_by_every_command(tmp_path, capsys, argv):
    """run, learn and plot raised NotADirectoryError; monitor said "no training root yet"."""
    root = tmp_path / "notes.txt"
    root.write_text("not a root\n", encoding="utf-8")
    assert invoke([*argv, "--root", root], capsys) == (
        1,
        "",
        FILE_ROOT_ERROR.format(root=root) + "\n",
    )
    assert root.read_text(encoding="utf-8") == "not a root\n"


def test_a_file_as_root_is_one_line_from_the_real_command(tmp_path):
    root = tmp_path / "notes.txt"
    root.write_text("x", encoding="utf-8")
    for argv in (["run", "--games", "1"], ["learn"], ["plot"]):
        result = bgtrain_cli(*argv, "--root", root, cwd=tmp_path, timeout=60)
        assert (result.returncode, result.stdout, result.stderr) == (
            1,
            "",
            FILE_ROOT_ERROR.format(root=root) + "\n",
        ), argv


def test_a_root_under_a_file_or_holding_a_file_for_a_folder_is_refused(tmp_path, capsys):
    afile = tmp_path / "notes.txt"
    afile.write_text("x", encoding="utf-8")
    under = afile / "root"
    assert invoke(["learn", "--root", under], capsys) == (
        1,
        "",
        f"error: training root {under} cannot be made: {afile} is a file, not a folder: "
        "pass --root with a folder (or a path that does not exist yet)\n",
    )
    root = TrainingRoot(tmp_path / "root")
    write_episode(root.buffer, "a.npz")
    root.archive.parent.mkdir(parents=True, exist_ok=True)
    root.archive.write_text("x", encoding="utf-8")
    before = tree(root.path)
    assert invoke(["learn", "--root", root.path, "--exit-when-idle"], capsys) == (
        1,
        "",
        f"error: {root.archive} in training root {root.path} is a file where a folder "
        "belongs: move it away, or use another --root\n",
    )
    assert tree(root.path) == before


def test_the_library_refuses_a_file_as_root_with_a_root_error(tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("x", encoding="utf-8")
    with pytest.raises(RootError, match="is a file, not a folder"):
        Watcher(afile).take()
    with pytest.raises(RootError, match="is a file, not a folder"):
        TrainingRoot(afile).ensure()
    Watcher(tmp_path / "missing").take()  # a root not made yet is still just "not yet"


def test_an_os_error_names_the_path_its_errno_and_what_to_do(tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("x", encoding="utf-8")
    with pytest.raises(OSError) as exc:
        (afile / "x").mkdir()
    assert describe_os_error(exc.value, tmp_path) == (
        f"{afile / 'x'}: Not a directory (ENOTDIR): a file stands where a folder is needed: "
        "move it away, or use another --root"
    )
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a failed write names no file
    assert describe_os_error(full, "r") == (
        "No space left on device (ENOSPC) in training root r: the disk is full: "
        "free some space, or use another --root"
    )


# ----------------------------------------------------------- real full and read-only disks


def _mount(*args: str) -> str | None:
    """Run ``mount ARGS``; ``None`` if it worked, else why not (the test is skipped)."""
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        return "tmpfs mounts need Linux and the mount command"
    done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        return f"mounting is not permitted here ({done.stderr.strip()}); run as root with mounts"
    return None


@pytest.fixture
def tmpfs(tmp_path) -> Iterator[Callable[[str], Path]]:
    """``tmpfs(size)``: a fresh tmpfs of that size (``"2m"``), unmounted afterwards."""
    mounted: list[Path] = []

    def make(size: str) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        why = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point))
        if why:
            pytest.skip(why)
        mounted.append(point)
        return point

    yield make
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=30)


def make_read_only(point: Path) -> None:
    why = _mount("-o", "remount,ro", str(point))
    if why:
        pytest.skip(why)


def fill(folder: Path) -> None:
    """Write until the disk says ENOSPC: the disk is then full to the last page."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            try:
                os.write(fd, b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return
    finally:
        os.close(fd)


def a_root_with_games(parent: Path, n: int = 3) -> TrainingRoot:
    root = TrainingRoot(parent / "root")
    for i in range(n):
        write_episode(root.buffer, f"game_{i}.npz", steps=20, tag=float(i))
    write_episode(root.stale, "old.npz", steps=5)
    return root


WRITE_COMMANDS = [
    ["learn", "--exit-when-idle"],
    ["run", "--games", "1", "--actors", "1"],
    ["requeue", "--from", "stale"],
    ["rollback", "1"],
]


def test_a_read_only_root_is_refused_at_start_and_nothing_changes(tmpfs, capsys):
    disk = tmpfs("4m")
    root = a_root_with_games(disk)
    make_read_only(disk)
    before = tree(root.path)
    for argv in WRITE_COMMANDS:
        assert invoke([*argv, "--root", root.path], capsys) == (
            1,
            "",
            READ_ONLY_ERROR.format(root=root.path) + "\n",
        ), argv
    assert tree(root.path) == before
    # Commands that only read still work on it.
    code, out, _ = invoke(["monitor", "--json", "--root", root.path], capsys)
    assert code == 0 and json.loads(out)["buffer"]["count"] == 3


def write_metrics(root: TrainingRoot) -> None:
    root.logs.mkdir(parents=True, exist_ok=True)
    games = [
        {"event": "game", "t": 1e9 + i, "return": 10.0 + i, "policy_version": i // 2}
        for i in range(6)
    ]
    root.metrics.write_text("".join(json.dumps(g) + "\n" for g in games), encoding="utf-8")


@pytest.mark.parametrize("out_name", ["curves.png", "report.html"])
def test_plot_to_a_full_or_read_only_disk_names_the_output_and_leaves_no_file(
    tmp_path, tmpfs, capsys, out_name
):
    root = TrainingRoot(tmp_path / "root")
    write_metrics(root)
    full = tmpfs("256k")
    fill(full)
    out = full / out_name
    assert invoke(["plot", "--root", root.path, "--out", out], capsys) == (
        1,
        "",
        f"error: {out}: No space left on device (ENOSPC): the disk is full: free some space, "
        "or write elsewhere\n",
    )
    assert sorted(p.name for p in full.iterdir()) == ["filler"]  # no empty or partial file

    read_only = tmpfs("256k")
    make_read_only(read_only)
    out = read_only / out_name
    assert invoke(["plot", "--root", root.path, "--out", out], capsys) == (
        1,
        "",
        f"error: {out}: Read-only file system (EROFS): the file system is read-only: "
        "write to a writable place\n",
    )


def test_learn_on_a_full_disk_at_start_says_so_in_one_line_and_loses_nothing(tmpfs):
    disk = tmpfs("2m")
    root = a_root_with_games(disk)
    fill(disk)
    before = tree(root.path)
    result = bgtrain_cli(
        "learn", "--root", root.path, "--exit-when-idle", cwd=disk.parent, timeout=60
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and str(root.path) in line
    assert "No space left on device" in line
    after = tree(root.path)
    assert {k: v for k, v in after.items() if k in before} == before  # every game kept


def test_learn_on_a_disk_that_fills_up_stops_cleanly_and_loses_nothing(tmpfs):
    """The stop's state writes meet a full disk: it said so with a raw OSError traceback.
    Now the stop completes (the lock is released; the counters are repaired at the next
    start), the warning names the file and the cause, and every game is where it was."""
    disk = tmpfs("4m")
    root = a_root_with_games(disk)
    games = names(root.buffer)
    learn = subprocess.Popen(
        bgtrain_argv("learn", "--root", root.path, "--no-verbose"),
        cwd=disk.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        store = ModelStore(root.path)
        wait_until(lambda: names(root.archive) == games, timeout=60, what="the games trained")
        assert store.latest_version() == 1
        fill(disk)
        learn.send_signal(signal.SIGTERM)  # the stop writes its state: the disk is full
        _, err = learn.communicate(timeout=60)
    finally:
        if learn.poll() is None:
            learn.kill()
            learn.communicate()
    assert "Traceback" not in err
    assert learn.returncode == 1  # nothing lost, but the user must free space
    last = err.strip().splitlines()[-1]
    assert last == (
        f"error: No space left on device (ENOSPC) in training root {root.path}: the disk is "
        "full: free some space, or use another --root"
    )
    assert names(root.archive) == games  # nothing lost
    assert names(root.buffer) == names(root.processing) == set()
    assert names(root.stale) == {"old.npz"}
    assert store.latest_version() == 1


# ------------------------------------------------------------- misspelled flags (issue 17)

MISSPELLED = [
    # (argv, the last line of stderr): the misspelling is named before any other usage
    # error of the command (a required argument, a word taken as a value) can hide it.
    (
        ["requeue", "--frm", "stale"],
        "bgtrain requeue: error: unrecognized arguments: --frm (did you mean --from?)",
    ),
    (
        ["check", "--obs-dimm", "3"],
        "bgtrain check: error: unrecognized arguments: --obs-dimm (did you mean --obs-dim?)",
    ),
    (
        ["rollback", "--rot", "r", "3"],
        "bgtrain rollback: error: unrecognized arguments: --rot (did you mean --root?)",
    ),
    (
        ["eval", "--episodes=5", "--sampel"],
        "bgtrain eval: error: unrecognized arguments: --sampel (did you mean --sample?)",
    ),
    (
        ["run", "--learning-rate", "-1e-3", "--mintues=5"],
        "bgtrain run: error: unrecognized arguments: --mintues=5 (did you mean --minutes?)",
    ),
    (
        ["learn", "-v"],
        "bgtrain learn: error: unrecognized arguments: -v (-v is an option of bgtrain itself: "
        "put it first, bgtrain -v learn ...)",
    ),
    (
        ["evaluate", "--episodes", "3"],
        "bgtrain: error: argument COMMAND: invalid choice: 'evaluate' (choose from run, learn, "
        "monitor, plot, eval, check, requeue, rollback, sc2) (did you mean 'eval'?)",
    ),
]


@pytest.mark.parametrize(("argv", "line"), MISSPELLED, ids=lambda v: str(v))
def test_a_misspelled_flag_is_named_with_its_commands_usage(tmp_path, capsys, argv, line):
    code, out, err = invoke(argv, capsys)
    assert (code, err.splitlines()[-1]) == (2, line)
    command = line.split(":")[0]  # "bgtrain requeue"
    assert err.startswith(f"usage: {command} ["), err
    assert out == ""


def test_a_misspelled_flag_of_run_shows_runs_usage_from_the_real_command(tmp_path):
    result = bgtrain_cli("run", "--mintues", "5", "--root", tmp_path / "root", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: bgtrain run [-h] [--root DIR]"), result.stderr
    assert result.stderr.splitlines()[-1] == (
        "bgtrain run: error: unrecognized arguments: --mintues (did you mean --minutes?)"
    )
    assert not (tmp_path / "root").exists()


def test_a_flag_of_the_command_still_takes_abbreviations_and_negative_values(capsys):
    """What argparse accepts is not refused as misspelled: an abbreviation where the
    command allows them, a negative number as a value."""
    code, _, err = invoke(["eval", "--episo", "0"], capsys)  # --episodes, abbreviated
    assert (code, err.splitlines()[-1]) == (
        2,
        "bgtrain eval: error: argument --episodes: must be at least 1, got 0",
    )
    code, _, err = invoke(["check", "--obs-dim", "-3", "x.npz"], capsys)
    assert (
        err.splitlines()[-1]
        == "bgtrain check: error: argument --obs-dim: must be at least 1, got -3"
    )


# -------------------------------------------------- games that cannot be played (issue 17)

#: The ``bgtrain`` script itself: unlike ``python -m bgtrain``, it does not put the current
#: folder on the import path, so it shows whether ``--env module:factory`` is found there.
BGTRAIN_SCRIPT = Path(sys.executable).with_name("bgtrain.exe" if os.name == "nt" else "bgtrain")
#: A game of one's own that follows the advice bgtrain gives for FrozenLake-v1.
FLAT_FROZEN_LAKE = """\
import gymnasium
from gymnasium.wrappers import FlattenObservation


def factory():
    return FlattenObservation(gymnasium.make("FrozenLake-v1"))
"""


def script_env() -> dict[str, str]:
    """The user's environment without PYTHONPATH: only the current folder can help."""
    return {k: v for k, v in cli_env().items() if k != "PYTHONPATH"}


def test_a_game_with_discrete_observations_is_refused_with_the_wrapper_to_use(tmp_path):
    result = bgtrain_cli(
        "run", "--env", "FrozenLake-v1", "--games", "1", "--root", tmp_path / "root", cwd=tmp_path
    )
    assert result.returncode == 1
    assert result.stderr == (
        "error: FrozenLake-v1 has observation space Discrete(16); need a Box. To flatten it to "
        "one (one-hot), make a factory return gymnasium.wrappers.FlattenObservation("
        "gymnasium.make('FrozenLake-v1')) and pass --env module:factory\n"
    )


def test_a_gymnasium_id_of_an_old_version_says_which_to_use_without_raw_warnings(tmp_path):
    import gymnasium

    if "Taxi-v3" in gymnasium.registry or "Taxi-v4" not in gymnasium.registry:
        pytest.skip("this Gymnasium still has Taxi-v3")
    result = bgtrain_cli(
        "run", "--env", "Taxi-v3", "--games", "1", "--root", tmp_path / "root", cwd=tmp_path
    )
    assert result.returncode == 1
    # One line, no DeprecationWarning with its colour codes and source line before it.
    assert result.stderr == (
        f"error: Taxi-v3 is an old version that Gymnasium {gymnasium.__version__} no longer "
        "has: use --env Taxi-v4\n"
    )


@pytest.mark.skipif(not BGTRAIN_SCRIPT.is_file(), reason="the bgtrain script is not installed")
def test_a_module_in_the_current_folder_is_found_as_python_m_finds_it(tmp_path):
    """``--env mygames:factory`` run from the folder of mygames.py, as a user expects from
    ``python -m``; the factory is the one the FrozenLake-v1 refusal advises, and plays."""
    games = tmp_path / "games"
    games.mkdir()
    (games / "mygames.py").write_text(FLAT_FROZEN_LAKE)
    argv = ["run", "--env", "mygames:factory", "--games", "2", "--actors", "1"]
    result = subprocess.run(
        [str(BGTRAIN_SCRIPT), *argv, "--root", str(tmp_path / "root")],
        cwd=games,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Stopped:            2 games" in result.stdout


@pytest.mark.skipif(not BGTRAIN_SCRIPT.is_file(), reason="the bgtrain script is not installed")
def test_a_module_not_found_says_to_run_from_its_folder_or_set_pythonpath(tmp_path):
    result = subprocess.run(
        [str(BGTRAIN_SCRIPT), "run", "--env", "mygames:factory", "--games", "1"],
        cwd=tmp_path,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "error: cannot import 'mygames' for --env mygames:factory: no module 'mygames' in the "
        f"current folder ({tmp_path}) nor on the import path. Run bgtrain from the folder that "
        "holds mygames.py (or the package mygames/), or add that folder to PYTHONPATH\n"
    )
