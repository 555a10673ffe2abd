"""StarCraft II on the AI Arena ladder, without the game: game endings and the game time
limit, the ladder mode of ``LearningBot`` (its ``data/`` folder, games saved as they go and
kept when the bot is killed, per-opponent openings, the size budget, the background
learner), the ladder entry point's arguments, and the ``access`` seam; all on the real
recorded game states of tests/test_sc2.py."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sc2")  # the [sc2] extra (burnysc2)

from sc2.client import Client
from sc2.data import Result
from sc2.game_state import GameState

from bgtrain import ModelStore, TrainingRoot
from bgtrain.errors import SettingsError
from bgtrain.game.policy import Policy
from bgtrain.game.root_access import LocalRoot
from bgtrain.integrations.sc2 import LearningBot, Strategy, sc2_state
from bgtrain.integrations.sc2.ladder import (
    KILLED,
    OpponentBook,
    enforce_budget,
    folder_bytes,
    ladder_arguments,
    ladder_portconfig,
)
from bgtrain.integrations.sc2.settings import LadderSettings, Sc2RunConfig, ladder_settings_table
from bgtrain.store.episode import build_episode, save_episode

from .helpers import wait_until
from .test_sc2 import (
    REPO,
    Recorded,
    changed,
    episodes_by_outcome,
    load_recorded,
    play_game,
    publish_model,
    put_in_state,
)

CLI_TIMEOUT_S = 120


def ladder(tmp_path: Path, **changes: Any) -> LadderSettings:
    """Ladder settings on ``tmp_path/data``, no background learner unless asked."""
    return LadderSettings(data_dir=tmp_path / "data", **{"background_learning": False, **changes})


def step_to(bot: LearningBot, recorded: Recorded, iteration: int, seconds: float) -> None:
    observation = changed(recorded.observation, seconds=seconds, minerals=50 + iteration)
    bot._prepare_step(GameState(observation), recorded.game_info)
    asyncio.run(bot.on_step(iteration))


# --------------------------------------------------------------------------- endings


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (Result.Tie, "the game ended in a tie (a game time limit)"),
        (Result.Undecided, "the game ended undecided"),
    ],
)
def test_a_tie_or_an_undecided_game_is_saved_cut_short(
    result: Result, reason: str, tmp_path: Path
) -> None:
    """Before: saved as terminated (a tie's value 0 taught as if the game had ended)."""
    root = TrainingRoot(tmp_path / "root")
    bot = LearningBot(root)
    play_game(bot, load_recorded("AbyssalReefLE"), [(0.0, 50), (4.5, 120)], result)

    [(outcome, ep)] = episodes_by_outcome(root).items()

    assert outcome == "Tie cut short" and not ep.terminated
    np.testing.assert_array_equal(ep.last_state, sc2_state(bot))  # the learner bootstraps
    assert ep.meta["reason"] == reason
    assert ep.rewards.tolist() == [0.0, 0.0]


class LeavingClient(Client):
    """The game's client without the game: what the bot asks it is kept, and the real
    ``leave`` runs (it marks the leaver's defeat, as against the real game)."""

    def __init__(self) -> None:
        super().__init__(True)
        self._player_id = 1  # as joining the game sets it
        self.requests: list[str] = []

    async def _execute(self, **kwargs: Any) -> Any:
        self.requests.extend(kwargs)


def test_the_game_time_limit_leaves_a_stalemate_saved_as_cut_short(tmp_path: Path) -> None:
    root = TrainingRoot(tmp_path / "root")
    recorded = load_recorded("AbyssalReefLE")
    bot = put_in_state(LearningBot(root, max_game_minutes=1.0), recorded, first_step=True)
    client = bot.client = LeavingClient()
    asyncio.run(bot.on_start())
    for iteration, seconds in enumerate((0.0, 4.5, 59.0)):
        step_to(bot, recorded, iteration, seconds)
    assert client.requests == []

    step_to(bot, recorded, 3, 60.0)  # the limit: saved, then the bot leaves
    step_to(bot, recorded, 4, 60.5)  # burnysc2 may step it once more: nothing happens
    asyncio.run(bot.on_end(client._game_result[1]))  # the leaver's defeat: ignored

    assert client.requests == ["leave_game"]
    [(outcome, ep)] = episodes_by_outcome(root).items()
    assert outcome == "Tie cut short" and ep.length == 3
    assert ep.meta["reason"] == "the game time limit of 1 minutes was reached"
    assert ep.last_state[8] == pytest.approx(60.0 / 1000)  # the game time at the limit


def test_sc2_run_config_has_a_game_time_limit_that_reaches_the_bot(tmp_path: Path) -> None:
    from bgtrain.integrations.sc2.game import run_sc2
    from bgtrain.learn.settings import LearnerSettings

    from .test_engine import ThreadEngine
    from .test_sc2 import RecordedGames

    class LimitSeen(RecordedGames):
        def play(self, bot: LearningBot, map_name: str, race: str, difficulty: str) -> None:
            limits.append(bot.max_game_minutes)
            super().play(bot, map_name, race, difficulty)

    assert Sc2RunConfig().max_game_minutes == 30.0
    with pytest.raises(SettingsError, match="greater than 0"):
        Sc2RunConfig(max_game_minutes=0)
    config = Sc2RunConfig(
        root=tmp_path / "root",
        bot="bgtrain.integrations.sc2.bot:LearningBot",
        games=1,
        map="AbyssalReefLE",
        difficulty="Easy",
        max_game_minutes=12.5,
        learner=LearnerSettings(n_epochs=1, verbose=False),
    )
    games, limits = LimitSeen(), []

    assert run_sc2(config, [].append, engine=ThreadEngine(), games=games) == 0

    assert limits == [12.5]


# --------------------------------------------------------------------------- the access seam


class CountingRoot(LocalRoot):
    """Another root access (as a cluster's game has one): the root on this disk, counting
    what the bot asks of it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.asked: list[str] = []

    def load_if_newer(self, known: int | None) -> Any:
        self.asked.append(f"load_if_newer({known})")
        return super().load_if_newer(known)

    def recorder(self, actor: str, env: str, compress: bool) -> Any:
        self.asked.append(f"recorder({env}, compress={compress})")
        return super().recorder(actor, env, compress)


def test_the_bot_reaches_its_root_through_the_access_it_is_given(tmp_path: Path) -> None:
    elsewhere = TrainingRoot(tmp_path / "elsewhere")
    publish_model(elsewhere)
    access = CountingRoot(elsewhere.path)
    bot = LearningBot(tmp_path / "unused", access=access, actor="game-7")
    play_game(bot, load_recorded("AbyssalReefLE"), [(0.0, 50)], Result.Victory)
    play_game(bot, load_recorded("AcropolisLE"), [(0.0, 60)], Result.Defeat)

    assert access.asked == [
        "recorder(sc2, compress=False)",
        "load_if_newer(None)",
        "recorder(sc2, compress=False)",  # the second game's recorder
        "load_if_newer(1)",
    ]
    games = episodes_by_outcome(elsewhere)
    assert sorted(games) == ["Defeat", "Victory"]
    assert {ep.policy_version for ep in games.values()} == {1}
    assert {ep.meta["actor"] for ep in games.values()} == {"game-7"}
    assert not (tmp_path / "unused").exists()


def test_greedy_play_picks_the_models_most_likely_strategy(tmp_path: Path) -> None:
    root = TrainingRoot(tmp_path / "root")
    publish_model(root)
    bot = LearningBot(root, greedy=True)
    play_game(bot, load_recorded("AbyssalReefLE"), [(0.0, 50), (4.5, 900)], Result.Victory)

    [ep] = episodes_by_outcome(root).values()
    policy = Policy.from_model(ModelStore(root).load())
    assert ep.actions.tolist() == policy.probs(ep.states).argmax(axis=1).tolist()
    assert ep.logp.tolist() == [0.0, 0.0]  # chosen for sure


# --------------------------------------------------------------------------- the ladder mode


def ladder_game(
    settings: LadderSettings,
    opponent: str | None,
    result: Result | None,
    seconds: tuple[float, ...] = (0.0, 4.5, 9.0),
    bot: LearningBot | None = None,
) -> LearningBot:
    bot = bot or LearningBot(ladder=settings)
    bot.opponent_id = opponent  # as the ladder entry point sets it before the game
    play_game(bot, load_recorded("AbyssalReefLE"), [(s, 50) for s in seconds], result)
    return bot


def test_a_ladder_bot_keeps_everything_in_its_data_folder(tmp_path: Path) -> None:
    settings = ladder(tmp_path, opening_minutes=0.1)  # the opening: the first 6 s
    data = TrainingRoot(settings.data_dir)

    bot = ladder_game(settings, "opp-1", Result.Victory)

    assert bot.training_root == data and bot.max_game_minutes == 30.0 and not bot.greedy
    [(outcome, ep)] = episodes_by_outcome(data).items()
    assert outcome == "Victory"
    # The opening (the first never tried: ECONOMY) is held for its time, then the model.
    assert ep.actions[:2].tolist() == [Strategy.ECONOMY] * 2
    assert ep.logp[:2].tolist() == [0.0, 0.0]
    assert ep.logp[2] == pytest.approx(math.log(1 / 5))  # the model (none yet: uniform)
    assert ep.meta["opponent"] == "opp-1" and ep.meta["opening"] == "ECONOMY"
    book = json.loads((data.path / "ladder" / "opponents.json").read_text("utf-8"))
    assert book == {
        "in_progress": None,
        "opponents": {
            "opp-1": {
                "games": 1,
                "wins": 1,
                "losses": 0,
                "cut_short": 0,
                "unfinished": 0,
                "openings": {"ECONOMY": {"games": 1, "wins": 1}},
            }
        },
    }
    assert list((data.path / "ladder" / "in_progress").glob("*")) == []  # the game ended
    assert sorted(p.name for p in data.path.iterdir()) == [
        "data",
        "ladder",
        "logs",
        "models",
        "state",
    ]


def test_the_opening_is_chosen_per_opponent_by_win_rate(tmp_path: Path) -> None:
    book = OpponentBook(tmp_path / "opponents.json")
    openings = ("AGGRESSIVE", "TECH", "ALL_IN")
    results = {"AGGRESSIVE": "Defeat", "TECH": "Victory", "ALL_IN": "Defeat"}
    chosen = []
    for _ in range(5):
        opening = book.choose_opening("bully", openings)
        chosen.append(opening)
        book.start("bully", opening)
        book.end(results[opening], terminated=True)

    # Each tried once, in order; then TECH (won 1 of 1) over the others (0 of 1).
    assert chosen == ["AGGRESSIVE", "TECH", "ALL_IN", "TECH", "TECH"]
    assert book.choose_opening("someone-else", openings) == "AGGRESSIVE"  # per opponent
    record = book.record("bully")
    assert (record["games"], record["wins"], record["losses"]) == (5, 3, 2)
    # A game the bot never finished counts as played and not won.
    book.start("bully", "TECH")
    book.start("bully", "TECH")  # the next start finds the last one in progress
    book.end("Defeat", terminated=True)
    record = book.record("bully")
    assert (record["games"], record["unfinished"], record["losses"]) == (7, 1, 3)
    assert record["openings"]["TECH"] == {"games": 5, "wins": 3}
    assert book.choose_opening("bully", openings) == "TECH"  # (3+1)/(5+2) > (0+1)/(1+2)


def test_ladder_settings_are_checked_and_documented_in_the_readme() -> None:
    with pytest.raises(SettingsError) as refused:
        LadderSettings(openings=("ECONOMY", "TEHC"))
    assert str(refused.value) == (
        "setting 'openings' must be a list of words each one of ECONOMY, AGGRESSIVE, "
        "DEFENSIVE, TECH, ALL_IN, got ['ECONOMY', 'TEHC']"
    )
    with pytest.raises(SettingsError, match="'play' must be one of sampled, greedy"):
        LadderSettings(play="greddy")
    readme = (REPO / "README.md").read_text("utf-8")
    assert ladder_settings_table() in readme
    assert LearningBot(ladder=LadderSettings(play="greedy")).greedy


# --------------------------------------------------------------------------- a killed bot


KILLED_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from sc2.game_state import GameState
    from bgtrain.integrations.sc2 import LearningBot
    from bgtrain.integrations.sc2.settings import LadderSettings
    from tests.test_sc2 import changed, load_recorded, put_in_state

    data, ready = Path(sys.argv[1]), Path(sys.argv[2])
    settings = LadderSettings(data_dir=data, checkpoint_every=2, background_learning=False)
    bot = LearningBot(ladder=settings)
    bot.opponent_id = "killer"
    recorded = load_recorded("AbyssalReefLE")
    put_in_state(bot, recorded, first_step=True)
    asyncio.run(bot.on_start())
    for iteration in range(6):  # decisions at 0, 4.5, ... 22.5 s: saves after 2 and 4
        obs = changed(recorded.observation, seconds=4.5 * iteration, minerals=100 + iteration)
        bot._prepare_step(GameState(obs), recorded.game_info)
        asyncio.run(bot.on_step(iteration))
    bot.ladder.checkpoint.wait()
    ready.write_text(str("torch" in sys.modules))
    asyncio.run(asyncio.sleep(3600))  # the game goes on until the ladder kills the bot
    """
)


