"""The lines of metrics.jsonl: each kind written and read back by one typed record, with
the JSON names users' tools read (SB3 / Sample Factory), and one rule for which record
of a game is the truth."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bgtrain import TrainingRoot
from bgtrain.store.events import (
    BatchEvent,
    GameEvent,
    GameLog,
    GameRefusedEvent,
    GameUnsavedEvent,
    GuardEvent,
    QuarantineEvent,
    StaleEvent,
    append_event,
    parse_event,
    read_events,
    set_aside_event,
)

#: A batch line as bgtrain wrote it before the events were typed (trimmed figures).
OLD_BATCH_LINE = {
    "event": "batch",
    "time": "2026-11-30T16:24:01.123+00:00",
    "t": 1796000000.5,
    "version": 7,
    "train/loss": 0.25,
    "train/policy_gradient_loss": -0.01,
    "train/value_loss": 0.5,
    "train/entropy_loss": -0.6,
    "train/approx_kl": 0.004,
    "train/clip_fraction": 0.1,
    "train/explained_variance": None,
    "train/behaviour_ratio_mean": 1.0,
    "train/n_updates": 10,
    "train/version_diff_min": 0,
    "train/version_diff_avg": 0.5,
    "train/version_diff_max": 1,
    "train/replay_ratio": 2.0,
    "train/replay_version_diff_avg": 1.5,
    "train/replay_version_diff_max": 3,
    "rollout/ep_rew_mean": 21.0,
    "rollout/ep_len_mean": 21.0,
    "rollout/win_rate": None,
    "time/batch_s": 0.05,
    "time/train_s": 0.04,
    "time/fps": 1000.0,
    "batch/files": 2,
    "batch/samples": 42,
    "batch/quarantined": 0,
    "batch/stale": 1,
    "totals/files_processed": 14,
    "totals/batches_trained": 7,
    "totals/total_samples": 300,
    "episodes": [
        {
            "name": "a.npz",
            "return": 20.0,
            "length": 20,
            "outcome": None,
            "policy_version": 6,
            "terminated": True,
        },
        {
            "name": "b.npz",
            "return": 22.0,
            "length": 22,
            "outcome": "Victory",
            "policy_version": 7,
            "terminated": False,
        },
    ],
}


def test_a_batch_line_reads_into_its_record_and_writes_back_the_same_json():
    event = parse_event(json.dumps(OLD_BATCH_LINE))

    assert isinstance(event, BatchEvent)
    assert (event.version, event.loss, event.version_diff_avg, event.files_processed) == (
        7,
        0.25,
        0.5,
        14,
    )
    assert [(g.name, g.return_, g.policy_version) for g in event.episodes] == [
        ("a.npz", 20.0, 6),
        ("b.npz", 22.0, 7),
    ]
    assert event.to_json() == OLD_BATCH_LINE


@pytest.mark.parametrize(
    "line",
    [
        {"event": "game", "time": "T", "t": 1.5, "actor": 0, "return": 9.0, "length": 9,
         "outcome": None, "policy_version": 3, "terminated": True},
        {"event": "game_refused", "t": 1.5, "actor": 1, "length": 4, "policy_version": None,
         "reason": "state has NaN"},
        {"event": "game_unsaved", "t": 1.5, "actor": 1, "name": "x.npz", "reason": "disk full"},
        {"event": "eval", "t": 2.0, "steps": 1000, "version": 4, "episodes": 2, "greedy": True,
         "mean": 10.0, "std": 1.0, "min": 9.0, "max": 11.0, "win_rate": 0.0,
         "returns": [9.0, 11.0], "cut_short": 0, "step_limit": 500},
        {"event": "quarantine", "t": 3.0, "time": "T", "name": "q.npz", "reason": "bad"},
        {"event": "stale", "t": 3.0, "time": "T", "name": "s.npz", "reason": "old"},
        {"event": "guard", "t": 4.0, "restored_version": 5, "at_version": 9,
         "recent_mean": 10.0, "best_mean": 400.0, "baseline": 20.0},
    ],
    ids=lambda line: line["event"],
)  # fmt: skip
def test_every_kind_of_line_round_trips_with_its_json_names(line):
    event = parse_event(json.dumps(line))

    assert event is not None and event.kind == line["event"]
    assert event.to_json() == line


def test_lines_that_are_not_events_are_skipped_not_fatal():
    assert parse_event('{"event": "batch", "version": 1') is None  # torn by a crash
    assert parse_event('{"event": "a_newer_kind", "t": 1}') is None
    assert parse_event("[1, 2]") is None
    assert parse_event('{"event": "game", "unknown_field": 1}') == GameEvent()


def test_append_event_stamps_the_time_and_read_events_gives_them_back_in_order(tmp_path):
    root = TrainingRoot(tmp_path)
    append_event(root, GameEvent(actor=0, return_=1.0, length=1))
    append_event(root, set_aside_event("quarantine", "bad.npz", "not a zip file"))
    append_event(root, set_aside_event("stale", "old.npz", "too old"))
    with open(root.metrics, "a", encoding="utf-8") as f:
        f.write('{"event": "game", "t": 1, "ret')  # a writer killed mid-line

    events = read_events(root)

    assert [type(e) for e in events] == [GameEvent, QuarantineEvent, StaleEvent]
    assert all(isinstance(e.t, float) for e in events)
    assert [(e.name, e.reason) for e in events[1:]] == [
        ("bad.npz", "not a zip file"),
        ("old.npz", "too old"),
    ]


def test_the_run_s_game_events_are_the_games_played_when_there_are_any():
    batch = BatchEvent.from_json(OLD_BATCH_LINE)
    played = [GameEvent(t=float(i), actor=0, return_=float(i), length=i) for i in range(3)]

    log = GameLog().extend([batch, *played, batch])

    assert [g.return_ for g in log] == [0.0, 1.0, 2.0]


def test_without_game_events_the_games_are_those_the_batches_trained_at_the_batch_time():
    batch = BatchEvent.from_json(OLD_BATCH_LINE)

    games = list(GameLog().extend([batch, GameRefusedEvent(t=9.0), GameUnsavedEvent(t=9.0)]))

    assert [(g.name, g.t) for g in games] == [("a.npz", 1796000000.5), ("b.npz", 1796000000.5)]


def test_a_game_log_keeps_only_its_last_games():
    log = GameLog(maxlen=2).extend(GameEvent(return_=float(i)) for i in range(5))

    assert [g.return_ for g in log] == [3.0, 4.0]
    assert [g.return_ for g in log.recent(1)] == [4.0]


def test_an_eval_event_takes_an_evaluation_s_figures_as_they_are():
    from bgtrain.game.evaluation import EvalResult

    result = EvalResult(version=3, greedy=True, returns=[1.0, 3.0], outcomes=["Tie", "Tie"])
    line = dataclasses.replace(result.to_event(steps=50), t=1.0).to_json()

    assert line == {
        "event": "eval", "t": 1.0, "steps": 50, "version": 3, "episodes": 2, "greedy": True,
        "mean": 2.0, "std": 1.0, "min": 1.0, "max": 3.0, "win_rate": 0.0,
        "returns": [1.0, 3.0], "cut_short": 0, "step_limit": None,
    }  # fmt: skip


def test_a_guard_event_has_the_fields_the_stability_benchmark_counts():
    line = GuardEvent(t=1.0, restored_version=2, at_version=5).to_json()

    assert line["event"] == "guard" and line["restored_version"] == 2
