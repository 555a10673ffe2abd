"""The store: a training root's folders and files, and the only code that moves them.

Torch-free (a test imports it with torch made unimportable). ``root`` names the folders;
``fs`` holds the atomic write and move; ``safe_npz`` and ``npz_writer`` read and write
``.npz`` files within size limits; ``episode`` and ``models`` are the two file formats;
``spool`` moves episodes through ``buffer/`` → ``processing/`` → ``archive/``;
``lock`` keeps one learner per root; ``counters`` and ``events`` are the learner's
state and event files under ``state/`` and ``logs/``.
"""
