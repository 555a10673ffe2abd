"""The seed system's API (``RLAgent``, ``BackgroundParallelLearner``), kept for its users."""
