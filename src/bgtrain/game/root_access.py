"""How a game loop reaches its training root: the seam between a game and the root.

:class:`RootAccess` is what a game needs of the root (the newest model, the games
waiting, the learner's state, where finished games go); :class:`LocalRoot` is the root on
this machine's disk. A game on another machine reaches it over the network
(:class:`bgtrain.runner.ray_engine.RemoteRoot`). Torch-free and Gymnasium-free: a
StarCraft II bot's process imports it too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

from bgtrain.game.recorder import EpisodeRecorder
from bgtrain.store.counters import read_heartbeat
from bgtrain.store.models import LoadedModel, ModelStore
from bgtrain.store.spool import episode_entries

__all__ = ["PACING_POLL_S", "LocalRoot", "RootAccess"]

#: How often a game paused by ``--max-waiting`` looks at ``buffer/`` again.
PACING_POLL_S = 0.005


class RootAccess(Protocol):
    """How a game loop reaches the training root: the newest model, the games waiting,
    the learner's state, and where finished games go. :class:`LocalRoot` is the root on
    this machine's disk; a cluster's game reaches it over the network
    (:class:`bgtrain.runner.ray_engine.RemoteRoot`)."""

    def load_if_newer(self, known: int | None) -> LoadedModel | None:
        """The newest model if its version differs from ``known`` (between games)."""
        ...

    def waiting(self) -> int:
        """Games in ``buffer/`` waiting for the learner."""
        ...

    def room(self, limit: int, pending: int, wait_s: float) -> bool:
        """Whether fewer than ``limit`` games wait for the learner, counting ``pending``
        games not yet stored; looks again for up to ``wait_s`` seconds until they do."""
        ...

    def learner_idle(self) -> bool:
        """The learner waits for games (its heartbeat says idle)."""
        ...

    def recorder(self, actor: str, env: str, compress: bool) -> EpisodeRecorder:
        """The recorder that saves this loop's games into the root."""
        ...


class LocalRoot:
    """The root on this machine's disk (or a folder every game machine shares)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._models = ModelStore(root)
        self._buffer = self.root / "data" / "buffer"

    def latest_version(self) -> int | None:
        return self._models.latest_version()

    def load_if_newer(self, known: int | None) -> LoadedModel | None:
        return self._models.load_if_newer(known)

    def waiting(self) -> int:
        return len(episode_entries(self._buffer))

    def room(self, limit: int, pending: int, wait_s: float) -> bool:
        deadline = time.monotonic() + wait_s
        while self.waiting() + pending >= limit:
            if time.monotonic() >= deadline:
                return False
            time.sleep(PACING_POLL_S)
        return True

    def learner_idle(self) -> bool:
        heartbeat = read_heartbeat(self.root)
        return heartbeat is not None and heartbeat.state == "idle"

    def recorder(self, actor: str, env: str, compress: bool) -> EpisodeRecorder:
        # remember=0: a game loop never asks which paths were written; keeping them would
        # grow the process by a path per game for hours.
        return EpisodeRecorder(
            self.root, actor=actor, env=env, policy_version=None, compress=compress, remember=0
        )
