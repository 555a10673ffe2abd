"""The Ray engine on a real local Ray cluster of two nodes (``ray.cluster_utils.Cluster``),
shared by this module's tests: the head node (this machine's learner side: the root's
writer) and a game machine with a custom ``games`` resource that the games need.

Skipped, saying why, when Ray is not installed, unless ``CI`` is set: in CI they must
run (``.ci/run`` installs the ``ray`` extra).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bgtrain.learn.settings import LearnerSettings
from bgtrain.monitor.snapshot import Watcher
from bgtrain.runner.actor import ActorConfig
from bgtrain.runner.session import Run, RunConfig
from bgtrain.store.episode import load_episode
from bgtrain.store.models import ModelStore
from bgtrain.store.root import TrainingRoot
from bgtrain.store.spool import is_episode_name
from tests.helpers import bgtrain_argv, bgtrain_cli, cli_env, wait_until

try:
    import ray
    from ray.cluster_utils import Cluster
except ImportError:  # pragma: no cover - CI installs the extra
    if os.environ.get("CI"):
        raise
    pytest.skip('Ray is not installed (pip install -e ".[ray]")', allow_module_level=True)

from bgtrain.runner.ray_engine import RECEIVED_LOG_NAME, GameActor, RootHub, writer_name

#: Each game process takes one of these: only the game machine has them.
GAMES = "games"
GAME_MACHINE = {"num_cpus": 2, "resources": {GAMES: 2}}


#: The head notices a lost node within a few seconds (Ray's default takes about 30).
FAST_NODE_DEATH = {"health_check_period_ms": 500, "health_check_failure_threshold": 4}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Head node: 1 CPU, no game resource (the writer and the learner's side); a game
    machine: 2 CPUs and 2 ``games``."""
    # The cluster's workers start in the folder it was started from: not the runs' own
    # (a root given relative to the run must still be the run's).
    here = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cluster_cwd"))
    try:
        c = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 1, "_system_config": FAST_NODE_DEATH},
        )
        c.add_node(**GAME_MACHINE)
        c.wait_for_nodes()
    finally:
        os.chdir(here)
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def episode_files(root: TrainingRoot) -> list[Path]:
    """Every episode file anywhere in the root."""
    return [p for p in root.data.rglob("*.npz") if is_episode_name(p.name)]


def confirmed_names(root: TrainingRoot) -> list[str]:
    """The names the root's writer confirmed, from its record (``logs/received.log``)."""
    log = root.logs / RECEIVED_LOG_NAME
    return [line.split()[1] for line in log.read_text("utf-8").splitlines()]


def run_on_cluster(
    cluster,
    root: Path,
    *flags: str,
    timeout: float = 240,
    during: Callable[[], None] | None = None,
    cwd: Path | None = None,
) -> tuple[int, str, str]:
    """``bgtrain run --engine ray`` on ``cluster`` (its games need the ``games``
    resource), with ``during()`` called while it runs; its exit code, stdout and stderr
    (files: a pipe nobody reads while ``during`` runs could fill and stop the run)."""
    argv = bgtrain_argv(
        *("run", "--engine", "ray", "--address", cluster.address, "--game-resource", GAMES),
        *("--root", root, "--no-spare-actor", "--seed", "1", "--n-epochs", "1", *flags),
    )
    logs = cwd if cwd is not None else root.parent
    out, err = logs / "stdout.txt", logs / "stderr.txt"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        run = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=cli_env(), cwd=cwd)
        try:
            if during is not None:
                during()
            run.wait(timeout)
        finally:
            run.kill()
    return run.returncode, out.read_text("utf-8"), err.read_text("utf-8")


