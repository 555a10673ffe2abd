"""What a run says, in the seed system's words: the start lines, the ``[RUN]`` progress
line, the ``[BACKGROUND LEARNING] STATISTICS`` block, the ``[SUMMARY]`` block, and where
they go (:class:`RunConsole`). Library code does not print: the texts go to the console
callable the caller passes (the CLI passes ``print``)."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

from bgtrain.common.console import RULE
from bgtrain.store.events import RECENT_GAMES
from bgtrain.store.root import TrainingRoot

if TYPE_CHECKING:
    from bgtrain.runner.accounting import RunSummary
    from bgtrain.runner.actor import GameReport, UnsavedGame
    from bgtrain.runner.settings import RunConfig
    from bgtrain.store.counters import LearnerCounters

#: Where a run's lines go: one call per line or block.
Console = Callable[[str], None]

#: The statistics block comes every this many saved games (``bgtrain run`` also waits
#: at least STATISTICS_MIN_INTERVAL_S between two).
STATISTICS_EVERY_GAMES = 5
STATISTICS_MIN_INTERVAL_S = 10.0
#: Refused games printed one line each; more are only counted (in the summary).
MAX_REFUSED_LINES = 10
#: The progress line is rewritten in place this often on a terminal, else written as a
#: line of its own this often.
PROGRESS_TERMINAL_S = 0.25
PROGRESS_LINE_S = 2.0
#: ANSI "erase to the end of the line" (every terminal of POSIX systems).
CLEAR_TO_END = "\x1b[K"


def plural(n: float, word: str, words: str | None = None) -> str:
    """``1 game``, ``2 games``, ``1.5 minutes``, ``1 game process``."""
    shown = f"{n:g}" if isinstance(n, float) else str(n)
    return f"{shown} {word if n == 1 else (words or word + 's')}"


def terminal_width(stream: TextIO) -> int:
    """The width of the terminal ``stream`` is on, measured now (a window may be resized)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return shutil.get_terminal_size().columns


def fit_width(line: str, width: int) -> str:
    """``line`` cut to ``width - 1`` columns: a line filling the last column wraps on some
    terminals, and a wrapped progress line can no longer be rewritten in place."""
    return line[: max(1, width - 1)]


def clear_to_end(width: int, used: int) -> str:
    """What erases the rest of a terminal line after ``used`` columns: ANSI's code, or on
    Windows, whose console may not read ANSI codes, spaces up to ``width - 1``."""
    return " " * max(0, width - 1 - used) if os.name == "nt" else CLEAR_TO_END


class RunConsole:
    """Sends a run's texts to ``write``; with ``terminal`` (a stream on a terminal, e.g.
    the CLI's stdout when it is a tty), the progress line is rewritten in place there,
    cut to the terminal's width, and any other line first clears it (else the line would
    start after the progress line's last character). Safe from any thread: the learner's
    lines arrive from a thread of their own."""

    def __init__(self, write: Console, terminal: TextIO | None = None) -> None:
        self.write = write
        self.terminal = terminal
        self._last_progress = -math.inf
        self._showing = False
        # Reentrant: a signal handler (the second Ctrl+C) may say its line while the
        # main thread is inside a write.
        self._lock = threading.RLock()

    def progress_due(self, now: float) -> bool:
        every = PROGRESS_TERMINAL_S if self.terminal is not None else PROGRESS_LINE_S
        return now - self._last_progress >= every

    def progress(self, line: str, now: float) -> None:
        with self._lock:
            self._last_progress = now
            if self.terminal is None:
                self.write(line)
                return
            width = terminal_width(self.terminal)
            fitted = fit_width(line, width)
            self.terminal.write("\r" + fitted + clear_to_end(width, len(fitted)))
            self.terminal.flush()
            self._showing = True

    def clear(self) -> None:
        """Take the progress line off the terminal (the next one is drawn anew)."""
        with self._lock:
            if self._showing and self.terminal is not None:
                blank = clear_to_end(terminal_width(self.terminal), 0)
                self.terminal.write("\r" + blank + ("\r" if os.name == "nt" else ""))
                self.terminal.flush()
            self._showing = False

    def line(self, text: str) -> None:
        """A line (or a block of lines) of its own, where the progress line was."""
        with self._lock:
            self.clear()
            self.write(text)

    block = line

    @contextlib.contextmanager
    def clearing_logs(self) -> Iterator[None]:
        """While it lasts, a log record (this process's, or one the learner process sent)
        clears the progress line before the root logger's handlers write it."""
        if self.terminal is None:
            yield
            return
        handlers = list(logging.getLogger().handlers)
        clear = _ClearFirst(self)
        for handler in handlers:
            handler.addFilter(clear)
        try:
            yield
        finally:
            for handler in handlers:
                handler.removeFilter(clear)


