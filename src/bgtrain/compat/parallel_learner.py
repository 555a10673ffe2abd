"""The seed system's learner class, ``BackgroundParallelLearner``, with its arguments."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bgtrain.learn.learner import BackgroundLearner
from bgtrain.learn.settings import LearnerSettings
from bgtrain.store.root import DEFAULT_ROOT, TrainingRoot

logger = logging.getLogger(__name__)


class BackgroundParallelLearner(BackgroundLearner):
    """The seed system's learner, with its keyword arguments (and ``root=``).

    As in the seed, ``verbose`` prints the learner's lines (``[BG_LEARNER] ...``, the
    STATUS REPORT block) on the console.
    """

    def __init__(
        self,
        max_workers: int = 1,
        enable_replay_analysis: bool = False,
        enable_model_training: bool = True,
        verbose: bool = True,
        max_file_age: float = 3600,
        *,
        root: str | Path | TrainingRoot = DEFAULT_ROOT,
        console: Callable[[str], None] | None = None,
        **settings: Any,
    ) -> None:
        if enable_replay_analysis:
            logger.warning(
                "enable_replay_analysis has no effect: bgtrain learns from recorded games"
            )
        super().__init__(
            root,
            LearnerSettings(max_workers=max_workers, verbose=verbose, max_file_age=max_file_age),
            console=console if console is not None else (print if verbose else None),
            enable_model_training=enable_model_training,
            **settings,
        )