def test_a_killed_ladder_bots_game_is_kept_as_cut_short_at_the_next_start(
    tmp_path: Path,
) -> None:
    settings = ladder(tmp_path)
    ready = tmp_path / "ready"
    worker = subprocess.Popen(
        [sys.executable, "-c", KILLED_WORKER, str(settings.data_dir), str(ready)], cwd=REPO
    )
    try:
        wait_until(ready.exists, timeout=CLI_TIMEOUT_S, what="the bot's 6 decisions")
    finally:
        worker.kill()  # SIGKILL: no on_end, no finally, no atexit
        worker.wait()
    assert ready.read_text() == "False"  # the bot's process never imported torch
    data = TrainingRoot(settings.data_dir)
    assert not list(data.buffer.glob("*.npz"))  # nothing was saved the usual way

    ladder_game(settings, "killer", Result.Defeat)  # the next game finds the last one

    games = episodes_by_outcome(data)
    assert sorted(games) == ["Defeat", "Tie cut short"]
    killed = games["Tie cut short"]
    assert killed.length == 4  # its last save: 4 decisions recorded, the 5th pending
    assert killed.states[:, 0].tolist() == pytest.approx([(100 + i) / 2000 for i in range(4)])
    np.testing.assert_allclose(killed.last_state[0], 104 / 2000)  # to bootstrap from
    assert killed.meta["reason"] == KILLED and killed.meta["opponent"] == "killer"
    record = OpponentBook(data.path / "ladder" / "opponents.json").record("killer")
    assert (record["games"], record["unfinished"], record["losses"]) == (2, 1, 1)


