"""The seed system's learner class, ``BackgroundParallelLearner``, with its arguments."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bgtrain.learn.learner import BackgroundLearner
from bgtrain.learn.settings import LearnerSettings
from bgtrain.store.models import ModelStore
from bgtrain.store.root import DEFAULT_ROOT, TrainingRoot

logger = logging.getLogger(__name__)

#: Where ``enable_replay_analysis`` looks for replays when no ``replay_folder`` is given:
#: this folder of the training root (``local_training/replays/``).
REPLAY_FOLDER = "replays"


class BackgroundParallelLearner(BackgroundLearner):
    """The seed system's learner, with its keyword arguments (and ``root=``).

    As in the seed, ``verbose`` prints the learner's lines (``[BG_LEARNER] ...``, the
    STATUS REPORT block) on the console.

    ``enable_replay_analysis=True``: at :meth:`start`, the StarCraft II replays of
    ``replay_folder`` (default: the root's ``replays/``) become demonstration episodes
    in ``data/demonstrations/`` (as ``bgtrain sc2 replays`` does; unreadable ones are
    copied into quarantine), and while the root has no model yet, a first model is
    pretrained from them (as ``bgtrain sc2 pretrain``) before the learner starts: the
    bot's first game plays it, and the learner continues it. Needs the ``[sc2]`` extra;
    without it, or without the folder, a line says so and the learner starts as usual.
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
        replay_folder: str | Path | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(
            root,
            LearnerSettings(max_workers=max_workers, verbose=verbose, max_file_age=max_file_age),
            console=console if console is not None else (print if verbose else None),
            enable_model_training=enable_model_training,
            **settings,
        )
        self.enable_replay_analysis = enable_replay_analysis
        self.replay_folder = Path(replay_folder or self.root.path / REPLAY_FOLDER)

    def start(self) -> bool:
        if self.enable_replay_analysis and not self.running:
            self.analyse_replays()
        return super().start()

    def analyse_replays(self) -> None:
        """Replays to demonstrations, then a pretrained first model if there is none."""
        if not self.replay_folder.is_dir():
            self._say(f"[INFO] Replay analysis: no folder {self.replay_folder} (no replays)")
            return
        try:
            from bgtrain.integrations.sc2 import require_burnysc2

            require_burnysc2()
            from bgtrain.integrations.sc2.replays import convert_replays, demonstrations_folder
        except ImportError as exc:
            self._say(f"[INFO] Replay analysis skipped: {exc}", logging.WARNING)
            return
        report = convert_replays([self.replay_folder], self.root)
        folder = demonstrations_folder(self.root)
        self._say(
            f"[INFO] Replay analysis: {report.replays} replays -> {len(report.episodes)} "
            f"demonstrations in {folder} ({len(report.quarantined)} quarantined)"
        )
        if report.episodes and ModelStore(self.root).latest_version() is None:
            from bgtrain.learn.pretrain import pretrain

            done = pretrain(self.root, folder, learner=self.settings)
            self._say(
                f"[INFO] Pretrained model v{done.published.version} from {done.episodes} "
                f"demonstrations (greedy accuracy {done.train_accuracy:.1%}, chance "
                f"{done.chance:.1%})"
            )
