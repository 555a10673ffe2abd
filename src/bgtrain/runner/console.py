"""What a run says, in the seed system's words: the start lines, the ``[RUN]`` progress
line, the ``[BACKGROUND LEARNING] STATISTICS`` block, the ``[SUMMARY]`` block, and where
they go (:class:`RunConsole`). Library code does not print: the texts go to the console
callable the caller passes (the CLI passes ``print``)."""

from __future__ import annotations

import math
from collections.abc import Callable
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
#: A terminal's progress line is cut to this width (and padded: it overwrites the last).
PROGRESS_WIDTH = 100


class RunConsole:
    """Sends a run's texts to ``write``; with ``terminal`` (a stream on a terminal, e.g.
    the CLI's stdout when it is a tty), the progress line is rewritten in place there."""

    def __init__(self, write: Console, terminal: TextIO | None = None) -> None:
        self.write = write
        self.terminal = terminal
        self._last_progress = -math.inf

    def progress_due(self, now: float) -> bool:
        every = PROGRESS_TERMINAL_S if self.terminal is not None else PROGRESS_LINE_S
        return now - self._last_progress >= every

    def progress(self, line: str, now: float) -> None:
        self._last_progress = now
        if self.terminal is not None:
            self.terminal.write("\r" + line.ljust(PROGRESS_WIDTH)[:PROGRESS_WIDTH])
            self.terminal.flush()
        else:
            self.write(line)

    def block(self, text: str) -> None:
        """A block of lines, below the progress line on a terminal."""
        if self.terminal is not None:
            self.terminal.write("\n")
        self.write(text)


def learner_started_lines(root: TrainingRoot) -> list[str]:
    """The seed's three lines once the learner runs (``bgtrain run``, also ``--game sc2``)."""
    return [
        "[OK] Background parallel learner initialized and started",
        "[INFO] Experience replay training will run in background",
        f"[INFO] Monitoring directory: {root.buffer}",
    ]


def playing_line(config: RunConfig, actors: int, threshold: float | None) -> str:
    if config.until_solved and threshold is not None:
        until = f"stops when solved (mean return >= {threshold:g})"
    elif config.games is None and config.minutes is None:
        until = "runs until Ctrl+C"
    else:
        until = "runs until its budget is spent"
    spare = " and a spare one while the learner idles" if config.spare_actor else ""
    return f"[INFO] Playing {config.env} with {actors} game process(es){spare}; {until}"


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
        f"Games played:       {s.games} in {s.elapsed_s:.1f}s ({s.steps} steps)",
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
            f"(min {e.min:.0f}, max {e.max:.0f}) over {len(e.returns)} games"
        )
    lines += [
        f"Solved:             {'yes, ' + (s.solved_by or '') if s.solved else 'no'}",
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
