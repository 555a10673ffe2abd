"""What a run counts: every report of its games, into a :class:`RunSummary`, each also
written to ``logs/metrics.jsonl`` as its typed event (:mod:`bgtrain.store.events`)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bgtrain.game.evaluation import EvalResult
from bgtrain.runner.actor import GameProcessError, GameReport, Report, UnsavedGame
from bgtrain.runner.console import plural, refused_lines, unsaved_line
from bgtrain.store.events import (
    RECENT_GAMES,
    GameEvent,
    GameRefusedEvent,
    GameUnsavedEvent,
    append_event,
    now_iso,
)
from bgtrain.store.root import TrainingRoot

#: The run stops with an error after this many refused games in a row (a game that
#: returns NaN or values of the wrong size every time cannot be trained on).
MAX_REFUSED_IN_A_ROW = 10


def game_event(report: GameReport) -> GameEvent:
    """The ``game`` line of metrics.jsonl for a game a game loop reported saved."""
    return GameEvent(
        time=now_iso(),
        t=report.finished_at,
        actor=report.actor_id,
        return_=report.total_reward,
        length=report.length,
        outcome=report.outcome,
        policy_version=report.policy_version,
        terminated=report.terminated,
        machine=report.machine or None,
    )


@dataclass
class RunSummary:
    #: Games played: saved, refused or not written (each accounted for below).
    games: int = 0
    #: Game steps played (cut-short and refused games included).
    steps: int = 0
    #: Games refused (a GameStepError: NaN, infinite, too large or wrongly sized values),
    #: not saved; and the last reason.
    refused: int = 0
    last_refusal: str = ""
    #: Games the recorder could not write (disk full...); and the last reason.
    unsaved: int = 0
    last_unsaved: str = ""
    #: Why the run stopped in error (the CLI prints it as one ``error:`` line).
    error: str | None = None
    first_version: int | None = None
    last_version: int | None = None
    best_mean_return: float = -math.inf
    solved: bool = False
    solved_by: str | None = None
    elapsed_s: float = 0.0
    last_eval: EvalResult | None = None
    stop_reason: str = ""
    model_path: Path | None = None
    exit_code: int = 0

    def stop(self, reason: str, exit_code: int = 0) -> None:
        self.stop_reason = reason
        self.exit_code = exit_code


class RecentGames:
    """The returns of the last :data:`RECENT_GAMES` saved games, and the lowest mean of
    them so far (where "half-way to the threshold" starts from, whatever its sign)."""

    def __init__(self) -> None:
        self._returns: deque[float] = deque(maxlen=RECENT_GAMES)
        self.lowest_mean = math.inf

    def add(self, total_reward: float) -> None:
        self._returns.append(total_reward)
        self.lowest_mean = min(self.lowest_mean, self.mean)

    def __len__(self) -> int:
        return len(self._returns)

    @property
    def full(self) -> bool:
        return len(self._returns) == RECENT_GAMES

    @property
    def mean(self) -> float:
        """Mean return (NaN before the first game)."""
        return sum(self._returns) / len(self._returns) if self._returns else math.nan


class Accounts:
    """Counts what the game loops report into ``summary``: a game played (saved or
    refused), a game not written after all, or the error that stopped a game loop. Each
    is written to ``metrics.jsonl`` (an :class:`OSError` there stops the run, as any
    disk error does); refused and unsaved games are also said on ``console``."""

    def __init__(
        self, root: TrainingRoot, env: str, console: Callable[[str], None], summary: RunSummary
    ) -> None:
        self.root = root
        self.env = env
        self.console = console
        self.summary = summary
        self.recent = RecentGames()
        self._refused_in_a_row = 0

    def account(self, report: Report) -> bool:
        """Count ``report``; ``True`` when it was a saved game."""
        if isinstance(report, GameProcessError):
            if self.summary.error is None:
                self.summary.error = report.message
        elif isinstance(report, UnsavedGame):
            self._unsaved(report)
        elif report.refused:
            self._refused(report)
        else:
            self._saved(report)
            return True
        return False

    def check_refusals(self) -> None:
        """A run whose every game was refused (or not written) trained nothing: an error."""
        s = self.summary
        if s.error is None and s.games and s.refused + s.unsaved >= s.games:
            last = s.last_refusal or s.last_unsaved
            played = plural(s.games, "game")
            s.error = f"no game of {self.env} was saved ({played} played; last: {last})"
        if s.error is not None:
            s.stop(f"error: {s.error}", exit_code=1)

    def _refused(self, report: GameReport) -> None:
        s = self.summary
        s.games += 1
        s.steps += report.length
        s.refused += 1
        s.last_refusal = report.refused
        self._refused_in_a_row += 1
        for line in refused_lines(report, s.refused):
            self.console(line)
        append_event(
            self.root,
            GameRefusedEvent(
                t=report.finished_at,
                actor=report.actor_id,
                length=report.length,
                policy_version=report.policy_version,
                reason=report.refused,
            ),
        )
        if self._refused_in_a_row >= MAX_REFUSED_IN_A_ROW and s.error is None:
            s.error = (
                f"the last {self._refused_in_a_row} games of {self.env} were all "
                f"refused, none saved (last: {report.refused})"
            )

    def _unsaved(self, report: UnsavedGame) -> None:
        self.summary.unsaved += 1
        self.summary.last_unsaved = f"{report.name}: {report.reason}"
        self.console(unsaved_line(report))
        append_event(
            self.root,
            GameUnsavedEvent(actor=report.actor_id, name=report.name, reason=report.reason),
        )

    def _saved(self, report: GameReport) -> None:
        s = self.summary
        s.games += 1
        s.steps += report.length
        self._refused_in_a_row = 0
        self.recent.add(report.total_reward)
        if report.policy_version is not None and s.first_version is None:
            s.first_version = report.policy_version
        append_event(self.root, game_event(report))
        if self.recent.full:
            s.best_mean_return = max(s.best_mean_return, self.recent.mean)
