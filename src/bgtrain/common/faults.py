"""Named crash points for the fault suite (``python -m bench chaos``).

With ``BGTRAIN_CRASH_AT=NAME`` in its environment, a process kills itself the moment it
reaches the point ``NAME`` (SIGKILL where the OS has it, else an immediate ``os._exit``):
the fault suite uses this to prove that a crash at the worst moment loses and doubles
nothing. Without the variable, :func:`crash_point` is one comparison. The points:

``after_claim``                 a batch has just been moved into ``processing/``
``after_history_write``         a version is in ``models/history/``, not yet the latest
``between_publish_and_archive`` a version is published; its batch is still in processing
``between_reason_and_move``     a set-aside file's reason is written; the file not moved
``between_pieces_and_move``     a long episode's pieces are in buffer/; it is not moved
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "BGTRAIN_CRASH_AT"
POINTS = (
    "after_claim",
    "after_history_write",
    "between_publish_and_archive",
    "between_reason_and_move",
    "between_pieces_and_move",
)

_target = os.environ.get(ENV_VAR)


def crash_point(name: str) -> None:
    """Die here, at once, if ``BGTRAIN_CRASH_AT`` names this point."""
    if _target is not None and name == _target:
        sigkill = getattr(signal, "SIGKILL", None)
        if sigkill is not None:
            os.kill(os.getpid(), sigkill)
        os._exit(137)
