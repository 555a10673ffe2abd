"""The folders of a training root (DESIGN.md, "A training root"), and the checks that
refuse a root that cannot be used (a file, a read-only folder) before anything starts."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from bgtrain.errors import RootError
from bgtrain.store.fs import TEMP_NAME

DEFAULT_ROOT = Path("local_training")
MODEL_FILE_NAME = "rl_agent_model.npz"
TRAINING_LOG_NAME = "background_training.log"
METRICS_NAME = "metrics.jsonl"
#: In ``state/``: how many versions ``models/history/`` keeps, as the root's learner said.
HISTORY_SIZE_NAME = "model_history.json"


@dataclass(frozen=True)
class TrainingRoot:
    """Where one bot's games, models, logs and learner state live."""

    path: Path

    @classmethod
    def at(cls, path: str | Path | TrainingRoot = DEFAULT_ROOT) -> TrainingRoot:
        return path if isinstance(path, TrainingRoot) else cls(Path(path))

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def buffer(self) -> Path:
        return self.data / "buffer"

    @property
    def processing(self) -> Path:
        return self.data / "processing"

    @property
    def archive(self) -> Path:
        return self.data / "archive"

    @property
    def stale(self) -> Path:
        return self.data / "stale"

    @property
    def quarantine(self) -> Path:
        return self.data / "quarantine"

    @property
    def split(self) -> Path:
        """Episodes too long to train at once, each beside the reason that lists its pieces."""
        return self.data / "split"

    @property
    def models(self) -> Path:
        return self.path / "models"

    @property
    def model_file(self) -> Path:
        return self.models / MODEL_FILE_NAME

    @property
    def history(self) -> Path:
        return self.models / "history"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def training_log(self) -> Path:
        return self.logs / TRAINING_LOG_NAME

    @property
    def metrics(self) -> Path:
        return self.logs / METRICS_NAME

    @property
    def state(self) -> Path:
        return self.path / "state"

    @property
    def history_size_file(self) -> Path:
        """The history size the root's publisher records (see ``ModelStore``)."""
        return self.state / HISTORY_SIZE_NAME

    @property
    def folders(self) -> tuple[Path, ...]:
        """Every folder of the layout, parents before children."""
        return (
            self.data,
            self.buffer,
            self.processing,
            self.archive,
            self.stale,
            self.quarantine,
            self.split,
            self.models,
            self.history,
            self.logs,
            self.state,
        )

    def check(self, write: bool = True) -> TrainingRoot:
        """Refuse, with a :class:`RootError` naming the path and what to do, a root that is
        a file (or lies under one, or holds a file where a folder of the layout goes) and,
        when ``write``, a root this process cannot write in. A root that does not exist
        yet is fine: it is made on first write."""
        check_root(self.path, write=write)
        return self

    def ensure(self) -> TrainingRoot:
        """Create every folder of the layout (idempotent), after :meth:`check`."""
        self.check(write=True)
        for folder in self.folders:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RootError(describe_os_error(exc, self.path)) from exc
        return self


#: What to do about an OS error, by errno: one line shown after the path. ``{elsewhere}``
#: and ``{writable}`` name ``--root`` for a path in the root, else any other place.
_HINTS = {
    errno.ENOSPC: "the disk is full: free some space, or {elsewhere}",
    errno.EROFS: "the file system is read-only: {writable}",
    errno.EACCES: "{writable}, or give this user write access",
    errno.EPERM: "{writable}, or give this user write access",
    errno.ENOTDIR: "a file stands where a folder is needed: move it away, or {elsewhere}",
    errno.EISDIR: "a folder stands where a file is needed: move it away, or {elsewhere}",
    errno.EEXIST: "a file stands where a folder is needed: move it away, or {elsewhere}",
}
if hasattr(errno, "EDQUOT"):  # not on Windows
    _HINTS[errno.EDQUOT] = "the disk quota is used up: free some space, or {elsewhere}"


def _inside(path: str, root: str | Path) -> bool:
    try:
        return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(root))
    except (OSError, ValueError):
        return False


def _shown(filename: str | bytes | int) -> str:
    """The path a person knows: the file being written, not its dot-temp."""
    path = Path(os.fsdecode(filename)) if not isinstance(filename, int) else None
    if path is None:
        return str(filename)
    match = TEMP_NAME.match(path.name)
    return str(path.with_name(match["name"])) if match else str(path)


def describe_os_error(exc: OSError, root: str | Path | None = None) -> str:
    """One line for an OS error: the path (or the root, when the error names none), what
    happened with its errno name, and what to do."""
    name = errno.errorcode.get(exc.errno or 0, "")
    what = exc.strerror or str(exc)
    if name:
        what = f"{what} ({name})"
    where = _shown(exc.filename) if exc.filename is not None else None
    in_root = root is not None and (where is None or _inside(where, root))
    hint = _HINTS.get(exc.errno or 0, "").format(
        elsewhere="use another --root" if in_root else "write elsewhere",
        writable="use a writable --root" if in_root else "write to a writable place",
    )
    if where is not None:
        if exc.filename2 is not None:
            where = f"{where} -> {_shown(exc.filename2)}"
        text = f"{where}: {what}"
    elif root is not None:
        text = f"{what} in training root {root}"
    else:
        text = what
    return f"{text}: {hint}" if hint else text


def _is_read_only_fs(path: Path) -> bool:
    statvfs = getattr(os, "statvfs", None)  # POSIX only; elsewhere os.access says enough
    if statvfs is None:
        return False
    try:
        return bool(statvfs(path).f_flag & getattr(os, "ST_RDONLY", 1))
    except OSError:
        return False


def check_root(path: str | Path, write: bool = True) -> None:
    """See :meth:`TrainingRoot.check`."""
    path = Path(path)
    # The nearest existing path at or above the root: the root itself, or where it is made.
    existing = path
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "is" if existing == path else f"cannot be made: {existing} is"
        raise RootError(
            f"training root {path} {where} a file, not a folder: pass --root with a folder "
            "(or a path that does not exist yet)"
        )
    if existing == path:
        root = TrainingRoot(path)
        for folder in root.folders:
            if folder.exists() and not folder.is_dir():
                raise RootError(
                    f"{folder} in training root {path} is a file where a folder belongs: "
                    "move it away, or use another --root"
                )
    if write and existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        why = "on a read-only file system" if _is_read_only_fs(existing) else "not writable"
        where = f"is {why}" if existing == path else f"cannot be made: {existing} is {why}"
        raise RootError(f"training root {path} {where}: use a writable --root")
