"""``bgtrain rollback VERSION``: republish an old model version as the newest."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from bgtrain.cli._common import add_root_argument
from bgtrain.store.lock import LearnerLock
from bgtrain.store.models import ModelStore


@dataclass(frozen=True)
class RollbackConfig:
    #: The training root.
    root: Path
    #: The version (from ``models/history/``) to make the newest again.
    version: int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rollback", help="republish an old model version as the newest", description=__doc__
    )
    add_root_argument(p)
    p.add_argument(
        "version",
        type=int,
        metavar="VERSION",
        help="the model version to make the newest again (one kept in models/history/)",
    )
    p.set_defaults(run=lambda a: run(RollbackConfig(a.root, a.version)))


def run(config: RollbackConfig) -> int:
    # Publishing needs the learner lock: a running learner would overwrite the rollback
    # with its next batch, so it must be stopped first (the lock error says so).
    with LearnerLock(config.root, role="rollback"):
        # Keeps as many versions in models/history/ as the root's learner does.
        store = ModelStore(config.root)
        before = store.latest_version()
        meta = store.rollback(config.version)
    print(
        f"rolled back: version {config.version} republished as version {meta.version} "
        f"(was {before}) in {store.path}"
    )
    return 0
