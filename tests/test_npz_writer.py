"""The game's own .npz writer makes files every reader takes as np.savez's."""

import io
import zipfile

import numpy as np
import pytest

from bgtrain.store import npz_writer
from bgtrain.store.episode import build_episode, load_episode, save_episode
from bgtrain.store.npz_writer import npz_bytes

ARRAYS = {
    "states": np.arange(12, dtype=np.float32).reshape(3, 4),
    "actions": np.array([0, 2, 1], dtype=np.int64),
    "empty": np.zeros((0, 4), dtype=np.float32),
    "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    "big_endian": np.array([1.5, -2.0], dtype=">f8"),
    "scalar": np.array(7, dtype=np.int64),
    "flag": np.array(True),
    "meta": np.array('{"outcome": "Victory", "map": "Ödland"}'),
    "record": np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
}


def test_every_reader_gets_back_the_arrays_np_savez_would_give():
    data = npz_bytes(ARRAYS)

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None  # every member's CRC-32 checks
        assert zf.namelist() == [f"{key}.npy" for key in ARRAYS]
        assert {info.compress_type for info in zf.infolist()} == {zipfile.ZIP_STORED}
    reference = io.BytesIO()
    np.savez(reference, **ARRAYS)
    reference.seek(0)
    with np.load(io.BytesIO(data), allow_pickle=False) as got, np.load(reference) as want:
        assert got.files == want.files
        for key in ARRAYS:
            assert got[key].dtype == want[key].dtype, key
            assert got[key].shape == want[key].shape, key
            np.testing.assert_array_equal(got[key], want[key])


def test_each_npy_header_is_padded_to_64_bytes_as_nep_1_asks():
    with zipfile.ZipFile(io.BytesIO(npz_bytes(ARRAYS))) as zf:
        for key, array in ARRAYS.items():
            member = zf.read(f"{key}.npy")
            header_length = int.from_bytes(member[8:10], "little")
            assert member[:8] == b"\x93NUMPY\x01\x00", key
            assert (10 + header_length) % 64 == 0 and member[9 + header_length] == ord("\n")
            assert len(member) == 10 + header_length + array.nbytes, key


def test_an_object_array_is_refused_rather_than_pickled():
    with pytest.raises(ValueError) as info:
        npz_bytes({"bad": np.array([{"a": 1}], dtype=object)})
    assert str(info.value) == "an object array cannot be written without pickle"


def test_an_episode_too_large_for_zip32_is_written_by_np_savez(tmp_path, monkeypatch):
    episode = build_episode(np.ones((5, 4)), [0, 1, 0, 1, 0], [1.0] * 5, meta={"outcome": "Tie"})
    monkeypatch.setattr(npz_writer, "_ZIP32_LIMIT", 100)
    assert npz_bytes(episode.to_arrays()) is None

    loaded = load_episode(save_episode(episode, tmp_path / "e.npz"))

    assert (loaded.length, loaded.outcome) == (5, "Tie")
    with zipfile.ZipFile(tmp_path / "e.npz") as zf:
        assert zf.testzip() is None
