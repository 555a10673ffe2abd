"""The spool: the root's episode folders and every move between them (guarantees 1-3)."""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from bgtrain import Spool, SpoolCounts, SpoolError, TrainingRoot
from bgtrain.store.spool import ARCHIVE_INDEX

from .helpers import write_episode

DAY_NS = 86_400 * 10**9


def put(folder: Path, name: str, mtime_s: float | None = None, data: bytes | None = None) -> Path:
    """A file in ``folder`` (content: its name unless given), with an optional mtime."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(name.encode() if data is None else data)
    if mtime_s is not None:
        os.utime(path, (mtime_s, mtime_s))
    return path


def names(paths) -> list[str]:
    return [Path(p).name for p in paths]


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    root = TrainingRoot(tmp_path / "root").ensure()
    return Spool(root)


# --------------------------------------------------------------------------- pending, claim

NOT_EPISODES = (
    ".game_x.npz.1234-abcd.tmp",  # a writer's temp file
    ".hidden.npz",  # dot-named, even with the right suffix
    "notes.txt",
    "game_y.npz.part",
    "game_z.NPZ.bak",
)


def fill_buffer_with_noise(spool: Spool) -> None:
    buffer = spool.root.buffer
    put(buffer, "c.npz", 300)
    put(buffer, "a.npz", 100)
    put(buffer, "b.npz", 200)
    put(buffer, "d.npz", 200)  # same mtime as b: name decides
    for i, name in enumerate(NOT_EPISODES):
        put(buffer, name, 1 + i)  # older than every episode: still never listed


def test_pending_lists_only_npz_episodes_oldest_first(spool: Spool) -> None:
    fill_buffer_with_noise(spool)

    pending = spool.pending()

    assert names(pending) == ["a.npz", "b.npz", "d.npz", "c.npz"]
    assert all(p.parent == spool.root.buffer for p in pending)


def test_pending_of_missing_buffer_is_empty(tmp_path: Path) -> None:
    assert Spool(tmp_path / "nowhere").pending() == []


def test_claim_moves_at_most_n_oldest_and_never_touches_other_entries(spool: Spool) -> None:
    fill_buffer_with_noise(spool)

    batch = spool.claim(max_files=2)

    assert names(batch) == ["a.npz", "b.npz"]
    assert all(p.parent == spool.root.processing for p in batch)
    assert [p.read_bytes() for p in batch] == [b"a.npz", b"b.npz"]
    assert listing(spool.root.processing) == ["a.npz", "b.npz"]
    assert listing(spool.root.buffer) == sorted(["c.npz", "d.npz", *NOT_EPISODES])
    assert spool.claimed() == batch

    # The rest of the batch after recovery; the noise stays where it is, forever.
    spool.archive(batch)
    assert names(spool.claim(max_files=10)) == ["d.npz", "c.npz"]
    assert listing(spool.root.buffer) == sorted(NOT_EPISODES)


def test_a_backlog_drains_oldest_first_once_each_while_new_games_land(spool: Spool) -> None:
    buffer = spool.root.buffer
    for i in range(30):
        put(buffer, f"old{i:02d}.npz", 1_000 + i)
    claimed = names(spool.archive(spool.claim(max_files=10)))
    for i in range(5):  # games that land while the backlog is being trained on
        put(buffer, f"new{i}.npz", 2_000 + i)
    while batch := spool.claim(max_files=10):
        claimed += names(batch)
        spool.archive(batch)

    assert claimed == [f"old{i:02d}.npz" for i in range(30)] + [f"new{i}.npz" for i in range(5)]
    assert listing(buffer) == []


def test_a_file_gone_since_it_was_listed_is_skipped_and_the_next_one_claimed(
    spool: Spool, tmp_path: Path
) -> None:
    buffer = spool.root.buffer
    for i in range(12):
        put(buffer, f"g{i:02d}.npz", 1_000 + i)
    assert names(spool.claim(max_files=10)) == [f"g{i:02d}.npz" for i in range(10)]
    spool.archive(spool.claimed())
    os.replace(buffer / "g10.npz", tmp_path / "g10.npz")  # taken away by someone else
    put(buffer, "g12.npz", 1_012)

    assert names(spool.claim(max_files=10)) == ["g11.npz", "g12.npz"]
    assert spool.upcoming(5) == []


def test_upcoming_is_what_claim_takes_next(spool: Spool) -> None:
    fill_buffer_with_noise(spool)

    assert names(spool.upcoming(3)) == ["a.npz", "b.npz", "d.npz"]
    assert names(spool.claim(max_files=3)) == ["a.npz", "b.npz", "d.npz"]
    assert names(spool.upcoming(3)) == ["c.npz"]


def test_claim_of_empty_buffer_is_empty(spool: Spool) -> None:
    assert spool.claim() == []
    assert spool.claim(max_steps=5) == []


def test_claim_max_files_must_be_positive(spool: Spool) -> None:
    put(spool.root.buffer, "a.npz")
    with pytest.raises(SpoolError) as excinfo:
        spool.claim(max_files=0)
    assert str(excinfo.value) == "max_files must be at least 1, got 0"
    assert listing(spool.root.buffer) == ["a.npz"]


@pytest.fixture
def steps_buffer(spool: Spool) -> Spool:
    """Episodes of 3, 4 and 5 steps, oldest first."""
    for i, steps in enumerate((3, 4, 5)):
        path = write_episode(spool.root.buffer, f"e{i}.npz", steps=steps)
        os.utime(path, (1000 + i, 1000 + i))
    return spool


@pytest.mark.parametrize(
    ("max_files", "max_steps", "expected"),
    [
        (10, 7, ["e0.npz", "e1.npz"]),  # 3 + 4 = 7: the 5-step file would exceed
        (10, 6, ["e0.npz"]),  # 3 + 4 > 6: stops before
        (10, 12, ["e0.npz", "e1.npz", "e2.npz"]),
        (10, 2, ["e0.npz"]),  # one file always, however long
        (10, 1, ["e0.npz"]),
        (2, 100, ["e0.npz", "e1.npz"]),  # max_files still applies
        (1, None, ["e0.npz"]),
    ],
)
def test_claim_max_steps(steps_buffer: Spool, max_files, max_steps, expected) -> None:
    batch = steps_buffer.claim(max_files=max_files, max_steps=max_steps)
    assert names(batch) == expected
    assert listing(steps_buffer.root.processing) == expected


def test_claim_refuses_while_processing_holds_a_batch(spool: Spool) -> None:
    for i in range(3):
        put(spool.root.buffer, f"g{i}.npz", 100 + i)
    first = spool.claim(max_files=2)

    with pytest.raises(SpoolError) as excinfo:
        spool.claim()

    assert str(excinfo.value) == (
        f"{spool.root.processing} still holds 2 file(s) of an earlier batch; "
        "run start-up recovery (Spool.recover) before claiming"
    )
    assert spool.claimed() == first
    assert listing(spool.root.buffer) == ["g2.npz"]
    # A fresh Spool (a restarted learner) refuses too.
    with pytest.raises(SpoolError, match="still holds 2 file"):
        Spool(spool.root).claim()


def test_claim_ignores_non_episode_leftovers_in_processing(spool: Spool) -> None:
    put(spool.root.processing, ".x.npz.1-ab.tmp")
    put(spool.root.processing, "readme.txt")
    put(spool.root.buffer, "a.npz")
    assert names(spool.claim()) == ["a.npz"]


# --------------------------------------------------------------------------- archive


def test_archive_into_today_then_given_day(spool: Spool) -> None:
    for name in ("a.npz", "b.npz", "c.npz"):
        put(spool.root.buffer, name)
    batch = spool.claim()
    before = datetime.now().strftime("%Y-%m-%d")

    moved = spool.archive(batch[:2])

    after = datetime.now().strftime("%Y-%m-%d")
    day = moved[0].parent.name
    assert day in (before, after)
    assert moved == [spool.root.archive / day / "a.npz", spool.root.archive / day / "b.npz"]
    assert [p.read_bytes() for p in moved] == [b"a.npz", b"b.npz"]

    other = spool.archive(batch[2:], day="2024-02-29")
    assert other == [spool.root.archive / "2024-02-29" / "c.npz"]
    assert spool.claimed() == []
    assert spool.counts() == SpoolCounts(buffer=0, processing=0, archive=3, stale=0, quarantine=0)
    assert spool.archive([]) == []


def test_archive_never_overwrites(spool: Spool) -> None:
    name = "game_20260101_120000_000_a_Victory.npz"
    day = "2026-01-01"
    for generation in range(3):
        put(spool.root.buffer, name, data=f"generation {generation}".encode())
        spool.archive(spool.claim(), day=day)

    folder = spool.root.archive / day
    stem = name.removesuffix(".npz")
    assert listing(folder) == sorted([name, f"{stem}~1.npz", f"{stem}~2.npz"])
    assert (folder / name).read_bytes() == b"generation 0"
    assert (folder / f"{stem}~1.npz").read_bytes() == b"generation 1"
    assert (folder / f"{stem}~2.npz").read_bytes() == b"generation 2"
    assert spool.archive_count() == 3


def test_counts(spool: Spool) -> None:
    for i in range(9):
        put(spool.root.buffer, f"g{i}.npz", 100 + i)
    put(spool.root.buffer, ".g9.npz.1-ab.tmp")
    batch = spool.claim(max_files=6)
    spool.archive(batch[:2], day="2026-01-01")
    spool.archive(batch[2:3], day="2026-01-02")
    spool.quarantine(batch[3], "bad")
    spool.mark_stale(batch[4], "too old")
    # batch[5] is still in processing/; g6..g8 wait in buffer/

    assert spool.counts() == SpoolCounts(buffer=3, processing=1, archive=3, stale=1, quarantine=1)
    assert Spool(spool.root).counts() == spool.counts()


def test_counts_of_an_empty_root(tmp_path: Path) -> None:
    assert Spool(tmp_path / "nothing").counts() == SpoolCounts(0, 0, 0, 0, 0)


# --------------------------------------------------------------------------- set aside


@pytest.mark.parametrize("kind", ["quarantine", "stale"])
def test_set_aside_writes_reason_file(spool: Spool, kind: str) -> None:
    path = put(spool.root.buffer, "g.npz", data=b"0123456789")
    (claimed,) = spool.claim()
    t0 = datetime.now().astimezone()

    if kind == "quarantine":
        moved = spool.quarantine(claimed, "'rewards' has NaN at [3]", error="ValueError: nan")
        folder, error = spool.root.quarantine, "ValueError: nan"
    else:
        moved = spool.mark_stale(claimed, "policy version 3 is 12 behind 15")
        folder, error = spool.root.stale, None

    assert moved == folder / "g.npz"
    assert moved.read_bytes() == b"0123456789"
    assert not path.exists() and not claimed.exists()
    reason_file = folder / "g.npz.reason.json"
    record = json.loads(reason_file.read_text("utf-8"))
    assert record["name"] == "g.npz"
    assert record["reason"] == (
        "'rewards' has NaN at [3]" if kind == "quarantine" else "policy version 3 is 12 behind 15"
    )
    assert record["error"] == error
    assert record["size"] == 10
    assert record["from"] == "processing"
    when = datetime.fromisoformat(record["time"])
    assert when.tzinfo is not None
    assert abs((when - t0).total_seconds()) < 5
    assert spool.reason(moved) == record
    # The reason file is not an episode.
    assert getattr(spool.counts(), kind) == 1


def test_set_aside_name_clash_keeps_both_with_their_reasons(spool: Spool) -> None:
    for generation in range(2):
        put(spool.root.buffer, "g.npz", data=f"gen {generation}".encode())
        (claimed,) = spool.claim()
        moved = spool.quarantine(claimed, f"reason {generation}")
    assert moved == spool.root.quarantine / "g~1.npz"
    assert spool.reason(spool.root.quarantine / "g.npz")["reason"] == "reason 0"
    assert spool.reason(moved)["reason"] == "reason 1"
    assert spool.reason(moved)["name"] == "g~1.npz"
    assert (spool.root.quarantine / "g.npz").read_bytes() == b"gen 0"
    assert moved.read_bytes() == b"gen 1"


def test_quarantine_straight_from_buffer(spool: Spool) -> None:
    path = put(spool.root.buffer, "g.npz")
    moved = spool.quarantine(path, "is a folder")
    assert spool.reason(moved)["from"] == "buffer"


def test_reason_of_a_file_without_one_is_none(spool: Spool) -> None:
    assert spool.reason(put(spool.root.quarantine, "x.npz")) is None


# --------------------------------------------------------------------------- recover


def test_recover_archives_trained_and_returns_the_rest(spool: Spool) -> None:
    root = spool.root
    for i in range(4):
        put(root.buffer, f"g{i}.npz", 100 + i)
    spool.claim()
    # What must survive recovery: everything that is not a learner temp in state/.
    keep = [
        put(root.buffer, ".g9.npz.77-aa.tmp"),  # a game's write in progress
        put(root.processing, "notes.txt"),
        put(root.processing, ".odd.npz.1-ab.tmp"),
        put(root.state, "learner.lock"),
        put(root.state, ".hidden"),
        put(root.state, "counters.json.tmp"),  # not dot-named: not a temp file
    ]
    temps = [put(root.state, ".archive_index.json.55-cd.tmp"), put(root.state, ".m.1-ff.tmp")]

    day_before = datetime.now().strftime("%Y-%m-%d")
    recovery = Spool(root).recover({"g1.npz", "g3.npz", "not-here.npz"})
    day_after = datetime.now().strftime("%Y-%m-%d")

    assert names(recovery.archived) == ["g1.npz", "g3.npz"]
    assert all(p.parent.parent == root.archive for p in recovery.archived)
    assert recovery.archived[0].parent.name in (day_before, day_after)
    assert names(recovery.returned) == ["g0.npz", "g2.npz"]
    assert recovery.returned == [root.buffer / "g0.npz", root.buffer / "g2.npz"]
    assert sorted(recovery.temps_removed) == sorted(temps)
    assert not any(t.exists() for t in temps)
    assert all(k.exists() for k in keep)
    assert [p.read_bytes() for p in recovery.archived] == [b"g1.npz", b"g3.npz"]
    assert [p.read_bytes() for p in recovery.returned] == [b"g0.npz", b"g2.npz"]
    assert spool.claimed() == []
    # After recovery the learner can claim again, the returned ones first (oldest).
    assert names(spool.claim()) == ["g0.npz", "g2.npz"]


def test_recover_with_nothing_to_do(spool: Spool) -> None:
    put(spool.root.buffer, "a.npz")
    recovery = spool.recover(set())
    assert (recovery.archived, recovery.returned, recovery.temps_removed) == ([], [], [])
    assert listing(spool.root.buffer) == ["a.npz"]


def test_recover_returns_without_overwriting_a_newer_file_of_the_same_name(spool: Spool) -> None:
    put(spool.root.buffer, "g.npz", data=b"first")
    spool.claim()
    put(spool.root.buffer, "g.npz", data=b"second")
    (returned,) = spool.recover(()).returned
    assert returned == spool.root.buffer / "g~1.npz"
    assert sorted(p.read_bytes() for p in spool.root.buffer.iterdir()) == [b"first", b"second"]


# --------------------------------------------------------------------------- requeue


def set_aside(spool: Spool, kind: str, *file_names: str) -> list[Path]:
    """Put files through buffer -> processing -> stale/quarantine, with old mtimes."""
    for name in file_names:
        put(spool.root.buffer, name, mtime_s=1_000_000)
    out = []
    for path in spool.claim(max_files=len(file_names)):
        if kind == "quarantine":
            out.append(spool.quarantine(path, f"bad {path.name}"))
        else:
            out.append(spool.mark_stale(path, f"old {path.name}"))
    return out


@pytest.mark.parametrize("kind", ["quarantine", "stale"])
def test_requeue_named_files(spool: Spool, kind: str) -> None:
    set_aside(spool, kind, "a.npz", "b.npz", "c.npz")
    folder = getattr(spool.root, kind)
    t0 = time.time()

    moved = spool.requeue(kind, ["c.npz", "a.npz"])

    assert moved == [spool.root.buffer / "c.npz", spool.root.buffer / "a.npz"]
    assert [p.read_bytes() for p in moved] == [b"c.npz", b"a.npz"]
    for path in moved:  # their age starts again
        assert path.stat().st_mtime >= t0 - 2
    assert listing(folder) == ["b.npz", "b.npz.reason.json", "requeued"]
    kept = listing(folder / "requeued")
    assert len(kept) == 2
    assert sorted(k.split("_", 2)[-1] for k in kept) == [
        "a.npz.reason.json",
        "c.npz.reason.json",
    ]
    for k in kept:  # the history is kept whole
        record = json.loads((folder / "requeued" / k).read_text("utf-8"))
        assert record["reason"].split()[-1] == record["name"]
    assert getattr(spool.counts(), kind) == 1
    assert spool.counts().buffer == 2


@pytest.mark.parametrize("all_names", [None, []])
def test_requeue_all(spool: Spool, all_names) -> None:
    set_aside(spool, "quarantine", "b.npz", "a.npz")
    moved = spool.requeue("quarantine", all_names)
    assert moved == [spool.root.buffer / "a.npz", spool.root.buffer / "b.npz"]
    assert listing(spool.root.quarantine) == ["requeued"]
    assert len(listing(spool.root.quarantine / "requeued")) == 2
    assert spool.requeue("quarantine") == []


def test_requeue_unknown_name_moves_nothing(spool: Spool) -> None:
    set_aside(spool, "quarantine", "a.npz", "b.npz")
    before = {p: p.read_bytes() for p in spool.root.path.rglob("*") if p.is_file()}

    with pytest.raises(SpoolError) as excinfo:
        spool.requeue("quarantine", ["a.npz", "nope.npz", "b.npz.reason.json"])

    assert str(excinfo.value) == (
        f"no file named 'nope.npz', 'b.npz.reason.json' in {spool.root.quarantine}"
        " (2 file(s) there)"
    )
    after = {p: p.read_bytes() for p in spool.root.path.rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.parametrize("source", ["archive", "buffer", "processing", ""])
def test_requeue_from_a_bad_source_raises(spool: Spool, source: str) -> None:
    set_aside(spool, "quarantine", "a.npz")
    with pytest.raises(SpoolError) as excinfo:
        spool.requeue(source)  # type: ignore[arg-type]
    assert str(excinfo.value) == f"can only requeue from quarantine or stale, not {source!r}"
    assert listing(spool.root.quarantine) == ["a.npz", "a.npz.reason.json"]


def test_requeue_into_a_taken_name_does_not_overwrite(spool: Spool) -> None:
    set_aside(spool, "stale", "g.npz")
    put(spool.root.buffer, "g.npz", data=b"newer game")
    (moved,) = spool.requeue("stale", ["g.npz"])
    assert moved == spool.root.buffer / "g~1.npz"
    assert moved.read_bytes() == b"g.npz"
    assert (spool.root.buffer / "g.npz").read_bytes() == b"newer game"


def test_requeue_same_name_twice_moves_it_once(spool: Spool) -> None:
    set_aside(spool, "quarantine", "a.npz", "b.npz")
    moved = spool.requeue("quarantine", ["a.npz", "a.npz"])
    assert moved == [spool.root.buffer / "a.npz"]
    assert listing(spool.root.quarantine) == ["b.npz", "b.npz.reason.json", "requeued"]


# --------------------------------------------------------------------------- archive_count


def make_archive(root: TrainingRoot, per_day: dict[str, int]) -> None:
    """Empty ``*.npz`` files straight into archive/DAY/ (cheap: hard links to one empty
    file where the file system allows), plus some non-episodes."""
    seed = put(root.path, "empty-seed", data=b"")
    for day, n in per_day.items():
        folder = root.archive / day
        folder.mkdir(parents=True)
        for i in range(n):
            try:
                os.link(seed, folder / f"g{i:05d}.npz")
            except OSError:
                os.close(os.open(folder / f"g{i:05d}.npz", os.O_CREAT | os.O_WRONLY))
        put(folder, ".g.npz.1-ab.tmp")
        put(folder, "readme.txt")
        # An archive built earlier: a later change by hand is sure to move the mtime.
        past = time.time_ns() - DAY_NS
        os.utime(folder, ns=(past, past))


class ScandirSpy:
    """Wraps ``os.scandir`` and records which folders were listed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.listed: list[Path] = []
        real = os.scandir

        def spy(path=".", *args, **kwargs):
            if not isinstance(path, int):  # not an open folder's fd (rmtree)
                self.listed.append(Path(os.fsdecode(path)).resolve())
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, "scandir", spy)

    def day_folders_listed(self, root: TrainingRoot) -> list[str]:
        archive = root.archive.resolve()
        return [p.name for p in self.listed if p.parent == archive]