class _ClearFirst(logging.Filter):
    """A handler filter that lets every record through, after clearing the progress line."""

    def __init__(self, console: RunConsole) -> None:
        super().__init__()
        self.console = console

    def filter(self, record: logging.LogRecord) -> bool:
        self.console.clear()
        return True


def learner_started_lines(root: TrainingRoot) -> list[str]:
    """The seed's three lines once the learner runs (``bgtrain run``, also ``--game sc2``)."""
    return [
        "[OK] Background parallel learner initialized and started",
        "[INFO] Experience replay training will run in background",
        f"[INFO] Monitoring directory: {root.buffer}",
    ]


def solved_text(s: RunSummary) -> str:
    """The summary's answer to "solved?": only a greedy evaluation says yes or no."""
    if s.solved:
        return f"yes, {s.solved_by or ''}"
    return "no" if s.last_eval is not None else "not evaluated (no greedy evaluation ran)"


def playing_line(config: RunConfig, actors: int, threshold: float | None) -> str:
    budget = [
        f"after {plural(n, what)}"
        for n, what in ((config.games, "game"), (config.minutes, "minute"))
        if n is not None
    ]
    if config.until_solved and threshold is not None:
        until = f"stops when solved (mean return >= {threshold:g})" + "".join(
            f" or {b}" for b in budget
        )
    elif budget:
        until = "runs until its budget is spent (" + " or ".join(budget) + ")"
    else:
        until = "runs until Ctrl+C"
    spare = " and a spare one while the learner idles" if config.spare_actor else ""
    processes = plural(actors, "game process", "game processes")
    return f"[INFO] Playing {config.env} with {processes}{spare}; {until}"


def progress_line(games: int, version: int, recent: int, mean: float, elapsed: float) -> str:
    """``mean``: of the ``recent`` last games' returns (none yet: NaN)."""
    shown = "-" if math.isnan(mean) else f"{mean:.1f}"
    return (
        f"[RUN] games {games} | model v{version} | mean return (last {recent}) {shown} | "
        f"{games / elapsed:.1f} games/s | {elapsed:.0f}s"
    )


def statistics_block(
    counters: LearnerCounters, active: int, max_workers: int, version: int, waiting: int
) -> str:
    """The seed's statistics block (``active``: 1 while the learner runs, else 0)."""
    return "\n".join(
        [
            "",
            RULE,
            "[BACKGROUND LEARNING] STATISTICS",
            RULE,
            f"Experience Files Processed: {counters.files_processed}",
            f"Batch Training Runs: {counters.batches_trained}",
            f"Total Training Samples: {counters.total_samples}",
            f"Average Loss: {counters.avg_loss:.4f}",
            f"Total Processing Time: {counters.total_processing_time:.2f}s",
            f"Active Workers: {active}/{max_workers}",
            f"Errors: {counters.errors}",
            f"Model Version: {version}",
            f"Waiting In Buffer: {waiting}",
            RULE,
        ]
    )


def summary_block(s: RunSummary) -> str:
    best = f"{s.best_mean_return:.1f}" if math.isfinite(s.best_mean_return) else "n/a"
    lines = [
        "",
        RULE,
        "[SUMMARY]",
        RULE,
        f"Stopped:            {s.stop_reason}",
        f"Games played:       {s.games} in {s.elapsed_s:.1f}s ({plural(s.steps, 'step')})",
    ]
    if s.refused:
        lines.append(f"Games refused:      {s.refused}, not saved (last: {s.last_refusal})")
    if s.unsaved:
        lines.append(f"Games not written:  {s.unsaved} (last: {s.last_unsaved})")
    lines += [
        f"Model versions:     {s.first_version or 0} -> {s.last_version or 0}",
        f"Best mean return:   {best} (last {RECENT_GAMES} games)",
    ]
    if s.last_eval is not None:
        e = s.last_eval
        lines.append(
            f"Last evaluation:    v{e.version} greedy mean {e.mean:.1f} "
            f"(min {e.min:.0f}, max {e.max:.0f}) over {plural(len(e.returns), 'game')}"
        )
    lines += [
        f"Solved:             {solved_text(s)}",
        f"Model:              {s.model_path}",
        RULE,
    ]
    return "\n".join(lines)


def refused_lines(report: GameReport, refused_so_far: int) -> list[str]:
    """One line per refused game up to :data:`MAX_REFUSED_LINES`, then a note, then none."""
    if refused_so_far > MAX_REFUSED_LINES:
        return []
    lines = [f"[REFUSED] game of process {report.actor_id} not saved: {report.refused}"]
    if refused_so_far == MAX_REFUSED_LINES:
        lines.append("[REFUSED] (further refused games are only counted)")
    return lines


def unsaved_line(report: UnsavedGame) -> str:
    return f"[ERROR] game {report.name} could not be saved: {report.reason}"
