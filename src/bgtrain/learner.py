"""The seed system's import path: ``from bgtrain.learner import BackgroundParallelLearner``."""

from bgtrain.learn.learner import BackgroundLearner, BackgroundParallelLearner

__all__ = ["BackgroundLearner", "BackgroundParallelLearner"]
