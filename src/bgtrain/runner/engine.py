"""The engine seam: where a run's learner and games run, and the run's one interrupt handler.

An :class:`Engine` starts the learner, starts games, hands back the games' reports, and
stops or kills all of it. ``bgtrain run`` (:class:`bgtrain.runner.session.Run`) and the
StarCraft II runner (:func:`bgtrain.integrations.sc2.game.run_sc2`, whose games burnysc2
plays in the main process) both go through it, and both stop through :func:`interrupts`.

:class:`LocalEngine` runs the learner and the games as processes on this machine. Another
engine (a cluster: Ray...; the tests' threads) implements the same seven methods: its
learner is a :class:`bgtrain.learn.learner.BackgroundLearner` on the root (one per root: it
holds the root's lock), and each of its games runs the same loop,
:func:`bgtrain.runner.actor.run_games`, wherever it likes, writing into the same training
root (a shared folder).

A **report** is what a game loop sends back (:data:`bgtrain.runner.actor.Report`): a
``GameReport`` after every game played (saved, or refused with its reason), an
``UnsavedGame`` when a game handed to the recorder could not be written after all, or a
``GameProcessError`` when a game loop cannot go on (the run stops with its message).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from bgtrain.learn.settings import LearnerSettings
from bgtrain.runner.actor import ActorConfig, Report
from bgtrain.runner.fleet import LocalFleet
from bgtrain.runner.learner_process import LearnerProcess
from bgtrain.store.fs import remove_writer_temps
from bgtrain.store.root import TrainingRoot

__all__ = [
    "INTERRUPTED_EXIT_CODE",
    "Engine",
    "EngineSettings",
    "Interrupts",
    "LocalEngine",
    "engine_for",
    "interrupts",
    "quit_at_once",
]

#: The exit code of a run stopped by Ctrl+C (128 + SIGINT, as a shell reports it).
INTERRUPTED_EXIT_CODE = 130
#: A clean stop waits this long for the games to save their game in progress.
GAMES_STOP_TIMEOUT_S = 30.0
#: What a run says when a second interrupt ends it at once.
SECOND_INTERRUPT_LINE = "\n[STOP] Second interrupt: stopping at once (files on disk stay whole)"


class Engine(Protocol):
    """Runs one training root's learner and games. Used from the main thread only."""

    def start_learner(
        self, root: Path, settings: LearnerSettings, console: Callable[[str], None] | None = None
    ) -> None:
        """Start the learner on ``root``; return once it runs (it holds the root's lock).
        ``console``: where the learner's lines go (called from any thread, until
        :meth:`stop` returns); ``None``: where the engine likes (LocalEngine: the learner
        process's stdout).

        Raises:
            BgtrainError: the learner's own message when it could not start (another
                learner holds the root, a model that cannot be read...).
        """
        ...

    def learner_alive(self) -> bool:
        """The learner started and still runs."""
        ...

    def start_games(self, configs: Sequence[ActorConfig], max_games: int | None) -> None:
        """Start one game loop (:func:`bgtrain.runner.actor.run_games`) per config;
        together they play at most ``max_games`` games (``None``: until stopped). Their
        reports come from :meth:`reports`."""
        ...

    def reports(self, timeout: float) -> list[Report]:
        """The reports that arrived since the last call, in the order each game loop sent
        them, waiting at most ``timeout`` seconds for the first (``[]``: none came)."""
        ...

    def games_alive(self) -> int:
        """How many game loops still run (0 once they have all ended, or none started)."""
        ...

    def stop(self) -> None:
        """A clean stop: the games first (a game in progress is saved as cut short; their
        last reports stay readable from :meth:`reports`), then the learner (its batch in
        hand is published or returned). Waits for each; harmless if nothing started."""
        ...

    def kill(self) -> None:
        """Stop everything at once (the second Ctrl+C): no waiting for a game or a batch.
        Files already written stay whole; a killed writer's temp file is removed. Called
        from a signal handler, maybe in the middle of :meth:`stop`: it takes no lock. The
        process exits next (:func:`quit_at_once`): what runs inside it ends with it."""
        ...


