"""File-system moves that stay correct when a process dies half-way, on POSIX and Windows."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

#: On Windows a file that another process holds open cannot be replaced or renamed
#: (PermissionError); such holds are short (a reader loading a model), so retry briefly:
#: 20 attempts, waits doubling from 5 ms up to 100 ms (about 1.5 s in all).
REPLACE_ATTEMPTS = 20
REPLACE_FIRST_DELAY_S = 0.005
REPLACE_MAX_DELAY_S = 0.1

_T = TypeVar("_T")


def retry_on_permission_error(action: Callable[[], _T]) -> _T:
    """``action()``, tried up to :data:`REPLACE_ATTEMPTS` times while it raises
    ``PermissionError`` (a Windows hold); the last attempt's ``PermissionError`` propagates.
    Any other error propagates at once."""
    delay = REPLACE_FIRST_DELAY_S
    for _ in range(REPLACE_ATTEMPTS - 1):
        try:
            return action()
        except PermissionError:
            time.sleep(delay)
            delay = min(delay * 2, REPLACE_MAX_DELAY_S)
    return action()  # the last attempt: nothing is left to wait for


def replace_with_retry(src: Path, dst: Path) -> None:
    """``os.replace`` (atomic), retried for a short while on ``PermissionError``."""
    retry_on_permission_error(lambda: os.replace(src, dst))


def temp_name_for(path: Path) -> Path:
    """A dot-named temp file beside ``path``: readers skip dot-names (guarantee 1)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


#: The name :func:`temp_name_for` gives: ``.NAME.PID-HEX8.tmp``.
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


def temp_writer_pid(name: str) -> int | None:
    """The pid of the process that made the temp file ``name`` (see :func:`temp_name_for`),
    or ``None`` if ``name`` is not such a temp: only those are ever removed."""
    match = TEMP_NAME.match(name)
    return int(match["pid"]) if match else None


def atomic_write(path: Path, write: Callable[[BinaryIO], None], fsync: bool = True) -> None:
    """Write ``path`` whole or not at all: temp file, flush, fsync, ``os.replace``.

    ``fsync=False`` keeps the all-or-nothing rename but not durability across a power
    cut: for files that can be rebuilt (caches, indexes).
    """
    tmp = temp_name_for(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        replace_with_retry(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_text(path: Path, text: str, fsync: bool = True) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")), fsync=fsync)


def remove_writer_temps(
    folder: Path, should_remove: Callable[[int, os.stat_result], bool]
) -> list[tuple[Path, os.stat_result]]:
    """Remove the writers' temp files in ``folder`` (names of :func:`temp_name_for`, never
    any other file) for which ``should_remove(writer_pid, stat)`` is true; returns each
    removed path with its stat. A temp renamed into place meanwhile is skipped."""
    removed = []
    with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
        for entry in entries:
            pid = temp_writer_pid(entry.name)
            if pid is None or not entry.is_file(follow_symlinks=False):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                if should_remove(pid, st):
                    os.unlink(entry.path)
                    removed.append((Path(entry.path), st))
            except FileNotFoundError:
                continue
    return removed


def remove_temps(folder: Path) -> list[Path]:
    """Remove the dot-named temp files a crashed writer left in ``folder``."""
    removed = []
    if folder.is_dir():
        for entry in os.scandir(folder):
            if is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
                Path(entry.path).unlink()
                removed.append(Path(entry.path))
    return removed


def free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/stem~N.ext`` if that name is taken: a move never overwrites."""
    candidate = folder / name
    stem, dot, ext = name.partition(".")
    n = 1
    while os.path.lexists(candidate):
        candidate = folder / f"{stem}~{n}{dot}{ext}"
        n += 1
    return candidate


def move_into(src: Path, folder: Path, name: str | None = None) -> Path:
    """Move ``src`` (file, folder or link: never followed) into ``folder`` without overwriting.

    The name is kept unless taken. Callers are the root's single mover (the learner, under
    its lock) or a person's ``requeue``; a race between two movers could at worst make the
    Windows rename fail loudly, never overwrite.
    """
    folder.mkdir(parents=True, exist_ok=True)
    dst = free_name(folder, name or src.name)
    retry_on_permission_error(lambda: os.rename(src, dst))
    return dst
