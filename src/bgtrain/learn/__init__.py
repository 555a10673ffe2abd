"""The learner: claims recorded games from the spool, trains, publishes models (PyTorch).

``pipeline.run_batch`` states the contract of one batch; ``learner`` runs it in the
background; ``algorithms`` holds the training algorithms by name; ``settings`` the
learner's settings; ``guard`` and ``replay_window`` what the learner keeps between
batches; ``reporting`` the training log, metrics events and TensorBoard.
"""
