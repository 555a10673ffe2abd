"""What a person sees of ``bgtrain run`` (issue 17): on a real terminal (tmux, 80 and 120
columns) the ``[RUN]`` progress line fits the width and updates in place, and every other
line (the learner's ``[BG_LEARNER] Stopped`` included, though another process says it)
starts on a line of its own; on a pipe there is no in-place line; no STATISTICS block of
zeros; ``--no-verbose`` turns the blocks off; singular and plural in the summary."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgtrain.game.evaluation import EvalResult
from bgtrain.runner.accounting import RunSummary
from bgtrain.runner.console import CLEAR_TO_END, RunConsole, playing_line, plural, summary_block
from bgtrain.runner.settings import RunConfig

from .helpers import bgtrain_argv, bgtrain_cli, cli_env

REPO = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 180
#: A run whose learner takes each game before the next is played (one game process, one
#: game waiting at most): from its 3rd game on, the learner has trained on some, so the
#: STATISTICS block at game 5 has figures to show, whatever the machine's speed.
PACED = ("--actors", "1", "--no-spare-actor", "--max-waiting", "1", "--no-until-solved")
needs_tmux = pytest.mark.skipif(
    sys.platform == "win32" or shutil.which("tmux") is None, reason="needs tmux (POSIX)"
)


# --------------------------------------------------------------------------- a real terminal


class Pane:
    """A command in a tmux pane of ``width`` x ``height`` on a tmux server of its own;
    the command's exit code lands in a file once it ends."""

    def __init__(self, tmp_path: Path, width: int, height: int, argv: list[str]) -> None:
        self.width = width
        self.socket = f"bgtrain-test-{uuid.uuid4().hex[:12]}"
        self.exit_file = tmp_path / "exit_code"
        done = shlex.quote(str(self.exit_file))
        command = f"{shlex.join(argv)}; echo $? > {done}.part && mv {done}.part {done}; sleep 600"
        self._tmux(
            "new-session", "-d", "-s", "run", "-x", str(width), "-y", str(height),
            "-c", str(REPO), command,
        )  # fmt: skip

    def _tmux(self, *args: str) -> str:
        argv = ["tmux", "-L", self.socket, "-f", os.devnull, *args]
        done = subprocess.run(argv, capture_output=True, text=True, env=cli_env(), timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> list[str]:
        """The visible rows, a line the terminal wrapped joined back into one."""
        return self._tmux("capture-pane", "-p", "-J", "-t", "run").splitlines()

    def history(self) -> list[str]:
        """Every line since the start (scrollback too), wrapped lines joined."""
        return [r.rstrip() for r in self._tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "run")
                .splitlines()]  # fmt: skip

    def exit_code(self) -> int | None:
        return int(self.exit_file.read_text()) if self.exit_file.exists() else None

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, AssertionError):
            self._tmux("kill-server")


@pytest.fixture
def pane(tmp_path: Path) -> Iterator:
    panes: list[Pane] = []

    def _open(width: int, height: int, *args: str | Path) -> Pane:
        panes.append(Pane(tmp_path, width, height, bgtrain_argv(*args)))
        return panes[-1]

    yield _open
    for p in panes:
        p.close()


def watch(p: Pane) -> list[list[str]]:
    """The screens seen until the command ends (a hang fails the test)."""
    frames = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while p.exit_code() is None:
        if time.monotonic() >= deadline:
            pytest.fail("the run did not end in time:\n" + "\n".join(p.history()))
        frames.append(p.screen())
        time.sleep(0.05)  # a pace of capture, not a wait for a result
    return frames


def check_progress_frame(frame: list[str], width: int) -> bool:
    """At most one ``[RUN]`` line on screen, not wrapped, on the cursor's (last) line;
    ``True`` when the frame shows one."""
    shown = [row for row in frame if "[RUN]" in row]
    assert len(shown) <= 1, "\n".join(frame)
    if not shown:
        return False
    assert len(shown[0].rstrip()) < width, f"wrapped at {width} columns: {shown[0]!r}"
    assert shown[0] == [row for row in frame if row.strip()][-1], "\n".join(frame)
    assert shown[0].startswith("[RUN] games "), "\n".join(frame)
    return True


@needs_tmux
@pytest.mark.parametrize("width", [80, 120])
def test_on_a_terminal_the_progress_line_fits_and_other_lines_start_on_their_own(
    tmp_path, pane, width
):
    p = pane(
        width, 24, "run", "--root", tmp_path / "root", *PACED, "--minutes", "0.15",
        "--seed", "1", "--n-epochs", "1",
    )  # fmt: skip

    frames = watch(p)
    history = p.history()
    text = "\n".join(history)
    assert p.exit_code() == 0, text
    assert sum(check_progress_frame(frame, width) for frame in frames) > 0, "no [RUN] line seen"
    assert sum("[RUN]" in line for line in history) <= 1, text  # updated in place
    assert "[BG_LEARNER] Stopped" in history, text  # a line of its own, not glued
    assert "[BG_LEARNER] Started (Monitoring " in text
    assert "Experience Files Processed: 0" not in history, text  # no block of zeros
    assert "[BACKGROUND LEARNING] STATISTICS" in history, text  # at game 5, with figures
    assert "Stopped:            0.15 minutes" in history, text
    assert "[INFO] Playing CartPole-v1 with 1 game process; runs until its budget" in text
    assert history.index("[BG_LEARNER] Stopped") < history.index("[SUMMARY]")


