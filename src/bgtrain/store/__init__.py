"""The store: a training root's folders and files, and the only code that moves them.

Torch-free (a test imports it with torch made unimportable). ``root`` names the folders;
``fs`` holds the atomic write and move; ``safe_npz`` and ``npz_writer`` read and write
``.npz`` files within size limits; ``episode`` and ``models`` are the two file formats and
``model_layout`` the model's array names; ``spool`` moves episodes through ``buffer/`` →
``processing/`` → ``archive/``; ``lock`` keeps one learner per root; ``counters`` (totals,
heartbeat) and ``events`` (``metrics.jsonl``) are what the learner and the run leave
under ``state/`` and ``logs/`` for others to read.
"""
