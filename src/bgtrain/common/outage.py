"""Saying once that a repeated background task fails, and once that it works again."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class OutageLog:
    """Says once that a repeated background task fails, and once that it works again.

    A background thread that retries every beat (disk full, a folder gone for a while)
    must neither die nor log a line per beat: ``failed`` warns at the first failure of
    an outage, ``succeeded`` logs the end of an outage (both at WARNING, so whoever saw
    the first line sees the second).
    """

    def __init__(self, what: str, log: logging.Logger = logger) -> None:
        self.what = what
        self.failures = 0  # in the current outage
        self._log = log

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.failures == 1:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self._log.warning(
                "%s failed (%s); retrying, said once until it works again",
                self.what,
                reason,
                # An OS error is the disk's or the folder's; anything else is a bug to show.
                exc_info=None if isinstance(exc, OSError) else exc,
            )

    def succeeded(self) -> None:
        if self.failures:
            self._log.warning("%s works again after %d failed attempt(s)", self.what, self.failures)
            self.failures = 0
