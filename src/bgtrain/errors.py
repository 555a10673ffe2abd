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


class UnknownAlgorithmError(BgtrainError):
    """A model (or a caller) names a learning algorithm this bgtrain does not know. The
    message names it, the algorithms this bgtrain knows and what to do."""

    def __init__(self, message: str, algorithm: str, known: tuple[str, ...]) -> None:
        self.algorithm = algorithm
        self.known = known
        super().__init__(message)


class LearnerLockedError(BgtrainError):
    """Another learner already holds this training root."""

    def __init__(self, message: str, holder_pid: int | None = None) -> None:
        self.holder_pid = holder_pid
        super().__init__(message)


class SettingsError(BgtrainError, ValueError):
    """A setting (flag, TOML key or keyword) has a value outside its allowed range, or an
    unknown name. The message names the setting, the value given and what is allowed."""


class RootError(BgtrainError):
    """A training root cannot be used (not a folder, read-only, disk full). The message
    names the path and what to do."""


class ModelMismatchError(BgtrainError):
    """A game and a root's model do not fit (observation size, number of actions). The
    message names both shapes, the game the model was made for and ``--root``."""


class GameStepError(BgtrainError):
    """A game returned something a recorded episode cannot hold (NaN or infinite
    observation or reward, wrong shape). The message names the game, the value and the
    step."""


class NonFiniteTrainingError(BgtrainError):
    """Training a batch gave a non-finite loss, gradient or weight. The trainer has gone
    back to its state before the batch; nothing of it was published."""


class TrainingStopped(BgtrainError):
    """Training was interrupted by a stop request; the trainer is back to its state before
    the batch, and the batch goes back to ``buffer/``."""


class PoisonedBatchError(BgtrainError):
    """Some episodes of a batch cannot be trained on without non-finite numbers.

    ``culprits`` maps an index into the batch to the reason for quarantining that episode;
    ``deferred`` are indices of episodes to put back into ``buffer/`` for a later batch
    (when no single episode is at fault, the batch is trained one episode at a time).
    """

    def __init__(self, culprits: dict[int, str], deferred: list[int], message: str) -> None:
        self.culprits = culprits
        self.deferred = deferred
        super().__init__(message)
