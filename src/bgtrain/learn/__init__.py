"""The learner: claims recorded games from the spool, trains, publishes models (PyTorch).

``pipeline.run_batch`` states the contract of one batch; ``learner`` runs batch after
batch in the background (lock, threads, failures) with its parts: ``batch_trainer``
(what is trained: the algorithm, the replay window, the collapse guard), ``accounting``
(totals and reports), ``watch`` (file events), ``prefetch`` (loading the next files),
``heartbeat``, ``staleness`` (policy lag), ``stats`` (``get_stats()``); ``algorithms``
holds the training algorithms by name; ``settings`` the learner's settings; ``guard`` and
``replay_window`` what is kept between batches; ``reporting`` the training log, the
batch's metrics event and TensorBoard.
"""
