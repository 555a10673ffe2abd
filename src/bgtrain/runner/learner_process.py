"""The learner in its own process beside the games (torch is imported in that process only).

:class:`LearnerProcess` starts it, waits for its start-up to succeed or fail (the learner
takes the root's lock and loads the model before it says it started), and stops it:
cleanly (its batch in hand is published or returned) or at once.

Given a console, the learner's lines (``[BG_LEARNER] Stopped``, its warnings...) and its
log records come back over a queue and are said there, in this process: another process
writing to the same terminal would write over the run's progress line, or glue onto it.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing as mp
import queue
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from bgtrain.errors import BgtrainError
from bgtrain.learn.settings import LearnerSettings

#: A clean stop waits this long for the learner to publish or return its batch.
LEARNER_STOP_TIMEOUT_S = 60.0
#: Then, or after a failed start, this long for a process told to go (terminated).
LEARNER_EXIT_TIMEOUT_S = 10.0
#: How often the start-up wait (and the line forwarder) looks whether the process died
#: without a word.
START_POLL_S = 0.5
#: The learner process's last message: nothing follows it.
END = "bgtrain-learner-end"


class StartStatus(NamedTuple):
    """What the learner process says once its start-up is over."""

    #: Why it could not start (the learner's own message); ``None``: it runs.
    error: str | None = None


def learner_process_main(
    root: Path,
    settings: LearnerSettings,
    stop: Any,
    messages: Any,
    forward: bool = False,
    log_level: int = logging.WARNING,
) -> None:
    """Start a learner, put its :class:`StartStatus` on ``messages``, run until ``stop``
    is set, then stop it (its batch in hand is published or returned). With ``forward``,
    its console lines and its log records (``log_level`` and up) go on ``messages`` too,
    in order, and :data:`END` last."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run handles Ctrl+C and sets ``stop``
    if forward:
        _log_to(messages, log_level)
    try:
        _run_learner(root, settings, stop, messages, messages.put if forward else print)
    finally:
        if forward:
            messages.put(END)


def _log_to(messages: Any, level: int) -> None:
    """This process's log records go on ``messages`` (formatted here: pickled plain)."""
    top = logging.getLogger()
    top.handlers[:] = [logging.handlers.QueueHandler(messages)]
    top.setLevel(level)


def _run_learner(
    root: Path, settings: LearnerSettings, stop: Any, status: Any, say: Callable[[str], None]
) -> None:
    from bgtrain.learn.learner import BackgroundLearner

    learner = BackgroundLearner(root, settings, console=say)
    try:
        learner.start()
    except BgtrainError as exc:
        status.put(StartStatus(str(exc)))
        return
    status.put(StartStatus())
    stop.wait()
    learner.stop()


class LearnerProcess:
    """One learner process (``spawn``: the same on Windows and Linux)."""

    def __init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self._stop = self._ctx.Event()
        self._messages: Any = self._ctx.Queue()
        self._proc: Any = None
        self._say: Callable[[str], None] | None = None
        self._forwarder: threading.Thread | None = None

    def start(
        self, root: Path, settings: LearnerSettings, say: Callable[[str], None] | None = None
    ) -> None:
        """Start the learner on ``root`` and return once it runs. ``say``: where its lines
        go (called from a thread of this process; its log records go to this process's
        logging); ``None``: the learner process prints them itself.

        Raises:
            BgtrainError: the learner's own message when it could not start (the root is
                locked by another learner, its model is unreadable...), or that the
                process died while starting.
        """
        self._say = say
        level = logging.getLogger().getEffectiveLevel()
        self._proc = self._ctx.Process(
            target=learner_process_main,
            args=(root, settings, self._stop, self._messages, say is not None, level),
            name="bgtrain-learner",
            daemon=True,
        )
        self._proc.start()
        started = self._wait_for_start()
        if started.error is not None:
            self._proc.join(LEARNER_EXIT_TIMEOUT_S)
            self._forward_all()
            raise BgtrainError(started.error)
        if say is not None:
            self._forwarder = threading.Thread(
                target=self._forward_all, name="bgtrain-learner-lines", daemon=True
            )
            self._forwarder.start()

    def _wait_for_start(self) -> StartStatus:
        """The learner's start status; its lines said before it are said on the way."""
        while True:
            message = self._next_message()
            if isinstance(message, StartStatus):
                return message
            if message is None and not self._proc.is_alive():
                self._forward_all()  # what it said before it died
                raise BgtrainError("the learner process died while starting")

    def _next_message(self) -> Any:
        """The next message said (a line or a log record), or ``None`` after a poll."""
        try:
            message = self._messages.get(timeout=START_POLL_S)
        except queue.Empty:
            return None
        if isinstance(message, str | logging.LogRecord) and message != END:
            self._deliver(message)
            return None
        return message

    def _forward_all(self) -> None:
        """Say the learner's lines as they come, until its last one (or it is gone)."""
        if self._say is None:
            return
        while True:
            message = self._next_message()
            if message == END or (message is None and not self._proc.is_alive()):
                return

    def _deliver(self, message: str | logging.LogRecord) -> None:
        if isinstance(message, logging.LogRecord):
            logging.getLogger(message.name).handle(message)
        elif self._say is not None:
            self._say(message)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def stop(self) -> None:
        """Ask the learner to stop and wait (terminated if it takes too long); its last
        lines are said before this returns."""
        if self._proc is None:
            return
        self._stop.set()
        self._proc.join(LEARNER_STOP_TIMEOUT_S)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(LEARNER_EXIT_TIMEOUT_S)
        if self._forwarder is not None:
            self._forwarder.join(LEARNER_EXIT_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL, no lock taken: safe from a signal handler that interrupted :meth:`stop`."""
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
