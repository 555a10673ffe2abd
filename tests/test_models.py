"""The model store: atomic publish, history, cheap version checks, rollback (guarantee 4)."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

import bgtrain.store.models as models_module
from bgtrain import InvalidModelError, ModelNotFoundError, ModelStore, TrainingRoot
from bgtrain.store.models import history_name

from .helpers import tiny_model


def publish(store: ModelStore, value: float, batch: tuple[str, ...] = ()):
    arrays, meta = tiny_model(value)
    return store.publish(arrays, meta.__class__(**{**meta.__dict__, "batch": batch}))


def test_publish_writes_latest_and_history_with_meta(tmp_path):
    store = ModelStore(tmp_path)
    assert store.latest_version() is None
    first = publish(store, 1.0, batch=("a.npz", "b.npz"))
    second = publish(store, 2.0)
    assert (first.version, second.version) == (1, 2)
    assert store.latest_version() == 2
    assert store.versions() == [1, 2]
    latest = store.load()
    assert latest.version == 2
    assert latest.meta.obs_dim == 4 and latest.meta.n_actions == 2
    assert latest.meta.created_at
    np.testing.assert_array_equal(latest.arrays["w0"], np.full((4, 8), 2.0, np.float32))
    old = store.load(1)
    assert old.meta.batch == ("a.npz", "b.npz")
    np.testing.assert_array_equal(old.arrays["b0"], np.full(8, 1.0, np.float32))
    leftovers = [p.name for p in tmp_path.rglob(".*")]
    assert leftovers == []


def test_meta_survives_round_trip_with_unknown_keys(tmp_path):
    store = ModelStore(tmp_path)
    arrays, meta = tiny_model()
    meta = meta.__class__(
        version=0,
        obs_dim=4,
        n_actions=2,
        layer_sizes=(64, 64),
        activation="tanh",
        algorithm="ppo",
        hyperparameters={"lr": 3e-4},
        counters={"games": 7},
        extra={"note": "kept"},
    )
    store.publish(arrays, meta)
    loaded = store.load().meta
    assert loaded.layer_sizes == (64, 64)
    assert loaded.hyperparameters == {"lr": 3e-4}
    assert loaded.counters == {"games": 7}
    assert loaded.extra == {"note": "kept"}


def test_latest_version_costs_a_stat_while_unchanged(tmp_path, monkeypatch):
    store = ModelStore(tmp_path)
    publish(store, 1.0)
    assert store.latest_version() == 1
    reads = []
    real = models_module.load_npz
    monkeypatch.setattr(models_module, "load_npz", lambda *a, **k: reads.append(a) or real(*a, **k))
    for _ in range(100):
        assert store.latest_version() == 1
    assert reads == []
    publish(ModelStore(tmp_path), 2.0)  # another process's store
    reads.clear()
    assert store.latest_version() == 2
    assert len(reads) == 1


def test_load_if_newer(tmp_path):
    store = ModelStore(tmp_path)
    assert store.load_if_newer(None) is None
    publish(store, 1.0)
    assert store.load_if_newer(None).version == 1
    assert store.load_if_newer(1) is None
    publish(store, 2.0)
    assert store.load_if_newer(1).version == 2


def test_errors_say_what_is_missing(tmp_path):
    store = ModelStore(tmp_path)
    with pytest.raises(ModelNotFoundError) as exc:
        store.load()
    assert str(exc.value) == (
        f"no model published yet in {tmp_path / 'models'}; the learner publishes one "
        "after its first batch"
    )
    for value in range(4):
        publish(store, value)
    with pytest.raises(ModelNotFoundError) as exc:
        store.load(9)
    assert str(exc.value) == (
        f"version 9 is not in {tmp_path / 'models' / 'history'} (available: 1-4)"
    )


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    root = TrainingRoot(tmp_path).ensure()
    np.savez(root.model_file, w=np.zeros(3))
    with pytest.raises(InvalidModelError, match="no 'meta' entry; not a bgtrain model"):
        ModelStore(root).load()
    np.savez(root.model_file, meta=np.array('{"format": "other/2"}'))
    with pytest.raises(
        InvalidModelError, match=r"not a bgtrain.model/1 model \(format: 'other/2'\)"
    ):
        ModelStore(root).load()


def test_history_keeps_the_last_k_versions(tmp_path):
    store = ModelStore(tmp_path, history_size=3)
    for value in range(6):
        publish(store, value)
    assert store.versions() == [4, 5, 6]
    assert sorted(p.name for p in store.root.history.iterdir()) == [
        history_name(v) for v in (4, 5, 6)
    ]
    assert store.load().version == 6


def test_the_history_size_a_store_is_given_is_the_roots_for_every_other_publisher(tmp_path):
    """A learner with history_size=3, then a publisher that names none (bgtrain rollback,
    RLAgent.save_model): it keeps 3 too, not the default 50."""
    learners = ModelStore(tmp_path, history_size=3)
    publish(learners, 1.0)
    assert TrainingRoot(tmp_path).history_size_file.read_text("utf-8") == '{"history_size": 3}'
    assert models_module.recorded_history_size(tmp_path) == 3
    other = ModelStore(tmp_path)
    for value in range(2, 7):
        publish(other, value)
    assert other.versions() == [4, 5, 6]
    # A store that keeps every version does not speak for the root.
    publish(ModelStore(tmp_path, history_size=None), 7.0)
    assert models_module.recorded_history_size(tmp_path) == 3


def test_a_root_without_a_readable_history_size_keeps_the_default(tmp_path, caplog):
    assert models_module.recorded_history_size(tmp_path) == models_module.DEFAULT_HISTORY_SIZE
    record = TrainingRoot(tmp_path).history_size_file
    record.parent.mkdir(parents=True)
    for text in ("{not json", '{"history_size": 0}', "[3]"):
        record.write_text(text, encoding="utf-8")
        caplog.clear()
        assert models_module.recorded_history_size(tmp_path) == 50
        assert f"{record} holds no history size" in caplog.text


def test_rollback_republishes_an_old_version_as_the_newest(tmp_path):
    store = ModelStore(tmp_path)
    for value in (10.0, 20.0, 30.0):
        publish(store, value, batch=(f"game{value}.npz",))
    meta = store.rollback(1)
    assert meta.version == 4
    latest = store.load()
    assert latest.version == 4
    assert latest.meta.extra["rolled_back_from"] == 1
    assert latest.meta.batch == ()  # it trained on nothing new
    np.testing.assert_array_equal(latest.arrays["w0"], np.full((4, 8), 10.0, np.float32))
    assert store.versions() == [1, 2, 3, 4]


def test_readers_never_see_a_torn_model_while_500_versions_are_published(tmp_path):
    """Guarantee 4: a reader loading in a tight loop sees only whole, consistent models."""
    store = ModelStore(tmp_path, history_size=5)
    publish(store, 1.0)
    done = threading.Event()
    seen: list[int] = []
    failures: list[BaseException] = []

    def reader() -> None:
        reader_store = ModelStore(tmp_path)
        while not done.is_set():
            try:
                model = reader_store.load()
                # Every weight equals the version that wrote it: a torn file cannot pass.
                assert np.all(model.arrays["w0"] == model.version)
                assert np.all(model.arrays["b0"] == model.version)
                seen.append(model.version)
            except BaseException as exc:
                failures.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for version in range(1, 501):
            publish(store, float(version + 1))  # version N+1 holds value N+1
    finally:
        done.set()
        thread.join()
    assert failures == []
    assert len(seen) > 50
    assert seen == sorted(seen)
    assert store.latest_version() == 501


def test_game_side_modules_do_not_import_torch():
    code = (
        "import sys, bgtrain, bgtrain.game.recorder, bgtrain.store.models, bgtrain.store.spool;"
        "import bgtrain.cli;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