PER_DAY = {"2026-01-01": 9000, "2026-01-02": 7000, "2026-01-03": 4000}


def test_archive_count_does_not_rescan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = TrainingRoot(tmp_path / "root").ensure()
    make_archive(root, PER_DAY)
    total = sum(PER_DAY.values())
    spool = Spool(root)

    assert spool.archive_count() == total  # cold: lists each day folder once

    spy = ScandirSpy(monkeypatch)
    assert spool.archive_count() == total
    assert spool.counts().archive == total
    assert spy.listed, "the spy saw nothing: archive_count no longer uses os.scandir?"
    assert spy.day_folders_listed(root) == []


def test_archive_index_is_trusted_by_another_process_until_a_hand_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = TrainingRoot(tmp_path / "root").ensure()
    make_archive(root, PER_DAY)
    total = sum(PER_DAY.values())
    learner = Spool(root)
    assert learner.archive_count() == total
    put(root.buffer, "new.npz")
    learner.archive(learner.claim(), day="2026-01-03")
    total += 1
    assert (root.state / ARCHIVE_INDEX).is_file()

    # A monitor: another process, so an empty in-memory cache; it trusts the index.
    spy = ScandirSpy(monkeypatch)
    monitor = Spool(root)
    assert monitor.archive_count() == total
    assert spy.day_folders_listed(root) == []

    # A person drops a file into an old day by hand: only that day is listed again.
    put(root.archive / "2026-01-01", "by_hand.npz")
    spy.listed.clear()
    assert Spool(root).archive_count() == total + 1
    assert spy.day_folders_listed(root) == ["2026-01-01"]
    spy.listed.clear()
    assert monitor.archive_count() == total + 1
    assert learner.archive_count() == total + 1
    # ...and a file taken away by hand.
    (root.archive / "2026-01-02" / "g00000.npz").unlink()
    assert monitor.archive_count() == total
    assert Spool(root).archive_count() == total


