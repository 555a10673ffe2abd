"""``bgtrain requeue --from quarantine|stale [NAME...]``: give set-aside files another chance."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from bgtrain.cli._common import add_root_argument
from bgtrain.store.spool import RequeueSource, Spool


@dataclass(frozen=True)
class RequeueConfig:
    #: The training root.
    root: Path
    #: Where the files are: ``quarantine`` or ``stale``.
    source: RequeueSource
    #: File names to move back into ``buffer/`` (default: all of them).
    names: tuple[str, ...] = ()


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "requeue", help="move quarantined or stale files back to the buffer", description=__doc__
    )
    add_root_argument(p)
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        choices=("quarantine", "stale"),
        help="the folder to take files from: quarantine (files that failed to load) or "
        "stale (files too old or played by a model too far behind)",
    )
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="file names in that folder to move back into the buffer (default: all of them)",
    )
    p.set_defaults(run=lambda a: run(RequeueConfig(a.root, a.source, tuple(a.names))))


def run(config: RequeueConfig) -> int:
    spool = Spool(config.root)
    folder = getattr(spool.root, config.source)
    moved = spool.requeue(config.source, config.names)
    for path in moved:
        print(f"requeued {path.name}")
    print(f"{len(moved)} file(s) moved from {folder} to {spool.root.buffer}")
    return 0
