"""Typed errors. Each message says what went wrong and what to do about it."""

from __future__ import annotations

from pathlib import Path


class BgtrainError(Exception):
    """Base class of every error bgtrain raises on purpose."""


class InvalidEpisodeError(BgtrainError):
    """An episode file (or an episode being built) breaks format 1.

    ``reason`` is one line that names the key, shape or index at fault; it is what
    ``bgtrain check`` prints and what a quarantine ``.reason.json`` records.
    """

    def __init__(self, reason: str, path: Path | None = None, error: str | None = None) -> None:
        self.reason = reason
        self.path = path
        #: The underlying exception text, when a library raised one (zip, npy header).
        self.error = error
        super().__init__(f"{path}: {reason}" if path is not None else reason)


class EpisodeWriteError(BgtrainError):
    """The recorder's background writer could not save an episode."""


class SpoolError(BgtrainError):
    """A move between the spool's folders cannot be done as asked."""


class ModelNotFoundError(BgtrainError):
    """No published model (or not the asked version) in a training root."""


class InvalidModelError(BgtrainError):
    """A model file exists but is not a bgtrain model of a format this version reads."""


class LearnerLockedError(BgtrainError):
    """Another learner already holds this training root."""

    def __init__(self, message: str, holder_pid: int | None = None) -> None:
        self.holder_pid = holder_pid
        super().__init__(message)