# --------------------------------------------------------------------------- a pipe


def test_on_a_pipe_progress_lines_are_whole_lines_and_no_verbose_drops_the_blocks(tmp_path):
    """``--no-verbose``: the start lines, progress lines and the summary; no STATISTICS."""
    quiet = bgtrain_cli(
        "run", "--root", tmp_path / "quiet", *PACED, "--games", "10", "--no-verbose",
        cwd=tmp_path, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert quiet.returncode == 0, quiet.stderr
    assert "\r" not in quiet.stdout and CLEAR_TO_END not in quiet.stdout
    lines = quiet.stdout.splitlines()
    assert any(re.match(r"^\[RUN\] games \d+ \| model v\d+ \|", line) for line in lines)
    assert "[BACKGROUND LEARNING] STATISTICS" not in lines, quiet.stdout
    assert "[SUMMARY]" in lines and "Stopped:            10 games" in lines
    assert "[BG_LEARNER] Stopped" in lines


def test_by_default_a_statistics_block_shows_what_the_learner_did(tmp_path):
    run = bgtrain_cli(
        "run", "--root", tmp_path / "root", *PACED, "--games", "5", "--n-epochs", "1",
        cwd=tmp_path, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "[BACKGROUND LEARNING] STATISTICS" in lines, run.stdout
    processed = [
        int(x) for x in re.findall(r"^Experience Files Processed: (\d+)$", run.stdout, re.M)
    ]
    assert processed and min(processed) >= 1, run.stdout
    assert "Stopped:            5 games" in lines


# --------------------------------------------------------------------------- the texts


def open_pty(columns: int) -> tuple[int, int]:
    """A real pseudo-terminal of ``columns`` columns: (master, slave)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    return master, slave


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX pseudo-terminal")
def test_the_progress_line_is_cut_to_the_terminal_and_other_lines_clear_it_first():
    master, slave = open_pty(40)
    try:
        with open(slave, "w", encoding="utf-8", closefd=False) as terminal:
            out = RunConsole(lambda text: print(text, file=terminal, flush=True), terminal)
            line = "[RUN] games 12345 | model v2345 | mean return (last 20) -123.4 | 1.0 games/s"
            out.progress(line, 0.0)
            out.line("[BG_LEARNER] Stopped")
        written = os.read(master, 4096).decode()
    finally:
        os.close(master)
        os.close(slave)
    # The pty turns "\n" into "\r\n" on the way out, as a terminal does.
    assert written == (
        "\r" + line[:39] + CLEAR_TO_END + "\r" + CLEAR_TO_END + "[BG_LEARNER] Stopped\r\n"
    )


def test_counts_of_one_are_singular_in_the_summary_and_the_start_lines(tmp_path):
    summary = RunSummary(
        games=1,
        steps=1,
        stop_reason=plural(1.0, "minute"),
        last_eval=EvalResult(version=3, greedy=True, returns=[9.0], outcomes=["Defeat"]),
        model_path=tmp_path / "model.npz",
    )
    block = summary_block(summary).splitlines()
    assert "Stopped:            1 minute" in block
    assert any(line.startswith("Games played:       1 in ") and line.endswith("(1 step)")
               for line in block), block  # fmt: skip
    assert "Last evaluation:    v3 greedy mean 9.0 (min 9, max 9) over 1 game" in block
    config = RunConfig(root=tmp_path, spare_actor=False, games=1)
    assert playing_line(config, 1, None).startswith(
        "[INFO] Playing CartPole-v1 with 1 game process;"
    )
    assert " 3 game processes " in playing_line(RunConfig(root=tmp_path), 3, None)
    assert [plural(2, "step"), plural(0.5, "minute"), plural(1, "game")] == [
        "2 steps", "0.5 minutes", "1 game",
    ]  # fmt: skip


# --------------------------------------------------------------------------- texts


def test_the_start_line_names_the_budget_beside_the_threshold():
    from bgtrain.runner.console import playing_line
    from bgtrain.runner.settings import RunConfig

    solved_or_budget = RunConfig(games=60, spare_actor=False)
    budget_only = RunConfig(games=1, minutes=0.5, until_solved=False, spare_actor=False)

    assert playing_line(solved_or_budget, 1, 475.0) == (
        "[INFO] Playing CartPole-v1 with 1 game process; stops when solved "
        "(mean return >= 475) or after 60 games"
    )
    assert playing_line(budget_only, 2, 475.0) == (
        "[INFO] Playing CartPole-v1 with 2 game processes; runs until its budget is spent "
        "(after 1 game or after 0.5 minutes)"
    )
    assert playing_line(RunConfig(until_solved=False, spare_actor=False), 1, None).endswith(
        "; runs until Ctrl+C"
    )


def test_the_summary_says_not_evaluated_when_no_greedy_evaluation_ran():
    from bgtrain.game.evaluation import EvalResult
    from bgtrain.runner.accounting import RunSummary
    from bgtrain.runner.console import solved_text

    evaluated = RunSummary(last_eval=EvalResult(3, True, [20.0], ["Defeat"]))

    assert solved_text(RunSummary()) == "not evaluated (no greedy evaluation ran)"
    assert solved_text(evaluated) == "no"
    assert solved_text(RunSummary(solved=True, solved_by="model v3")) == "yes, model v3"