def test_games_on_a_second_node_feed_the_learner_and_survive_that_node_s_death(cluster, tmp_path):
    root = TrainingRoot(tmp_path / "root")
    at_kill: dict[str, int] = {}

    def kill_the_game_machine_then_add_another() -> None:
        # Mid-run: games have been stored and the learner has published.
        wait_until(lambda: len(episode_files(root)) >= 20, 120, "20 games stored")
        wait_until(lambda: (ModelStore(root.path).latest_version() or 0) >= 1, 60, "a model")
        at_kill["version"] = ModelStore(root.path).latest_version() or 0
        at_kill["files"] = len(episode_files(root))
        cluster.remove_node(next(iter(cluster.worker_nodes)), allow_graceful=False)
        cluster.add_node(**GAME_MACHINE)  # a replacement machine joins

    code, out, err = run_on_cluster(
        cluster,
        root.path,
        *("--games", "80", "--actors", "2"),
        during=kill_the_game_machine_then_add_another,
    )

    assert code == 0, err
    assert "Stopped:            80 games" in out
    lost = [line for line in out.splitlines() if line.startswith("[WARN] Game machine ")]
    assert len(lost) == 1 and lost[0].endswith(
        "left the cluster: its games in progress are lost (never episodes); Ray restarts "
        "its game processes where the cluster has room"
    ), out
    # Every game the writer confirmed is in exactly one place, under its own name.
    names = [p.name for p in episode_files(root)]
    assert len(names) == len(set(names))
    assert sorted(set(confirmed_names(root))) == sorted(names)
    assert not any("~" in name for name in names)
    assert len(names) > at_kill["files"]  # the replacement machine's games were stored
    # The learner kept publishing after the node died.
    assert (ModelStore(root.path).latest_version() or 0) > at_kill["version"]
    # The monitor shows the engine, and the games of each machine (killed, replacement).
    learning = Watcher(root.path).take().learning
    assert learning is not None and learning.engine == "ray"
    machines = dict(learning.games_by_machine)
    assert len(machines) == 2 and sum(machines.values()) == 80
    shown = bgtrain_cli("monitor", "--once", "--root", root.path, cwd=tmp_path).stdout
    assert "Engine: ray   Games by machine (10 min): " in shown


def test_a_game_actor_never_imports_torch(cluster, tmp_path):
    root = TrainingRoot(tmp_path / "root").ensure()
    hub = ray.remote(RootHub).options(num_cpus=0).remote(str(root.path), 2)
    game = ray.remote(GameActor).options(num_cpus=1, resources={GAMES: 1})
    actor = game.remote(ActorConfig(root.path, "CartPole-v1", 0, seed=3), hub)
    ray.get(actor.run.remote(), timeout=120)

    assert ray.get(actor.imported.remote("gymnasium"))  # it did play
    assert ray.get(actor.imported.remote("torch")) is False
    assert len(episode_files(root)) == 2


def test_bgtrain_run_engine_ray_cli_smoke(cluster, tmp_path):
    root = TrainingRoot(tmp_path / "root")
    code, out, err = run_on_cluster(
        cluster, Path("root"), "--games", "6", "--actors", "1", cwd=tmp_path
    )
    assert code == 0, err
    assert "Stopped:            6 games" in out
    assert len(episode_files(root)) == 6
    assert len(confirmed_names(root)) == 6


def test_a_cluster_with_no_room_for_a_game_is_refused_at_once(cluster, tmp_path):
    root = TrainingRoot(tmp_path / "root")
    code, _, err = run_on_cluster(
        cluster, root.path, "--games", "2", "--game-cpus", "3", "--actors", "1"
    )
    assert code == 1
    assert err.splitlines()[-1] == (
        f"error: no machine of the Ray cluster at {cluster.address} has room for one game "
        "(3 CPU and 1 games); its 2 machine(s) have 1 CPU, 0 games; 2 CPU, 2 games. Start "
        "game machines with `ray start --address HEAD:6379 --resources '{\"games\": 4}'` "
        "(README: More than one machine), or lower --game-cpus"
    )
    assert episode_files(root) == []