def test_archive_index_lost_or_corrupt_is_rebuilt_by_a_rescan(tmp_path: Path) -> None:
    root = TrainingRoot(tmp_path / "root").ensure()
    make_archive(root, {"2026-01-01": 30, "2026-01-02": 20})
    spool = Spool(root)
    put(root.buffer, "new.npz")
    spool.archive(spool.claim(), day="2026-01-02")
    for broken in ("{not json", '{"2026-01-01": {"count": "x"}}', "[1, 2]"):
        (root.state / ARCHIVE_INDEX).write_text(broken, "utf-8")
        assert Spool(root).archive_count() == 51
    (root.state / ARCHIVE_INDEX).unlink()
    assert Spool(root).archive_count() == 51


# --------------------------------------------------------------------------- nothing deleted

N_FILES = 50


def all_episode_contents(root: TrainingRoot) -> Counter:
    """Content of every episode entry anywhere in the five folders."""
    seen: Counter = Counter()
    folders = [root.buffer, root.processing, root.stale, root.quarantine]
    if root.archive.is_dir():
        folders += [d for d in root.archive.iterdir() if d.is_dir()]
    for folder in folders:
        for entry in folder.iterdir():
            if entry.name.endswith(".npz") and not entry.name.startswith("."):
                seen[entry.read_bytes()] += 1
    return seen


