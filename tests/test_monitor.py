"""The monitor, as its users see it: the live dashboard in a real terminal, ``--once`` and
``--json`` agreeing with the files on disk, the learner's liveness, a refresh that stays
cheap with a huge archive, and the incremental read of ``logs/metrics.jsonl``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

import bgtrain.store.spool
from bgtrain import ModelStore, Spool, TrainingRoot
from bgtrain.monitor import snapshot
from bgtrain.monitor.dashboard import sparkline
from bgtrain.monitor.snapshot import METRICS_TAIL_BYTES, MetricsReader, Watcher
from bgtrain.store.counters import HEARTBEAT_STALE_S, read_counters

from .helpers import bgtrain_argv, bgtrain_cli, cli_env, wait_until, write_episode

REPO = Path(__file__).resolve().parent.parent
CLI_TIMEOUT_S = 60
BUFFER = "BUFFER (pending training)"
ARCHIVE = "ARCHIVE (processed)"
SECTIONS = (
    BUFFER,
    ARCHIVE,
    "MODEL STATUS",
    "LEARNING",
    "LEARNER",
    "TRAINING LOG",
)
FOOTER = "Press Ctrl+C to stop monitoring"
LIVE_ONLY = ("Refreshing every", FOOTER, "uptime")
#: The panels that answer "is it learning?", above the others at every size.
FIRST = ["LEARNING", "LEARNER"]
LOG_10 = "TRAINING LOG (last 10 lines)"
# rich sizes a frame to the terminal; outside one it reads COLUMNS.
ENV = cli_env(COLUMNS="80")


def monitor_json(root: Path, cwd: Path) -> dict:
    result = bgtrain_cli("monitor", "--root", root, "--json", cwd=cwd, env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def monitor_once(root: Path, cwd: Path) -> str:
    result = bgtrain_cli("monitor", "--root", root, "--once", cwd=cwd, env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    return result.stdout


def episodes(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.endswith(".npz") and not p.name.startswith(".")]


def archived(root: TrainingRoot) -> list[Path]:
    if not root.archive.is_dir():
        return []
    return [p for day in root.archive.iterdir() if day.is_dir() for p in episodes(day)]


def tree(path: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``path`` with its size and mtime (to prove nothing changed)."""
    return {
        str(p.relative_to(path)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
    }


def panel(screen: str, title: str) -> str:
    """The text of the panel titled ``title`` (from its top border to its bottom one), also
    when it stands beside another one."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        left = line.find(f"╭─ {title} ")
        if left >= 0:
            right = line.index("╮", left) + 1
            end = next(j for j in range(i + 1, len(lines)) if lines[j][left:].startswith("╰"))
            return "\n".join(row[left:right] for row in lines[i : end + 1])
    raise AssertionError(f"no panel {title!r} in:\n{screen}")


def files_shown(screen: str, title: str) -> int:
    match = re.search(r"Files: (\d+)", panel(screen, title))
    assert match, screen
    return int(match.group(1))


def panel_titles(screen: str) -> list[str]:
    """The panels' titles, top to bottom and left to right."""
    return re.findall(r"╭─ (.+?) ─", screen)


def assert_fits_80_columns(screen: str) -> None:
    long = [line for line in screen.splitlines() if len(line.rstrip()) > 80]
    assert not long, f"lines wider than 80 columns: {long}"


def assert_all_sections(screen: str, live: bool = True) -> None:
    for section in SECTIONS:
        assert section in screen, f"{section!r} missing from:\n{screen}"
    assert (FOOTER in screen) == live, screen


# --------------------------------------------------------------------------- live dashboard


class TmuxTerminal:
    """A real 80x60 terminal: a private tmux server (its own socket, no user config)."""

    def __init__(
        self, tmp_path: Path, command: list[str], cols: int = 80, rows: int = 60, hold=False
    ):
        """``hold``: the pane stays as the command left it (no "Pane is dead" line)."""
        self.socket = f"bgtrain-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        config = tmp_path / "tmux.conf"
        config.write_text("set -g remain-on-exit on\n", encoding="utf-8")  # keep the last screen
        self.exit_file = tmp_path / "monitor_exit"
        # The shell survives the Ctrl+C (its trap) to record the monitor's own exit code.
        # COLUMNS/LINES unset: the monitor must find the terminal's size by itself.
        script = (
            f"unset COLUMNS LINES; trap : INT; {shlex.join(command)}; "
            f"echo EXIT=$? > {shlex.quote(str(self.exit_file))}"
        ) + ("; exec cat" if hold else "")
        self._tmux("-f", str(config), "new-session", "-d", "-s", "monitor", "-x", str(cols),
                   "-y", str(rows), shlex.join(["sh", "-c", script]))  # fmt: skip
        size = self._tmux("display-message", "-p", "-t", "monitor", "#{pane_width}x#{pane_height}")
        assert size.strip() == f"{cols}x{rows}"

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, f"tmux {args}: {result.stderr}"
        return result.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "monitor")

    def everything(self) -> str:
        """The screen and its scrollback."""
        return self._tmux("capture-pane", "-p", "-S", "-", "-t", "monitor")

    def interrupt(self) -> None:
        self._tmux("send-keys", "-t", "monitor", "C-c")

    def exit_code(self) -> int | None:
        try:
            text = self.exit_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return int(text.removeprefix("EXIT=")) if text.startswith("EXIT=") else None

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")


