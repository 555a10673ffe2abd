"""``bgtrain requeue --from quarantine|stale [NAME...]``, run as a person runs it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bgtrain import Spool, TrainingRoot

from .helpers import bgtrain_cli


def requeue(root: TrainingRoot, *args: str) -> subprocess.CompletedProcess[str]:
    """``bgtrain requeue --root ROOT ARGS``, run beside the root."""
    return bgtrain_cli("requeue", "--root", root.path, *args, cwd=root.path.parent)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def root(tmp_path: Path) -> TrainingRoot:
    """Three quarantined files and one stale one, all with old mtimes."""
    root = TrainingRoot(tmp_path / "root").ensure()
    spool = Spool(root)
    for name in ("b.npz", "a.npz", "c.npz", "s.npz"):
        path = root.buffer / name
        path.write_bytes(name.encode())
        os.utime(path, (1_000_000, 1_000_000))
    for path in spool.claim():
        if path.name == "s.npz":
            spool.mark_stale(path, "too old")
        else:
            spool.quarantine(path, "bad", error="boom")
    return root


def buffer_names(root: TrainingRoot) -> list[str]:
    return sorted(p.name for p in root.buffer.iterdir())


def test_requeue_named_files(root: TrainingRoot) -> None:
    result = requeue(root, "--from", "quarantine", "c.npz", "a.npz")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "requeued c.npz",
        "requeued a.npz",
        f"2 file(s) moved from {root.quarantine} to {root.buffer}",
    ]
    assert result.stderr == ""
    assert buffer_names(root) == ["a.npz", "c.npz"]
    assert (root.buffer / "a.npz").read_bytes() == b"a.npz"
    assert (root.buffer / "a.npz").stat().st_mtime > 1_000_000  # its age starts again
    assert sorted(p.name for p in root.quarantine.glob("*.npz")) == ["b.npz"]
    assert len(list((root.quarantine / "requeued").iterdir())) == 2
    assert Spool(root).counts().stale == 1


def test_requeue_all(root: TrainingRoot) -> None:
    result = requeue(root, "--from", "quarantine")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "requeued a.npz",
        "requeued b.npz",
        "requeued c.npz",
        f"3 file(s) moved from {root.quarantine} to {root.buffer}",
    ]
    assert buffer_names(root) == ["a.npz", "b.npz", "c.npz"]
    assert list(root.quarantine.glob("*.npz")) == []
    assert (root.stale / "s.npz").exists()

    again = requeue(root, "--from", "quarantine")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"0 file(s) moved from {root.quarantine} to {root.buffer}"]


def test_requeue_from_stale(root: TrainingRoot) -> None:
    result = requeue(root, "--from", "stale")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "requeued s.npz",
        f"1 file(s) moved from {root.stale} to {root.buffer}",
    ]
    assert buffer_names(root) == ["s.npz"]
    assert len(list(root.quarantine.glob("*.npz"))) == 3


def test_requeue_unknown_name_moves_nothing(root: TrainingRoot) -> None:
    before = snapshot(root.path)

    result = requeue(root, "--from", "quarantine", "a.npz", "nope.npz")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: no file named 'nope.npz' in {root.quarantine} (3 file(s) there)"
    ]
    assert snapshot(root.path) == before


def test_requeue_needs_a_valid_source(root: TrainingRoot) -> None:
    before = snapshot(root.path)
    result = requeue(root, "--from", "archive")
    assert result.returncode == 2
    assert "invalid choice: 'archive'" in result.stderr
    missing = requeue(root)
    assert missing.returncode == 2
    assert "--from" in missing.stderr
    assert snapshot(root.path) == before


def test_requeue_same_name_twice(root: TrainingRoot) -> None:
    result = requeue(root, "--from", "quarantine", "a.npz", "a.npz")
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    assert buffer_names(root) == ["a.npz"]
