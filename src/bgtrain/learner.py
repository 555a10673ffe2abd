"""The seed system's import path: ``from bgtrain.learner import BackgroundParallelLearner``."""

from bgtrain.compat.parallel_learner import BackgroundParallelLearner

__all__ = ["BackgroundParallelLearner"]