def test_losing_the_writer_stops_the_run_with_one_error(cluster, tmp_path):
    root = TrainingRoot(tmp_path / "root")
    config = RunConfig(
        root=root.path,
        engine="ray",
        address=cluster.address,
        game_resource=GAMES,
        actors=1,
        spare_actor=False,
        until_solved=False,
        seed=2,
        learner=LearnerSettings(n_epochs=1, verbose=False),
    )

    def kill_the_writer() -> None:
        wait_until(lambda: len(episode_files(root)) >= 5, 120, "5 games stored")
        ray.kill(ray.get_actor(writer_name()))

    killer = threading.Thread(target=kill_the_writer, daemon=True)
    killer.start()
    summary = Run(config, [].append).run()
    killer.join(10)

    assert summary.exit_code == 1
    assert summary.error is not None and summary.error.startswith(
        "lost the Ray node of the learner's machine (the games' writer ran there: "
    )
    assert summary.error.endswith(
        "the run stops. Every game it confirmed is in the root; start Ray again and run "
        "bgtrain run again to go on"
    )
    names = [p.name for p in episode_files(root)]
    assert len(names) == len(set(names)) >= 5
    assert sorted(confirmed_names(root)) == sorted(names)


def test_engine_ray_without_ray_says_what_to_install(tmp_path):
    no_ray = (
        "import sys, runpy\n"
        "class NoRay:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ray' or name.startswith('ray.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'ray'\")\n"
        "sys.meta_path.insert(0, NoRay())\n"
        "sys.argv = ['bgtrain', *sys.argv[1:]]\n"
        "runpy.run_module('bgtrain', run_name='__main__')\n"
    )
    root = tmp_path / "root"
    done = subprocess.run(
        [sys.executable, "-c", no_ray, "run", "--engine", "ray", "--games", "1", "--root", root],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        'error: --engine ray needs Ray, which is not installed here: pip install -e ".[ray]" '
        '(or pip install "bgtrain[ray]"), then run again'
    ]
    assert not root.exists()  # nothing started, nothing written


def test_starcraft_games_play_on_the_game_machine_and_feed_the_learner(cluster, tmp_path):
    """``--game sc2 --engine ray``: the bot plays (real recorded game states, through
    burnysc2's hooks, without the game binary) in the cluster's game processes; its
    episodes reach the root through the writer."""
    pytest.importorskip("sc2")  # the dev extra has burnysc2: CI runs this
    from bgtrain.integrations.sc2.game import run_sc2
    from bgtrain.integrations.sc2.settings import Sc2RunConfig
    from tests.test_sc2 import RecordedGames

    root = TrainingRoot(tmp_path / "root")
    config = Sc2RunConfig(
        root=root.path,
        bot="bgtrain.integrations.sc2.zerg_bot:ZergBot",
        games=4,
        map="AbyssalReefLE",
        difficulty="Easy",
        race="Terran",
        engine="ray",
        address=cluster.address,
        game_resource=GAMES,
        actors=2,
        learner=LearnerSettings(n_epochs=1, verbose=False, seed=1),
    )
    lines: list[str] = []

    assert run_sc2(config, lines.append, games=RecordedGames()) == 0

    completed = [line for line in lines if line.startswith("[GAME #")]
    assert [line.split(" (")[0] for line in completed] == [
        f"[GAME #{n}] COMPLETED" for n in (1, 2, 3, 4)
    ]
    host = socket.gethostname().split(".")[0]
    assert all(f" on {host} (node " in line for line in completed), completed
    assert all(line.endswith(": Victory") for line in completed)
    names = [p.name for p in episode_files(root)]
    assert len(names) == 4 and all(name.endswith("_Victory.npz") for name in names)
    assert sorted(confirmed_names(root)) == sorted(names)
    assert all(load_episode(p).meta["env"] == "sc2" for p in episode_files(root))
    learning = Watcher(root.path).take().learning
    assert learning is not None and learning.engine == "ray"
    assert sum(n for _, n in learning.games_by_machine) == 4


def test_a_game_machine_without_starcraft_stops_the_run_with_one_error_line(cluster, tmp_path):
    pytest.importorskip("sc2")
    root = tmp_path / "root"
    argv = bgtrain_argv(
        *("run", "--game", "sc2", "--engine", "ray", "--address", cluster.address),
        *("--game-resource", GAMES, "--actors", "2", "--games", "2", "--root", root),
    )
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=180,
        env=cli_env(),  # the game processes look where their machine has the game: not here
    )

    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: on a game machine: StarCraft II is not installed: no game in "
    ), done.stderr
    assert episode_files(TrainingRoot(root)) == []