class LocalEngine:
    """The learner and the game processes on this machine (``spawn``: the same on
    Windows and Linux): :class:`LearnerProcess` and :class:`LocalFleet`."""

    def __init__(self) -> None:
        self._learner = LearnerProcess()
        self._fleet = LocalFleet()
        self._roots: set[Path] = set()

    def start_learner(
        self, root: Path, settings: LearnerSettings, console: Callable[[str], None] | None = None
    ) -> None:
        self._roots.add(Path(root))
        self._learner.start(root, settings, console)

    def learner_alive(self) -> bool:
        return self._learner.alive()

    def start_games(self, configs: Sequence[ActorConfig], max_games: int | None) -> None:
        self._roots.update(Path(c.root) for c in configs)
        self._fleet.start(configs, max_games)

    def reports(self, timeout: float) -> list[Report]:
        return self._fleet.reports(timeout)

    def games_alive(self) -> int:
        return self._fleet.alive()

    def stop(self) -> None:
        self._fleet.stop(timeout=GAMES_STOP_TIMEOUT_S)
        # A game terminated mid-write left its dot-temp: never an episode, and its writer
        # is gone for good, so it goes now rather than at the learner's age sweep.
        self._remove_temps_of(self._fleet.pids())
        self._learner.stop()

    def kill(self) -> None:
        self._fleet.kill()
        self._learner.kill()
        learner = [] if self._learner.pid is None else [self._learner.pid]
        with contextlib.suppress(OSError):
            self._remove_temps_of(self._fleet.pids() + learner)

    def _remove_temps_of(self, pids: list[int]) -> None:
        for root in self._roots:
            remove_writer_temps(TrainingRoot(root).buffer, lambda pid, _: pid in pids)


class EngineSettings(Protocol):
    """The settings that choose an engine: a :class:`~bgtrain.runner.settings.RunConfig`'s,
    or a StarCraft II run's."""

    engine: str
    address: str | None
    game_cpus: float
    game_resource: str | None


def engine_for(config: EngineSettings) -> Engine:
    """The engine ``config.engine`` names (``bgtrain run --engine``): local, or ray with
    the config's ``address``, ``game_cpus`` and ``game_resource``.

    Raises:
        BgtrainError: ray without Ray installed (one line saying what to install).
    """
    if config.engine != "ray":
        return LocalEngine()
    from bgtrain.runner.ray_engine import RayEngine

    return RayEngine(config.address, config.game_cpus, config.game_resource)


class Interrupts:
    """First Ctrl+C (or SIGTERM): a clean stop, counted in :attr:`count`; ``on_first`` is
    called (e.g. to say so, or wake a wait), and with ``raise_first`` a
    :class:`KeyboardInterrupt` is raised too, where the main thread is: for a loop that
    cannot look at the count, such as a game burnysc2 plays. Second: ``on_second`` (quit
    at once, see :func:`quit_at_once`). The previous handlers are put back on exit."""

    def __init__(
        self,
        on_second: Callable[[], None],
        *,
        on_first: Callable[[], None] | None = None,
        raise_first: bool = False,
    ) -> None:
        self.count = 0
        self._on_first = on_first
        self._on_second = on_second
        self.raise_first = raise_first
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        self.install()
        return self

    def install(self) -> None:
        """Handle SIGINT and SIGTERM here (again: burnysc2 resets SIGINT after each game)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.signal(sig, self._handle)
            self._previous.setdefault(sig, previous)

    def _handle(self, signum: int, frame: object) -> None:
        self.count += 1
        if self.count > 1:
            self._on_second()
            return
        if self._on_first is not None:
            self._on_first()
        if self.raise_first:
            raise KeyboardInterrupt

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def quit_at_once(
    console: Callable[[str], None], line: str, kill: Callable[[], None] | None = None
) -> None:
    """The second interrupt: say ``line``, ``kill`` what runs elsewhere (processes), and
    exit this process with :data:`INTERRUPTED_EXIT_CODE` without waiting for anything (no
    thread, no ``finally``)."""
    console(line)
    if kill is not None:
        kill()
    for stream in (sys.stdout, sys.stderr):  # os._exit does not flush
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(INTERRUPTED_EXIT_CODE)


def interrupts(
    engine: Engine, console: Callable[[str], None], *, raise_first: bool = False
) -> Interrupts:
    """The interrupt handler of a run on ``engine``: the first interrupt is the run's to
    stop cleanly (see :class:`Interrupts`); the second kills the engine's processes and
    exits the process with :data:`INTERRUPTED_EXIT_CODE` at once."""
    return Interrupts(
        functools.partial(quit_at_once, console, SECOND_INTERRUPT_LINE, engine.kill),
        raise_first=raise_first,
    )
