"""``bgtrain learn``: the learner as its own process, for games that run elsewhere.

It trains on whatever lands in ROOT/data/buffer (from ``bgtrain run``, a StarCraft II
bot, another machine, or files dropped there by hand) until Ctrl+C or SIGTERM, which
stop it cleanly: the batch in hand is published or returned to the buffer. A second
Ctrl+C quits at once; the next start recovers the batch.
"""

from __future__ import annotations

import argparse
import functools
import threading
from dataclasses import dataclass
from pathlib import Path

from bgtrain.cli._common import add_root_argument
from bgtrain.common.settings import add_settings_arguments, settings_from_args
from bgtrain.learn.settings import LearnerSettings
from bgtrain.runner.console import learner_started_lines
from bgtrain.runner.engine import Interrupts, quit_at_once

#: How often the learner is looked at: idle (``--exit-when-idle``), or stopped on its own.
STOP_POLL_S = 0.2
STOPPING_LINE = "[BG_LEARNER] Stopping after the batch in hand (Ctrl+C again to quit at once)"
#: The second interrupt quits at once: the batch in hand stays in processing/.
SECOND_INTERRUPT_LINE = (
    "[BG_LEARNER] Second interrupt: quitting now (the next start recovers the batch)"
)


@dataclass(frozen=True)
class LearnConfig:
    #: The training root.
    root: Path
    #: Learner settings and hyperparameters (flags > ``--config`` file > defaults).
    settings: LearnerSettings
    #: Stop once the buffer is empty (train on what is there, then exit).
    exit_when_idle: bool = False


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("learn", help="run the learner on a root until Ctrl+C", description=__doc__)
    add_root_argument(p)
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML settings: a [learner] table (default: none)",
    )
    p.add_argument(
        "--exit-when-idle",
        action="store_true",
        help="stop once the buffer is empty (train on what is there, then exit)",
    )
    add_settings_arguments(p, LearnerSettings)
    p.set_defaults(
        run=lambda a: run(
            LearnConfig(
                a.root,
                settings_from_args(LearnerSettings, a, a.config, "learner"),
                a.exit_when_idle,
            )
        )
    )


def run(config: LearnConfig) -> int:
    from bgtrain.learn.learner import BackgroundLearner  # imports torch: only when learning

    learner = BackgroundLearner(config.root, config.settings, console=print)
    stopping = threading.Event()

    def stop_after_the_batch() -> None:
        print(STOPPING_LINE)
        stopping.set()

    second = functools.partial(quit_at_once, print, SECOND_INTERRUPT_LINE)
    with Interrupts(second, on_first=stop_after_the_batch):
        try:
            learner.start()
            for line in learner_started_lines(learner.root):
                print(line)
            while not stopping.wait(STOP_POLL_S):
                if (config.exit_when_idle and learner.idle) or not learner.running:
                    break
        finally:
            if learner.running:
                learner.stop()
    stats = learner.stats()
    print(
        f"[BG_LEARNER] {stats.batches_trained} batches, {stats.files_processed} files "
        f"trained in all; model version {stats.model_version} in {learner.store.path}"
    )
    if learner.stop_errors:  # nothing was lost, but the disk needs the user's attention
        raise learner.stop_errors[0]
    return 0
