"""What the seed system's console blocks share (the learner's STATUS REPORT, the run's
STATISTICS and SUMMARY blocks)."""

#: The rule above and below each block, as the seed printed it.
RULE = "=" * 70