class PtyTerminal:
    """Fallback without tmux: a pseudo-terminal of 80x60; the raw output is read and the
    latest complete frame is taken as the screen."""

    def __init__(self, tmp_path: Path, command: list[str], cols: int = 80, rows: int = 60):
        import fcntl
        import pty
        import struct
        import termios

        winsize = struct.pack("HHHH", rows, cols, 0, 0)
        # No COLUMNS/LINES: the monitor must find the terminal's size by itself.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        pid, fd = pty.fork()
        if pid == 0:  # the child: a session leader whose terminal is the pty
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, winsize)
                os.execvpe(command[0], command, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self._raw = bytearray()
        self._code: int | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # the child side closed
                return
            if not data:
                return
            self._raw += data

    def everything(self) -> str:
        text = ANSI.sub("", bytes(self._raw).decode("utf-8", errors="replace"))
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def screen(self) -> str:
        text = self.everything()
        frames = text.split("BACKGROUND TRAINING MONITOR")
        complete = [f for f in frames[1:] if FOOTER in f]
        return "BACKGROUND TRAINING MONITOR" + complete[-1] if complete else ""

    def interrupt(self) -> None:
        os.write(self.fd, b"\x03")  # what the terminal sends on Ctrl+C

    def exit_code(self) -> int | None:
        if self._code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                return None
            self._code = os.waitstatus_to_exitcode(status)
            self._reader.join(10)
        return self._code

    def close(self) -> None:
        if self.exit_code() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def open_terminal(tmp_path: Path, command: list[str], cols: int = 80, rows: int = 60):
    if shutil.which("tmux"):
        return TmuxTerminal(tmp_path, command, cols, rows)
    if sys.platform == "win32":
        pytest.skip("needs tmux or a POSIX pseudo-terminal")
    return PtyTerminal(tmp_path, command, cols, rows)


def wait_for_screen(term, predicate, what: str, timeout: float = 30.0) -> str:
    """Capture the screen again and again until ``predicate(screen)`` holds."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = term.screen()
        try:
            if FOOTER in screen and predicate(screen):
                return screen
        except AssertionError:  # captured half-way through a redraw: look again
            pass
        if term.exit_code() is not None:
            pytest.fail(f"the monitor exited before {what}:\n{term.everything()}")
        threading.Event().wait(0.02)
    pytest.fail(f"timed out after {timeout} s waiting for {what}; last screen:\n{screen}")


def land(staging: Path, buffer: Path, names: list[str]) -> None:
    """Write episodes aside, then rename them into the buffer together, as games do."""
    written = [write_episode(staging, name, steps=6, tag=1.0) for name in names]
    for path in written:
        os.rename(path, buffer / path.name)


def test_the_live_dashboard_refreshes_in_a_real_terminal_and_stops_on_ctrl_c(tmp_path):
    root = TrainingRoot(tmp_path / "root").ensure()
    staging = tmp_path / "staging"
    land(staging, root.buffer, [f"game_20260101_000000_00{i}_a0_Victory.npz" for i in range(2)])
    command = bgtrain_argv("monitor", "--root", root.path, "--refresh", "0.5")
    term = open_terminal(tmp_path, command)
    try:
        first = wait_for_screen(
            term, lambda s: "Files: " in s and "TRAINING LOG" in s, "the first frame"
        )
        assert_all_sections(first)
        assert "Refreshing every 0.5s" in first
        assert files_shown(first, BUFFER) == 2
        assert files_shown(first, ARCHIVE) == 0
        assert "new files detected" not in first
        assert_fits_80_columns(first)

        screens = [first]
        for batch, count in ((1, 3), (2, 2)):
            names = [f"game_20260101_00000{batch}_00{i}_a0_Defeat.npz" for i in range(count)]
            land(staging, root.buffer, names)
            on_disk = len(episodes(root.buffer))
            screen = wait_for_screen(
                term,
                lambda s, n=on_disk: files_shown(s, BUFFER) == n,
                f"the buffer count to reach {on_disk}",
            )
            # The refresh that first sees the files says how many arrived.
            news = re.search(r"\+(\d+) new files detected", panel(screen, BUFFER))
            assert news, screen
            assert 1 <= int(news.group(1)) <= count
            assert names[-1] in screen  # the newest file is listed first
            assert_all_sections(screen)
            assert_fits_80_columns(screen)
            screens.append(screen)
        assert [files_shown(s, BUFFER) for s in screens] == [2, 5, 7]

        term.interrupt()
        deadline = time.monotonic() + 30
        while (code := term.exit_code()) is None:
            if time.monotonic() >= deadline:
                pytest.fail(f"the monitor did not stop on Ctrl+C:\n{term.everything()}")
            threading.Event().wait(0.05)
        output = term.everything()
        assert code == 0, output
        assert "Monitoring stopped." in output
        assert "Traceback" not in output
    finally:
        term.close()


# --------------------------------------------------------------------------- terminal sizes

needs_tmux = pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux")
#: The LEARNING and LEARNER lines, each whole on one row (a figure cut or wrapped fails).
FIGURE_ROWS = {
    "version": r"Model version: (?P<version>\d+)   Games/min: (?P<rate>[\d.]+)   Samples/s: \d+",
    "return": r"Mean return \(last games\): (?P<mean>-?[\d.]+)   Win rate: (?P<win>\d+)%",
    "spark": r"Return by version v(?P<first>\d+)-v(?P<last>\d+) (?P<bars>[▁-█]+)  "
    r"(?P<scale>all -?[\d.]+|-?[\d.]+ to -?[\d.]+)",
    "lag": r"Policy lag: min \d+ / mean [\d.]+ / max \d+   Stale: \d+   Quarantined: \d+",
    "learner": r"Running: (?P<running>yes)   PID: (?P<pid>\d+)   State: (idle|training)   "
    r"Heartbeat: \d+s ago   Errors: (?P<errors>\d+)",
}


@pytest.fixture(scope="class")
def live_run(tmp_path_factory):
    """A real ``bgtrain run`` going on while a class's tests watch it (a 5-minute budget
    as a safety net; Ctrl+C ends it with the class, so that it does not slow the runs of
    the tests after it)."""
    where = tmp_path_factory.mktemp("live_run")
    root = TrainingRoot(where / "root")
    with open(where / "run.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            bgtrain_argv("run", "--root", root.path, "--actors", "1", "--seed", "1",
                         "--no-until-solved", "--no-spare-actor", "--minutes", "5"),
            cwd=where, env=cli_env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            yield root
        finally:
            os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def learning_figures(screen: str) -> dict[str, str]:
    """The LEARNING and LEARNER figures, each found on one whole row of its panel."""
    rows = panel(screen, "LEARNING") + "\n" + panel(screen, "LEARNER")
    found: dict[str, str] = {}
    for name, pattern in FIGURE_ROWS.items():
        match = re.search(rf"^│ {pattern} *│$", rows, flags=re.MULTILINE)
        assert match, f"no whole {name} row in:\n{screen}"
        found.update({k: v for k, v in match.groupdict().items() if v is not None})
    return found


def learned_something(screen: str) -> bool:
    """The run has published models, played for a while, and its learner is alive."""
    figures = learning_figures(screen)
    return int(figures["version"]) >= 1 and figures["running"] == "yes"


def assert_fills_the_terminal(screen: str, cols: int, rows: int) -> list[str]:
    """The frame is exactly the terminal: the header on the first row, the footer on the
    last (nothing cut at the bottom), and between them only whole panel rows, each ending
    on the last column with its right border (nothing wider, nothing wrapped)."""
    lines = screen.split("\n")[:rows]
    assert len(lines) == rows, screen
    assert lines[0].startswith("BACKGROUND TRAINING MONITOR"), screen
    assert lines[-1].startswith("Refreshing every 0.5s | Press Ctrl+C"), screen
    for line in lines[1:-1]:
        assert len(line) == cols and line[0] in "╭│╰" and line[-1] in "╮│╯", (
            f"not a whole panel row of {cols} columns: {line!r} in:\n{screen}"
        )
    return lines


def log_lines_shown(screen: str) -> int:
    match = re.search(r"TRAINING LOG \(last (\d+) lines?\)", screen)
    assert match, screen
    return int(match.group(1))


def watch(
    tmp_path: Path, root: TrainingRoot, cols: int, rows: int, min_log: int = 2
) -> tuple[str, dict]:
    """The live monitor in a real tmux terminal of ``cols`` x ``rows`` beside the run: the
    first screen with a published model, a live learner and ``min_log`` log lines shown
    (the log grows as the run goes on), and its figures."""
    command = bgtrain_argv("monitor", "--root", root.path, "--refresh", "0.5")
    term = TmuxTerminal(tmp_path, command, cols, rows)
    try:
        screen = wait_for_screen(
            term,
            lambda s: learned_something(s) and log_lines_shown(s) >= min_log,
            f"a model, a live learner and {min_log} log lines",
            120,
        )
    finally:
        term.close()
    return screen, learning_figures(screen)


def assert_figures_agree_with_the_run(figures: dict, root: TrainingRoot) -> None:
    latest = ModelStore(root.path).latest_version()
    assert latest is not None and 1 <= int(figures["version"]) <= latest
    assert int(figures["first"]) <= int(figures["last"]) <= int(figures["version"])
    assert 1 <= len(figures["bars"]) <= snapshot.SPARK_VERSIONS
    assert float(figures["rate"]) > 0  # games in the last minute, over at least 5 s
    heartbeat = json.loads((root.state / "heartbeat.json").read_text(encoding="utf-8"))
    assert int(figures["pid"]) == heartbeat["pid"]
    assert figures["errors"] == "0"


@needs_tmux
class TestBesideARealRun:
    """The live monitor at 80x24 and at 120x40, both watching one real run."""

    def test_at_80x24_beside_a_real_run_the_learning_figures_come_first_and_all_fits(
        self, live_run, tmp_path
    ):
        screen, figures = watch(tmp_path, live_run, 80, 24)

        assert_fills_the_terminal(screen, 80, 24)
        titles = panel_titles(screen)
        assert titles[:5] == [*FIRST, "MODEL STATUS", BUFFER, ARCHIVE], screen
        assert titles[5] == f"TRAINING LOG (last {log_lines_shown(screen)} lines)"
        assert_figures_agree_with_the_run(figures, live_run)
        # Compacted: the model on one row, BUFFER and ARCHIVE side by side with their counts.
        assert re.search(r"│ Version: \d+   Size: .+   updated \d+s ago +│", screen), screen
        assert re.search(r"│ Files: \d+ .*││ Files: \d+ ", screen), screen
        assert "Path:" not in screen

    def test_at_120x40_beside_a_real_run_the_full_layout_uses_the_full_height(
        self, live_run, tmp_path
    ):
        screen, figures = watch(tmp_path, live_run, 120, 40, min_log=11)

        lines = assert_fills_the_terminal(screen, 120, 40)
        titles = panel_titles(screen)
        assert titles[:5] == [*FIRST, "MODEL STATUS", BUFFER, ARCHIVE], screen
        assert_figures_agree_with_the_run(figures, live_run)
        assert "Modified: " in panel(screen, "MODEL STATUS")
        for title in (BUFFER, ARCHIVE):
            shown = panel(screen, title)
            listed = re.findall(r"^│ game_\d{8}_", shown, flags=re.MULTILINE)
            assert "Path: " in shown, screen
            assert len(listed) == min(files_shown(screen, title), snapshot.RECENT_FILES), screen
        # The log takes every row left down to the footer: more than --once's ten lines.
        assert titles[5] == f"TRAINING LOG (last {log_lines_shown(screen)} lines)"
        shown = panel(screen, titles[5]).splitlines()
        assert len(shown) == log_lines_shown(screen) + 2 and shown[-1] == lines[-2], screen


@needs_tmux
def test_once_in_an_80x24_terminal_fits_above_the_prompt_with_no_live_lines(short_run, tmp_path):
    command = bgtrain_argv("monitor", "--root", short_run.path, "--once")
    term = TmuxTerminal(tmp_path, command, 80, 24, hold=True)
    try:
        wait_until(lambda: term.exit_code() is not None, 60, "bgtrain monitor --once to end")
        screen = term.screen()
    finally:
        term.close()

    assert term.exit_code() == 0, screen
    lines = screen.split("\n")
    assert lines[0].startswith("BACKGROUND TRAINING MONITOR"), screen
    bottom = max(i for i, line in enumerate(lines) if line.startswith("╰"))
    assert bottom == 22, screen  # 23 rows of frame: the 24th is the prompt's
    assert panel_titles(screen)[:2] == FIRST and "TRAINING LOG (last " in screen, screen
    assert not [text for text in LIVE_ONLY if text in screen], screen


def test_once_prints_no_live_only_lines_and_json_is_unchanged(short_run, tmp_path):
    screen = monitor_once(short_run.path, tmp_path)
    figures = monitor_json(short_run.path, tmp_path)

    assert not [text for text in LIVE_ONLY if text in screen], screen
    assert screen.splitlines()[0].startswith("BACKGROUND TRAINING MONITOR   20")
    assert panel_titles(screen) == [*FIRST, "MODEL STATUS", BUFFER, ARCHIVE, LOG_10]
    assert set(figures) == {"root", "exists", "time", "monitor_started", "buffer", "archive",
                            "model", "learning", "learner", "log_tail"}  # fmt: skip
    assert len(figures["log_tail"]) == 10


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([500.0, 500.0, 500.0, 500.0], "████"),  # all at the top: full bars, not mid-height
        ([9.0], "█"),
        ([], ""),
        ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], "▁▂▃▄▅▆▇█"),
        ([10.0, 500.0, 255.0], "▁█▄"),
    ],
)
def test_the_sparkline_scale(values, expected):
    assert sparkline(values) == expected


def test_the_sparkline_on_a_given_scale_draws_equal_values_where_they_are():
    assert sparkline([250.0, 250.0], low=0.0, high=500.0) == "▄▄"
    assert sparkline([500.0, 500.0], low=0.0, high=500.0) == "██"
    assert sparkline([0.0, 0.0], low=0.0, high=500.0) == "▁▁"


def test_equal_returns_are_drawn_as_full_bars_with_their_value(tmp_path):
    root = TrainingRoot(tmp_path / "root").ensure()
    lines = [
        {"event": "game", "t": time.time(), "actor": 0, "return": 500.0, "length": 500,
         "outcome": "Victory", "policy_version": v, "terminated": False}
        for v in (3, 4, 5, 6)
    ]  # fmt: skip
    root.metrics.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")

    learning = panel(monitor_once(root.path, tmp_path), "LEARNING")

    assert re.search(r"│ Return by version v3-v6 ████  all 500\.0 +│", learning), learning


# --------------------------------------------------------------------------- --once / --json


def test_once_and_json_on_an_empty_root_show_every_section_with_zeros(tmp_path):
    root = TrainingRoot(tmp_path / "root").ensure()
    before = tree(root.path)

    screen = monitor_once(root.path, tmp_path)
    figures = monitor_json(root.path, tmp_path)

    assert_all_sections(screen, live=False)
    assert files_shown(screen, BUFFER) == 0
    assert files_shown(screen, ARCHIVE) == 0
    assert "Exists: no" in panel(screen, "MODEL STATUS")
    assert "Running: no" in panel(screen, "LEARNER")
    assert "(no training log yet)" in screen
    assert_fits_80_columns(screen)
    assert figures["exists"] is True
    assert figures["root"] == str(root.path)
    assert (figures["buffer"]["count"], figures["buffer"]["total_bytes"]) == (0, 0)
    assert (figures["archive"]["count"], figures["archive"]["total_bytes"]) == (0, 0)
    assert figures["model"]["exists"] is False
    assert figures["model"]["version"] is None
    learning = figures["learning"]
    assert (learning["model_version"], learning["games_seen"]) == (None, 0)
    assert (learning["stale"], learning["quarantined"]) == (0, 0)
    assert learning["latest_quarantine_reason"] is None
    assert figures["learner"]["running"] is False
    assert figures["learner"]["pid"] is None
    assert figures["log_tail"] == []
    assert tree(root.path) == before  # the monitor only reads


def test_once_on_a_missing_root_says_so_in_one_line_and_creates_nothing(tmp_path):
    missing = tmp_path / "nowhere"

    once = bgtrain_cli("monitor", "--root", missing, "--once", cwd=tmp_path, env=ENV)
    as_json = bgtrain_cli("monitor", "--root", missing, "--json", cwd=tmp_path, env=ENV)

    assert once.returncode == 0
    assert once.stdout == (
        f"No training root at {missing} yet: start one with 'bgtrain run' (or pass --root DIR).\n"
    )
    assert once.stderr == ""
    assert as_json.returncode == 0, as_json.stderr
    assert as_json.stderr == ""
    figures = json.loads(as_json.stdout)
    assert figures["exists"] is False
    assert figures["root"] == str(missing)
    assert figures["buffer"] is None and figures["learner"] is None
    assert not missing.exists()


def test_json_agrees_with_the_files_of_a_short_run(short_run, tmp_path):
    root = short_run
    before = tree(root.path)

    figures = monitor_json(root.path, tmp_path)

    buffer = episodes(root.buffer)
    assert figures["buffer"]["count"] == len(buffer) > 0
    assert figures["buffer"]["total_bytes"] == sum(p.stat().st_size for p in buffer)
    newest = sorted(buffer, key=lambda p: p.stat().st_mtime)[-1]
    assert figures["buffer"]["recent"][0]["name"] == newest.name
    in_archive = archived(root)
    assert figures["archive"]["count"] == len(in_archive) > 0
    assert figures["archive"]["total_bytes"] == sum(p.stat().st_size for p in in_archive)
    assert {f["name"] for f in figures["archive"]["recent"]} <= {p.name for p in in_archive}
    version = ModelStore(root.path).latest_version()
    assert version is not None and version >= 1
    assert figures["model"]["exists"] is True
    assert figures["model"]["version"] == version
    assert figures["model"]["size"] == root.model_file.stat().st_size
    learning = figures["learning"]
    assert learning["model_version"] == version
    assert learning["stale"] == len(episodes(root.stale))
    assert learning["quarantined"] == len(episodes(root.quarantine))
    events = [json.loads(line) for line in root.metrics.read_text("utf-8").splitlines()]
    games = [e for e in events if e.get("event") == "game"]
    assert learning["games_seen"] == min(len(games), 2000) == 30
    returns = [g["return"] for g in games[-20:]]
    assert learning["mean_return"] == pytest.approx(sum(returns) / len(returns))
    assert figures["learner"]["batches"] == read_counters(root.path).batches_trained >= 1
    assert figures["learner"]["running"] is False  # the run is over
    log = [line for line in root.training_log.read_text("utf-8").splitlines() if line.strip()]
    assert figures["log_tail"] == log[-10:]
    assert tree(root.path) == before  # the monitor only reads


def test_once_after_a_short_run_shows_the_counts_on_disk_in_80_columns(short_run, tmp_path):
    root = short_run

    screen = monitor_once(root.path, tmp_path)

    assert_all_sections(screen, live=False)
    assert files_shown(screen, BUFFER) == len(episodes(root.buffer))
    assert files_shown(screen, ARCHIVE) == len(archived(root))
    version = ModelStore(root.path).latest_version()
    assert f"Version: {version}" in panel(screen, "MODEL STATUS")
    assert f"Model version: {version}" in panel(screen, "LEARNING")
    assert "Total Batches:" in panel(screen, "TRAINING LOG (last 10 lines)")
    assert_fits_80_columns(screen)


def test_stale_and_quarantined_files_are_counted_with_the_latest_reason(tmp_path):
    root = TrainingRoot(tmp_path / "root").ensure()
    spool = Spool(root.path)
    bad = root.buffer / "game_20260101_000000_000_a0_Victory.npz"
    bad.write_bytes(b"not an npz file")
    old = write_episode(root.buffer, "game_20260101_000000_001_a0_Defeat.npz")
    spool.quarantine(bad, "some reason")
    spool.mark_stale(old, "too old")

    figures = monitor_json(root.path, tmp_path)
    screen = monitor_once(root.path, tmp_path)

    assert figures["learning"]["quarantined"] == len(episodes(root.quarantine)) == 1
    assert figures["learning"]["stale"] == len(episodes(root.stale)) == 1
    assert figures["learning"]["latest_quarantine_reason"] == "some reason"
    assert figures["buffer"]["count"] == 0
    learning = panel(screen, "LEARNING")
    assert "Quarantined: 1" in learning
    assert "Stale: 1" in learning
    assert "Latest quarantine: some reason" in learning


def test_the_latest_quarantine_reason_is_the_last_file_quarantined(tmp_path):
    root = TrainingRoot(tmp_path / "root").ensure()
    spool = Spool(root.path)
    recent = root.buffer / "game_20260102_000000_000_a0_Victory.npz"
    recent.write_bytes(b"garbage")
    copied = root.buffer / "game_20250101_000000_000_a0_Victory.npz"
    copied.write_bytes(b"garbage")
    a_year_ago = time.time() - 365 * 86400
    os.utime(copied, (a_year_ago, a_year_ago))  # e.g. copied in with its times kept
    spool.quarantine(recent, "first reason")
    spool.quarantine(copied, "second reason")

    figures = monitor_json(root.path, tmp_path)

    assert figures["learning"]["quarantined"] == 2
    assert figures["learning"]["latest_quarantine_reason"] == "second reason"


def test_a_damaged_model_file_is_shown_not_a_crash(tmp_path):
    root = TrainingRoot(tmp_path / "root").ensure()
    root.model_file.write_bytes(b"not a model")

    result = bgtrain_cli("monitor", "--root", root.path, "--json", cwd=tmp_path, env=ENV)

    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["model"]["exists"] is True
    assert figures["model"]["version"] is None


# --------------------------------------------------------------------------- LEARNER


def test_json_shows_a_running_learner_with_its_pid_and_not_after_it_stops(tmp_path):
    from bgtrain.learn.learner import BackgroundLearner

    root = TrainingRoot(tmp_path / "root").ensure()
    learner = BackgroundLearner(root.path, verbose=False)
    learner.start()
    try:
        heartbeat = root.state / "heartbeat.json"
        wait_until(heartbeat.exists, what="the learner's first heartbeat")
        running = monitor_json(root.path, tmp_path)["learner"]
    finally:
        learner.stop()
    stopped = monitor_json(root.path, tmp_path)["learner"]

    assert running["running"] is True, running
    assert running["pid"] == os.getpid()
    assert running["state"] in ("idle", "training")
    assert running["heartbeat_age_s"] < HEARTBEAT_STALE_S
    assert stopped["running"] is False, stopped
    assert stopped["state"] == "stopped"
    assert stopped["pid"] == os.getpid()


def test_a_heartbeat_older_than_the_stale_limit_reads_as_not_running(tmp_path):
    root = TrainingRoot(tmp_path / "root").ensure()
    heartbeat = root.state / "heartbeat.json"

    def beat(age: float) -> None:
        record = {"pid": 4242, "time": time.time() - age, "state": "idle", "errors": 0}
        heartbeat.write_text(json.dumps(record), encoding="utf-8")

    beat(0.0)
    fresh = Watcher(root.path).take().learner
    beat(HEARTBEAT_STALE_S + 30)
    old = monitor_json(root.path, tmp_path)["learner"]
    screen = monitor_once(root.path, tmp_path)

    assert fresh is not None and fresh.running is True  # the same file, but recent
    assert old["running"] is False
    assert old["pid"] == 4242
    assert old["heartbeat_age_s"] >= HEARTBEAT_STALE_S + 30
    assert "Running: no" in panel(screen, "LEARNER")


# --------------------------------------------------------------------------- scale


def archive_of(root: TrainingRoot, n_files: int, real_episode: Path) -> Path:
    """``n_files`` empty episodes in one day folder, then one real file archived by the
    spool (which records the day's count in the archive index, as the learner does)."""
    day = root.archive / "2026-01-01"
    day.mkdir(parents=True)
    # Hard links to a few empty files: a directory entry each, made far faster than files.
    blanks = []
    for i in range(n_files):
        if i % 50_000 == 0:
            blanks.append(root.path / f"blank{len(blanks)}.npz")
            blanks[-1].touch()
        os.link(blanks[-1], day / f"game_20260101_000000_{i:06d}_a0_Victory.npz")
    Spool(root.path).archive([real_episode], day="2026-01-01")
    return day


def test_a_refresh_never_rescans_a_big_archive(tmp_path, monkeypatch):
    small = TrainingRoot(tmp_path / "small").ensure()
    big = TrainingRoot(tmp_path / "big").ensure()
    real_small = write_episode(small.buffer, "game_20260101_120000_000_a0_Victory.npz")
    real_big = write_episode(big.buffer, "game_20260101_120000_000_a0_Victory.npz")
    size = real_big.stat().st_size
    archive_of(small, 100, real_small)
    big_day = archive_of(big, 100_000, real_big)
    try:
        watchers = {"small": Watcher(small.path), "big": Watcher(big.path)}
        for watcher in watchers.values():
            watcher.take()  # the first refresh
        scanned: list[Path] = []
        scandir = os.scandir

        def recording_scandir(path=".", *args, **kwargs):
            scanned.append(Path(os.fsdecode(path)))
            return scandir(path, *args, **kwargs)

        monkeypatch.setattr(bgtrain.store.spool.os, "scandir", recording_scandir)
        seconds: dict[str, list[float]] = {"small": [], "big": []}
        shots = {}
        for _ in range(5):  # interleaved, so a load change hits both sides alike
            for name, watcher in watchers.items():
                start = time.perf_counter()
                shots[name] = watcher.take()
                seconds[name].append(time.perf_counter() - start)
        monkeypatch.undo()

        assert shots["big"].archive.count == 100_001
        assert shots["big"].archive.total_bytes == size
        assert shots["small"].archive.count == 101
        assert big.archive in scanned  # the recorder saw the refreshes' listings
        assert big_day not in scanned, "a refresh listed the 100,000-file day folder"
        small_s, big_s = statistics.median(seconds["small"]), statistics.median(seconds["big"])
        assert big_s < 3 * small_s, f"refresh {big_s * 1e3:.1f} ms vs {small_s * 1e3:.1f} ms"
    finally:
        shutil.rmtree(big_day, ignore_errors=True)  # spare later runs deleting 100,000 files


# --------------------------------------------------------------------------- metrics


def game_line(actor: str | int, value: float = 1.0) -> str:
    return json.dumps({"event": "game", "t": time.time(), "actor": actor, "return": value}) + "\n"


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


@pytest.fixture
def bytes_read(monkeypatch) -> list[int]:
    """How many bytes each read of the metrics reader returned."""
    sizes: list[int] = []

    class Counting:
        def __init__(self, f):
            self._f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

        def seek(self, *args):
            return self._f.seek(*args)

        def read(self, *args):
            data = self._f.read(*args)
            sizes.append(len(data))
            return data

    monkeypatch.setattr(snapshot, "open", lambda *a, **k: Counting(open(*a, **k)), raising=False)  # noqa: SIM115
    return sizes


def test_the_metrics_reader_reads_only_the_new_bytes(tmp_path, bytes_read):
    path = tmp_path / "metrics.jsonl"
    reader = MetricsReader(path)
    reader.poll()  # no file yet: nothing, no error
    assert list(reader.games) == []

    append(path, game_line(0) + game_line(1) + json.dumps({"event": "batch", "version": 1}) + "\n")
    reader.poll()
    reader.poll()  # nothing new: nothing read again
    append(path, game_line(2))
    reader.poll()

    assert [g.actor for g in reader.games] == [0, 1, 2]
    assert [b.version for b in reader.batches] == [1]
    assert sum(bytes_read) == path.stat().st_size  # every byte read once


def test_the_metrics_reader_waits_for_a_partial_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(game_line("first"), encoding="utf-8")
    reader = MetricsReader(path)
    reader.poll()
    line = game_line("second")

    append(path, line[:20])  # a writer half-way through its line
    reader.poll()
    seen_before = [g.actor for g in reader.games]
    append(path, line[20:])
    reader.poll()

    assert seen_before == ["first"]
    assert [g.actor for g in reader.games] == ["first", "second"]


def test_a_long_metrics_file_is_read_from_its_tail_only(tmp_path, bytes_read):
    path = tmp_path / "metrics.jsonl"
    filler = json.dumps({"event": "note", "pad": "x" * 1000}) + "\n"
    early = "".join(game_line(f"early{i}") for i in range(10))
    late = "".join(game_line(f"late{i}") for i in range(10))
    n_filler = METRICS_TAIL_BYTES // len(filler) + 10
    path.write_text(early + filler * n_filler + late, encoding="utf-8")
    assert path.stat().st_size > METRICS_TAIL_BYTES + len(early)
    reader = MetricsReader(path)

    reader.poll()
    after = game_line("after")
    append(path, after)
    reader.poll()

    assert [g.actor for g in reader.games] == [*(f"late{i}" for i in range(10)), "after"]
    assert sum(bytes_read) == METRICS_TAIL_BYTES + len(after)


def test_a_replaced_metrics_file_is_read_from_its_start(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(game_line("old0") + game_line("old1") + game_line("old2"), encoding="utf-8")
    reader = MetricsReader(path)
    reader.poll()
    fresh = tmp_path / "metrics.new"
    fresh.write_text(game_line("new"), encoding="utf-8")

    os.replace(fresh, path)  # a new run's file (shorter than what was read)
    reader.poll()

    assert [g.actor for g in reader.games] == ["old0", "old1", "old2", "new"]


# --------------------------------------------------------------------------- seed script


def test_the_seed_monitor_script_prints_the_same_frame_from_the_repository_root(short_run):
    root = short_run
    seed = subprocess.run(
        [sys.executable, "tools/monitor_background_training.py", "--root", str(root.path),
         "--once"],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=CLI_TIMEOUT_S,
    )  # fmt: skip
    ours = monitor_once(root.path, REPO)

    assert seed.returncode == 0, seed.stdout + seed.stderr
    assert seed.stderr == ""
    assert_all_sections(seed.stdout, live=False)
    assert panel_titles(seed.stdout) == panel_titles(ours)
    assert panel_titles(ours) == [*FIRST, "MODEL STATUS", BUFFER, ARCHIVE, LOG_10]
    for title in (BUFFER, ARCHIVE):
        assert files_shown(seed.stdout, title) == files_shown(ours, title)
    assert seed.stdout.splitlines()[0].startswith("BACKGROUND TRAINING MONITOR")
    assert seed.stdout.rstrip().splitlines()[-1] == ours.rstrip().splitlines()[-1]
