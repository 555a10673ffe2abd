"""The fault suite (``python -m bench chaos``): its audit counts each broken guarantee
exactly, and its quick mode (one fault of each kind, real processes and signals) finds
none. CI runs the quick mode here; the full run is ``python -m bench chaos``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bench.chaos import (
    TITLE,
    Figures,
    Plan,
    failures,
    kept_section,
    rows_for,
    write_section,
)
from bench.chaos_audit import Expected, audit, read_midwriter_log, read_writer_log

from bgtrain import ModelStore, TrainingRoot
from bgtrain.common.faults import POINTS
from bgtrain.store.models import ModelMeta

from .helpers import write_episode

REPO = Path(__file__).resolve().parent.parent
STEPS = 5


def _publish(store: ModelStore, batch: list[str], obs_count: float) -> None:
    arrays = {"w": np.zeros(3, np.float32), "obs_count": np.array(obs_count)}
    store.publish(arrays, ModelMeta(version=0, obs_dim=4, n_actions=2, batch=tuple(batch)))


def _reason(path: Path, reason: str) -> None:
    path.with_name(path.name + ".reason.json").write_text(json.dumps({"reason": reason}))


def test_the_audit_counts_every_broken_guarantee_exactly(tmp_path):
    root = TrainingRoot(tmp_path / "root").ensure()
    day = root.archive / "2026-01-01"
    log = tmp_path / "writer.txt"
    names = [f"g{i}.npz" for i in range(8)]
    log.write_text(
        "".join(f"valid {n} {STEPS}\n" for n in names)
        + "invalid bad.npz 0\nstale old.npz 5\nfailed refused.npz 0\n"
    )
    # g0, g1: archived, trained once each (v1, v2). g2: archived and in two batches.
    for name in ("g0.npz", "g1.npz", "g2.npz"):
        write_episode(day, name, STEPS)
    store = ModelStore(root, history_size=None)
    # g2 twice, and one batch applied to the weights twice: 5 samples more than listed.
    _publish(store, ["g0.npz", "g2.npz"], 2 * STEPS)
    _publish(store, ["g1.npz", "g2.npz"], 6 * STEPS)
    # g3: lost. g4: archived and back in buffer/ (duplicated; archived in no batch).
    write_episode(day, "g4.npz", STEPS)
    write_episode(root.buffer, "g4~1.npz", STEPS)
    # g5: a valid game quarantined as "file not found"; g6: staled without a reason.
    write_episode(root.quarantine, "g5.npz", STEPS)
    _reason(root.quarantine / "g5.npz", "file not found")
    write_episode(root.stale, "g6.npz", STEPS)
    # g7 waits in processing/; the invalid and stale files are where they belong.
    write_episode(root.processing, "g7.npz", STEPS)
    (root.quarantine / "bad.npz").write_bytes(b"junk")
    _reason(root.quarantine / "bad.npz", "not a zip file")
    write_episode(root.stale, "old.npz", STEPS)
    _reason(root.stale / "old.npz", "older than max_file_age")
    # A writer's dot-temp moved into the archive, and one left in buffer/.
    (day / ".g9.npz.1-ab.tmp").write_bytes(b"x")
    (root.buffer / ".g8.npz.1-cd.tmp").write_bytes(b"12345")

    expected = Expected()
    read_writer_log(log, expected)
    found = audit(root, expected)

    assert found.written == {"valid": 8, "invalid": 1, "stale": 1}
    assert expected.failed == {"refused.npz"}
    assert found.lost == ["g3.npz"]
    assert found.duplicated == ["g4.npz: buffer/g4~1.npz, archive/g4.npz"]
    assert found.trained_twice == ["g2.npz"]
    assert found.archived_unlisted == ["g4.npz"]
    assert found.listed_unarchived == []
    assert found.obs_excess == 6 * STEPS - 4 * STEPS  # the weights saw 30 samples, 20 listed
    assert found.without_reason == ["stale/g6.npz"]
    assert found.misplaced == {
        "g5.npz": "valid file in quarantine/: file not found",
        "g6.npz": "valid file in stale/",
    }
    assert found.writer_temps_taken == ["archive/.g9.npz.1-ab.tmp"]
    assert (found.writer_temps_left, found.writer_temps_bytes) == (1, 5)
    assert found.waiting == 2  # g4~1 in buffer/, g7 in processing/
    assert found.versions == 2 and found.history_gaps == []

    # Each broken guarantee fails the suite (its exit code, and this module's test).
    broken = {row.label.split(" (")[0]: row.median for row in failures(rows_for(
        Figures(), found, Plan.make(True, 0)))}  # fmt: skip
    assert broken == {
        "episodes lost": 1,
        "episodes duplicated": 1,
        "episodes trained twice": 1,
        "samples trained into the weights other than once": 10,
        "exactly-once breaks": 1,
        "set-aside files without NAME.reason.json, or split and the split not finished": 1,
        "valid games set aside, invalid or too old ones archived": 2,
        "writer dot-temps taken as episodes": 1,
        # The counters were never written here: they disagree with the root.
        "counters.json totals that disagree with the root": 4,
    }


def test_a_split_game_is_accounted_for_by_its_pieces(tmp_path):
    root = TrainingRoot(tmp_path / "root").ensure()
    split, day = root.data / "split", root.archive / "2026-01-01"
    log = tmp_path / "writer.txt"
    log.write_text("valid long.npz 12\nvalid cut.npz 12\n")
    # long.npz: split in two, both pieces trained once; cut.npz: its split never finished,
    # and its second piece is gone.
    for name, pieces, complete in (("long", 2, True), ("cut", 2, False)):
        write_episode(split, f"{name}.npz", 12)
        names = [f"{name}.p{k}of{pieces}.npz" for k in (1, 2)]
        (split / f"{name}.npz.reason.json").write_text(
            json.dumps({"reason": "long", "pieces": names, "complete": complete})
        )
    for name in ("long.p1of2.npz", "long.p2of2.npz", "cut.p1of2.npz"):
        write_episode(day, name, 6)
    store = ModelStore(root, history_size=None)
    _publish(store, ["long.p1of2.npz", "cut.p1of2.npz"], 12)
    _publish(store, ["long.p2of2.npz"], 18)

    expected = Expected()
    read_writer_log(log, expected)
    found = audit(root, expected)

    assert found.lost == ["cut.p2of2.npz"]
    assert found.incomplete_splits == ["cut.npz"]
    assert found.unknown == found.without_reason == [] and found.misplaced == {}
    assert found.duplicated == found.trained_twice == found.archived_unlisted == []
    assert found.obs_excess == 0  # three pieces of 6 steps in the weights, 18 samples
    assert found.set_aside == 2


def test_a_write_cut_short_is_not_a_loss_and_a_finished_one_must_arrive(tmp_path):
    log = tmp_path / "mid.txt"
    log.write_text(
        "begin a.npz 100 10.0\ndone a.npz 10.25\nbegin b.npz 100 11.0\n"  # b: killed
    )
    expected = Expected()
    assert read_midwriter_log(log, expected) == [0.25]
    root = TrainingRoot(tmp_path / "root").ensure()
    found = audit(root, expected)
    assert found.lost == ["a.npz"] and found.interrupted_writes == 1


def test_the_faults_section_replaces_its_last_run_and_keeps_the_rest_of_the_page(tmp_path):
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# Benchmarks\n\nhead\n\n### 7. Scale\n\ntable\n")
    write_section(page, f"### {TITLE}\n\nfirst run")
    write_section(page, f"### {TITLE}\n\nsecond run")
    assert page.read_text() == (
        f"# Benchmarks\n\nhead\n\n### 7. Scale\n\ntable\n\n### {TITLE}\n\nsecond run\n"
    )
    assert kept_section(page) == f"\n\n### {TITLE}\n\nsecond run"
    assert kept_section(tmp_path / "none.md") == ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL, SIGSTOP, /proc")
def test_quick_fault_suite_loses_doubles_and_tears_nothing(tmp_path):
    out, results = tmp_path / "faults.md", tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "chaos", "--quick", "--out", str(out),
         "--results", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )  # fmt: skip
    # Exit code 1 and "FAULTS FOUND: ..." when a guarantee was broken: the table says which.
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    rows = json.loads((results / "chaos-quick.json").read_text())["rows"]
    by_label = {row["label"].split(" (")[0]: row for row in rows}
    # Every kind of fault was made for real, at least once.
    kills = by_label["learner SIGKILLs survived"]
    assert kills["median"] >= len(POINTS) + 2, kills["label"]
    for point in (*POINTS, "lock-race winners"):
        assert f"{point} 1" in kills["label"]
    assert by_label["writers SIGKILLed mid-write"]["median"] >= 1
    assert "of 1)" in by_label["simultaneous starts where the refused learner did not name the "
                               "live holder"]["label"]  # fmt: skip
    torn = next(row for row in rows if row["label"].startswith("torn model reads"))
    assert not torn["label"].startswith("torn model reads (of 0 reads)")
    for name in ("episodes lost", "episodes duplicated", "episodes trained twice",
                 "set-aside files without NAME.reason.json, or split and the split not "
                 "finished"):  # fmt: skip
        assert by_label[name]["median"] == 0 and by_label[name]["met"] is True
    assert f"### {TITLE}" in out.read_text("utf-8")
