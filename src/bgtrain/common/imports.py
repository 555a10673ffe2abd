"""``package.module:name`` specs, imported where they are used (an algorithm's class, a
cluster's game loop, a StarCraft II games runner)."""

from __future__ import annotations

import importlib
from typing import Any


def imported(spec: str) -> Any:
    """The object ``spec`` (``package.module:name``) names.

    Raises:
        ImportError: the module cannot be imported.
        AttributeError: it has no such name.
    """
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)
