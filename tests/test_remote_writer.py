"""The remote writer: a game's bytes from another machine stored into buffer/ once."""

from __future__ import annotations

import threading

import pytest

from bgtrain.errors import BgtrainError
from bgtrain.store.episode import load_episode
from bgtrain.store.remote_writer import find_episode, receive_episode
from bgtrain.store.root import TrainingRoot
from bgtrain.store.spool import Spool
from tests.helpers import write_episode

NAME = "game_20261130_120000_001_a0-host-42_Victory.npz"


@pytest.fixture
def sent(tmp_path) -> bytes:
    """The bytes of a real episode file, as a game machine sends them."""
    return write_episode(tmp_path / "game_machine", NAME, tag=7.0).read_bytes()


def test_a_game_is_stored_whole_into_buffer(tmp_path, sent):
    root = TrainingRoot(tmp_path / "root")

    received = receive_episode(root, NAME, sent)

    assert received == (root.buffer / NAME, False)
    assert received.path.read_bytes() == sent
    assert load_episode(received.path).rewards.tolist() == [7.0] * 5
    assert [p.name for p in root.buffer.iterdir()] == [NAME]  # no temp left behind


def test_a_send_retried_after_the_learner_archived_it_is_kept_once(tmp_path, sent):
    root = TrainingRoot(tmp_path / "root")
    receive_episode(root, NAME, sent)
    spool = Spool(root)
    claimed = spool.claim(10)
    archived = spool.archive(claimed, day="2026-11-30")

    again = receive_episode(root, NAME, sent)

    assert again == (archived[0], True)
    assert list(root.buffer.iterdir()) == []
    assert [p for p in root.data.rglob("*.npz")] == archived


def test_a_send_retried_while_it_waits_in_buffer_is_kept_once(tmp_path, sent):
    root = TrainingRoot(tmp_path / "root")
    receive_episode(root, NAME, sent)
    assert receive_episode(root, NAME, sent) == (root.buffer / NAME, True)
    assert len(list(root.buffer.iterdir())) == 1


def test_two_sends_of_one_game_at_once_store_it_once(tmp_path, sent):
    root = TrainingRoot(tmp_path / "root")
    answers = []
    start = threading.Barrier(8)

    def send() -> None:
        start.wait()
        answers.append(receive_episode(root, NAME, sent))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [p.name for p in root.buffer.iterdir()] == [NAME]
    assert sorted(a.duplicate for a in answers) == [False] + [True] * 7


def test_a_name_the_root_never_held_is_not_found(tmp_path, sent):
    root = TrainingRoot(tmp_path / "root")
    receive_episode(root, NAME, sent)
    assert find_episode(root, NAME) == root.buffer / NAME
    assert find_episode(root, "game_20261130_120000_002_a0_Victory.npz") is None


@pytest.mark.parametrize(
    "name",
    ["../game_x.npz", "sub/game_x.npz", ".game_x.npz.123-abcdef01.tmp", "game_x.txt", ""],
)
def test_a_name_that_is_not_an_episode_file_s_is_refused(tmp_path, sent, name):
    root = TrainingRoot(tmp_path / "root")
    with pytest.raises(BgtrainError) as error:
        receive_episode(root, name, sent)
    assert str(error.value) == (
        f"refused an episode sent as {name!r}: not the name of an episode file "
        "(NAME.npz, no folder, not dot-named)"
    )
    assert not root.path.exists() or list(root.data.rglob("*")) == []
