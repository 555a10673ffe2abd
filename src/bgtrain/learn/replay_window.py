"""Sample reuse: the episodes of the last few published batches, kept in memory and
trained again beside each new batch.

bgtrain trains each new game once, in the batch of one published model (exactly-once,
guarantee 3): that does not change. Replay is extra learning on games already archived,
as Generalized PPO with sample reuse does (GePPO, Queeney et al., NeurIPS 2021,
jqueeney/geppo): the last few policies' batches are trained again, off-policy corrected
(V-trace targets, decoupled clipped surrogate; see :mod:`bgtrain.learn.algorithms.ppo`).
Each batch is replayed at most ``passes`` times and only while its games are at most
``max_lag`` model versions behind: too-stale replay destabilises V-trace (ACER, LASER).
Nothing here is written to disk: the window is rebuilt empty when a learner starts.

Torch-free: this is the learner's bookkeeping, not its maths.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from bgtrain.store.episode import Episode


@dataclass
class ReplayEntry:
    """One published batch in the window."""

    #: The model version whose training first used this batch.
    version: int
    names: tuple[str, ...]
    episodes: tuple[Episode, ...]
    passes_left: int

    @property
    def steps(self) -> int:
        return sum(ep.length for ep in self.episodes)


class ReplayWindow:
    """The recent batches that may still be trained again.

    ``passes``: times a batch is replayed after its first training (0: no reuse).
    ``max_lag``: a batch is replayed only while the model is at most this many versions
    past the one that first trained it. ``max_steps``: most samples kept (the oldest
    batches leave first), which bounds the memory and the cost of a cycle.
    """

    def __init__(self, passes: int, max_lag: int, max_steps: int) -> None:
        self.passes, self.max_lag, self.max_steps = passes, max_lag, max_steps
        self._entries: deque[ReplayEntry] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def steps(self) -> int:
        return sum(entry.steps for entry in self._entries)

    def select(self, model_version: int) -> list[ReplayEntry]:
        """The batches to train again beside the next one (the model is at
        ``model_version``). Nothing changes until :meth:`used`."""
        self._drop_expired(model_version)
        return list(self._entries)

    def used(self, entries: Sequence[ReplayEntry]) -> None:
        """The batch trained with ``entries`` was published: each spent one pass."""
        for entry in entries:
            entry.passes_left -= 1
        self._entries = deque(e for e in self._entries if e.passes_left > 0)

    def add(self, version: int, names: Sequence[str], episodes: Sequence[Episode]) -> None:
        """A batch first trained by ``version`` (published): replay it from now on."""
        if self.passes <= 0 or not episodes:
            return
        self._entries.append(ReplayEntry(version, tuple(names), tuple(episodes), self.passes))
        while len(self._entries) > 1 and self.steps > self.max_steps:
            self._entries.popleft()

    def clear(self) -> None:
        """Forget every batch (after the collapse guard went back to an older model, or a
        non-finite batch): the games stay archived, only their replay ends."""
        self._entries.clear()

    def _drop_expired(self, model_version: int) -> None:
        while self._entries and model_version - self._entries[0].version > self.max_lag:
            self._entries.popleft()
