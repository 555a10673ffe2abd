"""The layout's two rules, checked rather than stated.

1. Torch-free: the store, the game side, the run, the monitor, the command line, the
   StarCraft II bot, the learner's settings, the algorithm registry and the top-level
   package import on a machine without torch. Each is imported in a fresh
   interpreter where ``import torch`` fails (as it would there); the packages are walked
   with pkgutil, so a new module is covered without editing this test.
2. The layers import one way: nothing in ``bgtrain.store``, ``bgtrain.game`` or
   ``bgtrain.learn`` imports from the layers above them (runner, cli, monitor, compat...),
   read from the source with ``ast`` so that an import inside a function counts too.

Each rule is also shown to fail on code that breaks it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import bgtrain

from .helpers import cli_env

SRC = Path(bgtrain.__file__).resolve().parent.parent  # the folder that holds ``bgtrain``

#: What must import without torch; ``NAME.*`` is the package and every module below it.
TORCH_FREE = (
    "bgtrain",
    "bgtrain.common.*",
    "bgtrain.store.*",
    "bgtrain.game.*",
    "bgtrain.runner.*",  # the run's process: torch is imported in the learner's only
    "bgtrain.monitor.*",
    "bgtrain.cli.*",
    "bgtrain.integrations.sc2.*",  # the bot plays in the game's process
    "bgtrain.learn.settings",  # the CLI builds its flags from them
    "bgtrain.learn.algorithms",  # the registry: an implementation is imported when made
)

#: Imports ``sys.argv[1:]`` (``NAME`` or ``NAME.*``) with torch unimportable; prints one
#: JSON line: the modules imported, those that failed (with the error), and every attempt
#: to import torch with the file and line that made it (an ``except ImportError`` fallback
#: would hide the attempt otherwise).
HARNESS = textwrap.dedent(
    """
    import importlib, importlib.abc, json, pkgutil, sys, traceback

    attempts = []

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name != "torch" and not name.startswith("torch."):
                return None
            stack = [f for f in traceback.extract_stack()[:-1] if "importlib" not in f.filename]
            attempts.append({"module": name, "by": f"{stack[-1].filename}:{stack[-1].lineno}"})
            raise ModuleNotFoundError(
                f"No module named {name!r} (torch is unimportable in this test)", name=name
            )

    sys.meta_path.insert(0, NoTorch())  # before anything of bgtrain is imported
    failed = {}

    def note_failure(name):
        exc = sys.exc_info()[1]
        failed[name] = f"{type(exc).__name__}: {exc}"

    def modules(target):
        if not target.endswith(".*"):
            return [target]
        name = target[:-2]
        try:
            package = importlib.import_module(name)
        except Exception:
            note_failure(name)
            return []
        walk = pkgutil.walk_packages(package.__path__, name + ".", onerror=note_failure)
        return [name, *(info.name for info in walk)]

    imported = []
    for target in sys.argv[1:]:
        for name in modules(target):
            try:
                importlib.import_module(name)
            except Exception:
                note_failure(name)
            else:
                imported.append(name)
    print(json.dumps({
        "imported": imported,
        "failed": failed,
        "torch_attempts": attempts,
        "torch_loaded": "torch" in sys.modules,
    }))
    """
)


def import_without_torch(*targets: str, cwd: Path, pythonpath: Path | None = None) -> dict:
    """The harness's report for ``targets`` (see :data:`HARNESS`), run in ``cwd``."""
    env = cli_env(PYTHONPATH=str(pythonpath)) if pythonpath else cli_env()
    result = subprocess.run(
        [sys.executable, "-c", HARNESS, *targets],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def module_names(folder: Path) -> set[str]:
    """The dotted names of the ``.py`` files below ``folder`` (a package under :data:`SRC`)."""
    names = set()
    for path in folder.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_store_game_side_monitor_and_cli_import_without_torch(tmp_path):
    report = import_without_torch(*TORCH_FREE, cwd=tmp_path)

    assert report["failed"] == {}
    assert report["torch_attempts"] == []
    assert report["torch_loaded"] is False
    # The walk reached every module of the packages named (a new file is covered too).
    walked = set().union(
        *(module_names(SRC / "bgtrain" / p) for p in ("common", "store", "game", "monitor", "cli"))
    )
    assert walked <= set(report["imported"])
    assert {"bgtrain", "bgtrain.runner.actor", "bgtrain.store.episode"} <= set(report["imported"])


def test_the_harness_fails_on_the_modules_that_need_torch(tmp_path):
    report = import_without_torch("bgtrain.learn.algorithms.*", cwd=tmp_path)

    assert report["failed"]["bgtrain.learn.algorithms.ppo"] == (
        "ModuleNotFoundError: No module named 'torch' (torch is unimportable in this test)"
    )
    assert report["torch_attempts"], report
    asker = Path(report["torch_attempts"][0]["by"].rsplit(":", 1)[0])
    assert asker.is_relative_to(SRC / "bgtrain" / "learn"), asker


def test_the_harness_sees_an_import_of_torch_that_falls_back_quietly(tmp_path):
    (tmp_path / "quiet_fallback.py").write_text(
        "try:\n    import torch\nexcept ImportError:\n    torch = None\n", encoding="utf-8"
    )

    report = import_without_torch("quiet_fallback", cwd=tmp_path, pythonpath=tmp_path)

    assert report["failed"] == {}
    assert report["imported"] == ["quiet_fallback"]
    assert report["torch_attempts"] == [
        {"module": "torch", "by": f"{tmp_path / 'quiet_fallback.py'}:2"}
    ]


# --------------------------------------------------------------------------- layers

#: The layers each lower package may import from (``bgtrain.X``); anything else of bgtrain
#: (learn, runner, cli, monitor, compat, integrations, the seed's shims, the top-level
#: package) sits above it.
MAY_IMPORT = {
    "store": {"store", "common", "errors"},
    "game": {"game", "store", "common", "errors"},
    "learn": {"learn", "game", "store", "common", "errors"},
}


def imports_of(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every import in ``path`` (module ``module``), anywhere in it;
    relative imports resolved, ``from bgtrain import X`` read as ``bgtrain.X``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            if base == "bgtrain":
                yield from ((node.lineno, f"bgtrain.{alias.name}") for alias in node.names)
            else:
                yield node.lineno, base


def upward_imports(src: Path, layer: str) -> list[str]:
    """``path:line imports NAME`` for each import in ``src/bgtrain/<layer>`` of a layer of
    bgtrain not in :data:`MAY_IMPORT`."""
    found = []
    for path in sorted((src / "bgtrain" / layer).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for line, name in imports_of(path, module):
            top, _, rest = name.partition(".")
            if top == "bgtrain" and rest.partition(".")[0] not in MAY_IMPORT[layer]:
                found.append(f"{path.relative_to(src).as_posix()}:{line} imports {name}")
    return found


def test_the_store_the_game_side_and_the_learner_import_nothing_from_the_layers_above():
    assert upward_imports(SRC, "store") == []
    assert upward_imports(SRC, "game") == []
    assert upward_imports(SRC, "learn") == []  # no runner, cli, monitor or compat


def test_the_layer_check_names_the_file_and_the_import_that_breaks_the_rule(tmp_path):
    store = tmp_path / "bgtrain" / "store"
    store.mkdir(parents=True)
    (store / "__init__.py").write_text("", encoding="utf-8")
    (store / "fine.py").write_text(
        "from bgtrain.errors import BgtrainError\nfrom . import fs\nfrom .fs import atomic_write\n",
        encoding="utf-8",
    )
    (store / "bad.py").write_text(
        "import numpy\n"
        "from bgtrain.learn.pipeline import run_batch\n"
        "from ..runner import actor\n"
        "def later():\n"
        "    import bgtrain.monitor.plot\n"
        "    from bgtrain import cli, errors\n",
        encoding="utf-8",
    )

    assert upward_imports(tmp_path, "store") == [
        "bgtrain/store/bad.py:2 imports bgtrain.learn.pipeline",
        "bgtrain/store/bad.py:3 imports bgtrain.runner",
        "bgtrain/store/bad.py:5 imports bgtrain.monitor.plot",
        "bgtrain/store/bad.py:6 imports bgtrain.cli",
    ]
