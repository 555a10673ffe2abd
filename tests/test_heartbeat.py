"""The learner's heartbeat survives a failing disk: it says so once, keeps beating, and
the monitor shows the learner as running again as soon as the write works again."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

import bgtrain.learn.heartbeat as heartbeat_module
from bgtrain import TrainingRoot
from bgtrain.learn.learner import BackgroundLearner
from bgtrain.monitor.snapshot import Watcher
from bgtrain.store.counters import Heartbeat, read_heartbeat

from .helpers import wait_until

#: Beats this far apart keep the test short; the code path is the same as at 1 s.
FAST_BEAT_S = 0.05


class Breakage(NamedTuple):
    root: TrainingRoot
    reason: str  # the OS's words for the failure, as the warning gives them
    start: Callable[[], None]
    end: Callable[[], None]


def state_replaced_by_a_file(where: Path) -> Breakage:
    root = TrainingRoot(where / "root")
    away = where / "state.away"

    def start() -> None:
        os.rename(root.state, away)
        root.state.write_text("not a folder", encoding="utf-8")

    def end() -> None:
        root.state.unlink()
        os.rename(away, root.state)

    return Breakage(root, os.strerror(errno.ENOTDIR), start, end)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 2 MiB tmpfs (tests run as root on Linux; elsewhere this case is skipped)."""
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("a full disk is made with a Linux tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    out = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def full_disk(disk: Path) -> Breakage:
    root = TrainingRoot(disk / "root")
    filler = disk / "filler"

    def start() -> None:
        chunk = b"\0" * 65536
        with open(filler, "wb", buffering=0) as f:
            while True:
                try:
                    f.write(chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    return

    return Breakage(root, os.strerror(errno.ENOSPC), start, filler.unlink)


@pytest.fixture(params=["state replaced by a file", "full disk"])
def breakage(request, tmp_path) -> Breakage:
    if request.param == "full disk":
        return full_disk(request.getfixturevalue("small_disk"))
    return state_replaced_by_a_file(tmp_path)


def test_heartbeat_survives_failed_writes_warns_once_and_resumes(breakage, caplog, monkeypatch):
    monkeypatch.setattr(heartbeat_module, "HEARTBEAT_S", FAST_BEAT_S)
    caplog.set_level(logging.WARNING, logger="bgtrain.learn.heartbeat")
    root = breakage.root
    learner = BackgroundLearner(root.path, verbose=False, enable_model_training=False)
    learner.start()
    try:
        wait_until(lambda: read_heartbeat(root) is not None, what="the first heartbeat")
        breakage.start()
        wait_until(lambda: heartbeat_lines(caplog), what="the heartbeat's warning")
        # Several beats fail while the disk stays bad: the thread lives on, quietly.
        wait_until(lambda: learner._heartbeat.outage.failures >= 5, what="5 failed beats")
        breakage.end()
        mended = time.time()
        wait_until(
            lambda: (read_heartbeat(root) or Heartbeat(time=0)).time > mended,
            timeout=5,
            what="a heartbeat written after the disk works again",
        )
        shown = Watcher(root.path).take().learner
    finally:
        learner.stop()

    assert shown is not None and shown.running is True
    path = root.state / "heartbeat.json"
    first, *rest = heartbeat_lines(caplog)
    assert first == (
        f"writing the heartbeat {path} failed ({breakage.reason}); "
        "retrying, said once until it works again"
    )
    assert len(rest) == 1, rest
    back = re.fullmatch(
        rf"writing the heartbeat {re.escape(str(path))} works again "
        r"after (\d+) failed attempt\(s\)",
        rest[0],
    )
    assert back is not None, rest[0]
    assert int(back.group(1)) >= 5


def heartbeat_lines(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "bgtrain.learn.heartbeat" and "heartbeat" in r.getMessage()
    ]