def real_counts(root: TrainingRoot) -> SpoolCounts:
    def n(folder: Path) -> int:
        return sum(1 for p in folder.glob("*.npz") if not p.name.startswith("."))

    archive = sum(n(d) for d in root.archive.iterdir() if d.is_dir())
    return SpoolCounts(
        n(root.buffer), n(root.processing), archive, n(root.stale), n(root.quarantine)
    )


@pytest.mark.parametrize("seed", range(6))
def test_nothing_is_lost_or_duplicated_by_any_sequence_of_moves(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    root = TrainingRoot(tmp_path / "root").ensure()
    written: Counter = Counter()
    used_names: list[str] = []
    reasons_written = {"quarantine": 0, "stale": 0}

    def game_writes(name: str) -> None:
        data = f"episode #{sum(written.values())} seed {seed} {rng.random()}".encode()
        put(root.buffer, name, mtime_s=rng.uniform(1e9, 2e9), data=data)
        written[data] += 1
        used_names.append(name)

    for i in range(N_FILES):
        game_writes(f"game_20260101_{i:06d}_000_a_Victory.npz")

    spool = Spool(root)
    days = ["2026-01-01", "2026-01-02"]
    ops = ["claim", "archive", "quarantine", "stale", "recover", "requeue", "write", "restart"]
    for _ in range(250):
        op = rng.choice(ops)
        claimed = spool.claimed()
        if op == "claim":
            if claimed:
                with pytest.raises(SpoolError):
                    spool.claim()
            else:
                max_steps = rng.choice([None, 1, 10])
                spool.claim(max_files=rng.randint(1, 8), max_steps=max_steps)
        elif op == "archive" and claimed:
            spool.archive(rng.sample(claimed, rng.randint(1, len(claimed))), day=rng.choice(days))
        elif op in ("quarantine", "stale") and claimed:
            path = rng.choice(claimed)
            if op == "quarantine":
                moved = spool.quarantine(path, "bad", error="boom")
            else:
                moved = spool.mark_stale(path, "old")
            reasons_written[op] += 1
            assert spool.reason(moved)["name"] == moved.name
        elif op == "recover":
            trained = {p.name for p in claimed if rng.random() < 0.5} | {"ghost.npz"}
            spool.recover(trained)
        elif op == "requeue":
            source = rng.choice(["quarantine", "stale"])
            folder = getattr(root, source)
            available = sorted(p.name for p in folder.glob("*.npz"))
            if available and rng.random() < 0.7:
                spool.requeue(source, rng.sample(available, rng.randint(1, len(available))))
            else:
                spool.requeue(source)
        elif op == "write":
            # A new game that happens to reuse a name seen before (exercises ``~N``).
            name = rng.choice(used_names)
            if not (root.buffer / name).exists():
                game_writes(name)
        elif op == "restart":
            spool = Spool(root)

        assert all_episode_contents(root) == written
        assert spool.counts() == real_counts(root)

    # Every reason ever written is kept: beside its file or in SOURCE/requeued/.
    for source, n in reasons_written.items():
        folder = getattr(root, source)
        for episode in folder.glob("*.npz"):
            assert spool.reason(episode)["name"] == episode.name
        kept = list(folder.glob("*.reason.json")) + list(folder.glob("requeued/*.reason.json"))
        assert len(kept) == n
    assert Spool(root).counts() == real_counts(root)
    # Finally everything can be trained: recover, requeue all, claim and archive it all.
    spool.recover(())
    spool.requeue("quarantine")
    spool.requeue("stale")
    while batch := spool.claim(max_files=7):
        spool.archive(batch)
    assert all_episode_contents(root) == written
    assert Spool(root).archive_count() == sum(written.values())
