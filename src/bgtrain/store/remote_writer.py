"""The remote writer: a finished game's bytes, sent from another machine, stored into the
root's ``buffer/`` once.

A game on a cluster (:mod:`bgtrain.runner.ray_engine`) cannot write into the learner's
root: it sends the bytes of its episode file with the file's unique name, and keeps them
until :func:`receive_episode` has answered. Storing is atomic (a dot-named temp, fsync,
then a link that never overwrites: guarantee 1) and idempotent by name: a send that is
retried (its answer was lost, the game's machine died after sending) finds its file
wherever the root holds it by now and stores nothing twice.

Finding a name looks in the folders in the order a file moves through them
(``buffer/``, ``processing/``, the archive's day folders, ``stale/``, ``quarantine/``,
``split/``): the learner only moves files forward, so a file moving while it is looked for
is found further on. A person's ``bgtrain requeue`` (back into ``buffer/``) during that
look could hide it once; the copy stored then is the same game under a ``~1`` name.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path
from typing import NamedTuple

from bgtrain.errors import BgtrainError
from bgtrain.store.fs import free_name, is_temp_name, temp_name_for
from bgtrain.store.root import TrainingRoot
from bgtrain.store.spool import is_episode_name

__all__ = ["Received", "find_episode", "receive_episode"]

logger = logging.getLogger(__name__)


class Received(NamedTuple):
    """The writer's answer: where the root holds the episode, and whether it was there
    already (a retried send)."""

    path: Path
    duplicate: bool


def _folders_in_flow_order(root: TrainingRoot) -> list[Path]:
    try:
        days = sorted(p for p in root.archive.iterdir() if p.is_dir())
    except FileNotFoundError:
        days = []
    return [root.buffer, root.processing, *days, root.stale, root.quarantine, root.split]


def find_episode(root: str | Path | TrainingRoot, name: str) -> Path | None:
    """Where ``root`` holds the episode file ``name`` (any of its episode folders), or
    ``None``."""
    for folder in _folders_in_flow_order(TrainingRoot.at(root)):
        path = folder / name
        if os.path.lexists(path):
            return path
    return None


def _check_name(name: str) -> None:
    if Path(name).name != name or is_temp_name(name) or not is_episode_name(name):
        raise BgtrainError(
            f"refused an episode sent as {name!r}: not the name of an episode file "
            "(NAME.npz, no folder, not dot-named)"
        )


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()
    except OSError:
        return False


def receive_episode(root: str | Path | TrainingRoot, name: str, data: bytes) -> Received:
    """Store the episode file ``name`` with contents ``data`` into ``root``'s ``buffer/``,
    unless the root already holds it (then nothing is written).

    Args:
        root: the learner's training root (on this machine).
        name: the file's name as the game's recorder made it (unique per game).
        data: the whole file (bytes of an ``.npz``; the learner validates it as it does
            every file in ``buffer/``).

    Returns:
        Where the episode is now, and ``duplicate=True`` if it was there already.

    Raises:
        BgtrainError: ``name`` is not an episode file's name (a path, a temp name).
        OSError: the file could not be written (nothing is left behind; the sender keeps
            its bytes and may send again).
    """
    _check_name(name)
    training_root = TrainingRoot.at(root)
    found = find_episode(training_root, name)
    if found is not None:
        return Received(found, duplicate=True)
    buffer = training_root.buffer
    buffer.mkdir(parents=True, exist_ok=True)
    target = buffer / name
    tmp = temp_name_for(target)
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return _link_into_place(tmp, target, data)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _link_into_place(tmp: Path, target: Path, data: bytes) -> Received:
    """Link ``tmp`` to ``target`` without overwriting. A name taken meanwhile by the same
    bytes is a retried send that won the race; by other bytes (never expected: names are
    unique per game), the new game is kept under a free name, not dropped."""
    try:
        os.link(tmp, target)
        return Received(target, duplicate=False)
    except FileExistsError:
        if _same_bytes(target, data):
            return Received(target, duplicate=True)
        other = free_name(target.parent, target.name)
        logger.warning(
            "%s already holds another game of that name: stored as %s", target, other.name
        )
    except OSError:  # no hard links on this file system
        other = free_name(target.parent, target.name)
    os.rename(tmp, other)
    return Received(other, duplicate=False)