# --------------------------------------------------------------------------- the size budget


def write_game(folder: Path, name: str, steps: int, outcome: str, mtime: float) -> Path:
    rng = np.random.default_rng(steps)
    episode = build_episode(
        rng.random((steps, 15), dtype=np.float32),
        rng.integers(0, 5, steps),
        np.ones(steps),
        meta={"outcome": outcome},
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = save_episode(episode, folder / name)
    os.utime(path, (mtime, mtime))
    return path


def test_old_games_are_folded_into_a_summary_to_keep_the_budget(tmp_path: Path) -> None:
    data = TrainingRoot(tmp_path / "data")
    for i in range(8):  # 8 trained games of ~60 kB, oldest first
        write_game(data.archive / "2025-01-01", f"game_{i}.npz", 1000, "Victory", 1000 + i)
    waiting = write_game(data.buffer, "game_new.npz", 1000, "Defeat", 10)  # not yet trained
    budget = 300_000
    assert folder_bytes(data.path) > budget

    folded = enforce_budget(data.path, budget)

    assert folder_bytes(data.path) <= 0.8 * budget
    left = sorted(p.name for p in data.archive.rglob("*.npz"))
    assert folded == 8 - len(left) and left == [f"game_{i}.npz" for i in range(8 - len(left), 8)]
    assert waiting.exists()  # the learner's games go last, and were not needed
    summary = json.loads((data.path / "ladder" / "summary.json").read_text("utf-8"))
    assert summary["games"] == folded and summary["outcomes"] == {"Victory": folded}
    assert summary["decisions"] == 1000 * folded and summary["total_reward"] == 1000 * folded
    assert (summary["first"], summary["last"]) == ("game_0.npz", f"game_{folded - 1}.npz")
    assert enforce_budget(data.path, budget) == 0  # within it now: nothing more


# --------------------------------------------------------------------------- background learning


def test_a_learner_trains_on_earlier_games_during_the_next_and_the_game_after_plays_it(
    tmp_path: Path,
) -> None:
    settings = ladder(tmp_path, background_learning=True, opening_minutes=0)
    data = TrainingRoot(settings.data_dir)
    bot = ladder_game(settings, "opp", Result.Victory)  # no earlier game: no learner
    assert bot.ladder.learner.process is None

    bot.opponent_id = "opp"
    put_in_state(bot, load_recorded("AbyssalReefLE"), first_step=True)
    asyncio.run(bot.on_start())  # the second game: the learner starts on the first
    learner = bot.ladder.learner.process
    assert learner is not None and bot.policy_version is None
    wait_until(data.model_file.exists, timeout=CLI_TIMEOUT_S, what="a model from the learner")
    learner.wait(CLI_TIMEOUT_S)  # trained on what waited, published, and exited
    assert learner.returncode == 0
    step_to(bot, load_recorded("AbyssalReefLE"), 0, 0.0)
    asyncio.run(bot.on_end(Result.Defeat))

    ladder_game(settings, "opp", Result.Victory, bot=bot)  # the third plays model v1
    assert bot.policy_version == 1
    log = (data.logs / "ladder_learner.log").read_text("utf-8")
    assert "1 files trained in all; model version 1" in log
    [first_game] = data.archive.rglob("*Victory.npz")
    assert ModelStore(data).load(1).meta.batch == (first_game.name,)


def test_the_learner_process_lowers_its_own_priority(tmp_path: Path) -> None:
    if not hasattr(os, "nice"):
        pytest.skip("os.nice: POSIX only (Windows: a priority class at start)")
    code = (
        "import os; from bgtrain.integrations.sc2.ladder import lower_priority; "
        "before = os.nice(0); lower_priority(7); print(os.nice(0) - before)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == min(7, 19 - os.nice(0))


# --------------------------------------------------------------------------- the entry point


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("ladder_bot", REPO / "examples" / "ladder_bot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_ladder_arguments_are_ai_arenas() -> None:
    args = ladder_arguments(
        ["--GamePort", "5000", "--StartPort", "5100", "--LadderServer", "10.0.0.2",
         "--OpponentId", "abc-123", "--RealTime", "--ExtraFromTheLadder", "x"]
    )  # fmt: skip
    assert (args.GamePort, args.StartPort, args.LadderServer) == (5000, 5100, "10.0.0.2")
    assert (args.OpponentId, args.RealTime, args.on_ladder) == ("abc-123", True, True)
    local = ladder_arguments([])
    assert (local.on_ladder, local.OpponentId, local.RealTime) == (False, None, False)
    ports = ladder_portconfig(5100)
    assert (ports.server, ports.players) == ([5102, 5103], [[5104, 5105]])
    assert ladder_portconfig(None) is None


def test_the_ladder_example_keeps_its_data_beside_itself() -> None:
    example = load_example()
    assert example.SETTINGS.data_dir == REPO / "examples" / "data"
    player = example.make_bot()
    assert player.ai.training_root == TrainingRoot(REPO / "examples" / "data")
    assert type(player.ai).__name__ == "ZergBot" and player.race.name == "Zerg"
    assert not (REPO / "examples" / "data").exists()  # making the bot writes nothing


def test_the_ladder_example_without_ladder_or_game_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SC2PATH", str(tmp_path / "no-game-here"))

    assert load_example().main([]) == 1  # no ladder arguments: a local game

    err = capsys.readouterr().err
    assert err.startswith("error: StarCraft II is not installed") and "SC2PATH" in err
    assert not (REPO / "examples" / "data").exists()  # nothing played, nothing written


def test_the_ladder_example_says_in_one_line_when_the_ladders_game_is_not_there(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["--GamePort", str(port), "--StartPort", str(port), "--LadderServer", "127.0.0.1"]

    assert load_example().main([*argv, "--OpponentId", "abc"]) == 1

    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: could not join the ladder's game: "), err
    assert not (REPO / "examples" / "data").exists()  # nothing played, nothing written


def test_the_ladder_learner_refuses_a_data_folder_that_is_not_there(tmp_path, capsys):
    from bgtrain.integrations.sc2.ladder import learner_main

    missing = tmp_path / "no_such_data"
    with pytest.raises(SystemExit) as exit_:
        learner_main([str(missing)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"python -m bgtrain.integrations.sc2.ladder learn: error: no data folder at {missing}"
    )
    assert not missing.exists()  # a mistyped folder does not become a new, empty root
