"""The game defaults the settings name, in a module of their own: the settings (and a
StarCraft II bot's process, which reads them) need not import Gymnasium."""

from __future__ import annotations

DEFAULT_ENV = "CartPole-v1"
#: Steps after which a game with no limit of its own (no ``spec.max_episode_steps``) is
#: stopped and saved as cut short: a game that never ends must not become one huge file
#: the learner cannot train, nor an evaluation that never returns.
DEFAULT_STEP_LIMIT = 100_000
