"""The learner in its own process beside the game processes (torch is imported here only)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from bgtrain.errors import BgtrainError
from bgtrain.learn.settings import LearnerSettings


def learner_process_main(root: Path, settings: LearnerSettings, stop: Any, status: Any) -> None:
    """Start a learner, report ``("started", pid)`` or ``("error", message)``, run until
    ``stop`` is set, then stop it (its batch in hand is published or returned)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run handles Ctrl+C and sets ``stop``
    from bgtrain.learn.learner import BackgroundLearner

    learner = BackgroundLearner(root, settings, console=print)
    try:
        learner.start()
    except BgtrainError as exc:
        status.put(("error", str(exc)))
        return
    status.put(("started", None))
    stop.wait()
    learner.stop()
    status.put(("stopped", learner.get_stats()))
