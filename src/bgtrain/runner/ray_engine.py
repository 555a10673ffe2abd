"""The Ray engine: games on a Ray cluster, the learner and its root on this machine.

``bgtrain run --engine ray`` starts the learner here, as the local engine does (its own
process, the root's lock, the spool), and each game loop
(:func:`bgtrain.runner.actor.run_games`, unchanged) as a Ray actor wherever the cluster
has room. The games reach the root only through one actor pinned to this machine, the
:class:`RootHub`:

- models are **pulled**: between games a game asks the hub for the newest version (one
  ``stat`` here while it is unchanged) and fetches the file's bytes once per version;
  nothing is ever pushed to a busy game (the fault ray-project/ray#63849 fixed in RLlib);
- a finished game's file travels as bytes to the hub, which stores it with
  :func:`bgtrain.store.remote_writer.receive_episode` (atomic, once per name); the game
  keeps the bytes until the hub has answered and sends again if the call failed;
- the game budget (``--games``), the backpressure (``--max-waiting``, counted on the
  learner's ``buffer/`` across the cluster) and the games' reports go through it too.

No Ray object is ever the only copy of a game the hub confirmed: it is an episode in
``buffer/`` before the hub answers (``logs/received.log`` has a line for it). A game's
report (what the run counts and prints) travels with the game's next round trip, beside
its send, as a local game's report goes beside its write. A game actor that dies (its machine
lost) is restarted by Ray where the cluster has room (``max_restarts=-1``); the game it
was playing is lost (it was never an episode). The learner runs outside Ray, so a dying
game machine never disturbs it. Losing this machine's Ray node (the hub) stops the run
with one error line; the next ``bgtrain run`` recovers the root as after any stop.

Game actors import numpy, Gymnasium and bgtrain's game side only: a game machine needs
no torch (README: "More than one machine").
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bgtrain.common.imports import imported
from bgtrain.errors import BgtrainError
from bgtrain.game.recorder import EpisodeRecorder
from bgtrain.game.root_access import LocalRoot
from bgtrain.learn.settings import LearnerSettings
from bgtrain.runner.actor import ActorConfig, GameProcessError, GameReport, Report, run_games
from bgtrain.runner.learner_process import LearnerProcess
from bgtrain.store.fs import atomic_write
from bgtrain.store.models import LoadedModel, read_model_file
from bgtrain.store.remote_writer import receive_episode
from bgtrain.store.root import TrainingRoot

__all__ = [
    "RAY_MISSING",
    "GameActor",
    "RayEngine",
    "RemoteRoot",
    "RootHub",
    "import_ray",
    "writer_name",
]

logger = logging.getLogger(__name__)

#: The one line ``--engine ray`` stops with when Ray is not installed.
RAY_MISSING = (
    "--engine ray needs Ray, which is not installed here: "
    'pip install -e ".[ray]" (or pip install "bgtrain[ray]"), then run again'
)
#: A clean stop waits this long for the games to save their game in progress.
GAMES_STOP_TIMEOUT_S = 30.0
#: A game that does not answer "stop" within this long is not running (its machine is
#: gone and Ray waits for room to restart it): the stop does not wait for it.
STOP_ACK_TIMEOUT_S = 5.0
#: A send of a finished game is tried this many times before the game counts as unsaved.
SEND_ATTEMPTS = 5
#: Each try waits this long for the hub's answer.
SEND_TIMEOUT_S = 60.0
#: A game paused by ``--max-waiting`` asks the hub for room, which answers as soon as
#: there is some or after this long (then the game looks whether it was told to stop).
ROOM_WAIT_S = 0.25
#: The longest a hub thread waits for room for one game (the hub has
#: ``HUB_THREADS``: a game must not hold one long).
MAX_ROOM_WAIT_S = 1.0
HUB_THREADS = 64
#: How often a spare game asks whether the learner idles (a round trip each).
REMOTE_POLL_S = 0.05
#: The writer's record, in the root's ``logs/``: a line per game it confirmed.
RECEIVED_LOG_NAME = "received.log"
#: How often the run looks whether a game machine left the cluster.
NODE_CHECK_S = 2.0


def import_ray() -> Any:
    """The ``ray`` module, or :class:`BgtrainError` with :data:`RAY_MISSING`."""
    try:
        import ray
    except ImportError:
        raise BgtrainError(RAY_MISSING) from None
    return ray


def writer_name(pid: int | None = None) -> str:
    """The Ray name of the root's writer of the run in process ``pid`` (default: this
    one): ``ray list actors`` shows it."""
    return f"bgtrain-writer-{os.getpid() if pid is None else pid}"


#: A game machine's name in reports: its host and its Ray node's id (first 8 digits).
MACHINE = re.compile(r"^(?P<host>.*) \(node (?P<node>[0-9a-f]+)\)$")


def this_machine(ray: Any) -> str:
    """``host (node 1a2b3c4d)``: the host name, and the Ray node (several nodes may share
    a host, as in a test cluster). :func:`node_of` reads it back."""
    node = ray.get_runtime_context().get_node_id()
    return f"{socket.gethostname().split('.')[0]} (node {node[:8]})"


def node_of(machine: str) -> str | None:
    """The node id in a machine name of :func:`this_machine` (``None``: not one)."""
    match = MACHINE.match(machine)
    return match["node"] if match else None


# ---------------------------------------------------------------------- learner's side


class RootHub:
    """The training root as the cluster's games reach it: an actor pinned to the
    learner's machine (threaded: games call it at once). Holds the game budget and the
    reports waiting for the run; every other answer comes from the root's files."""

    def __init__(self, root: str, max_games: int | None) -> None:
        self._root = LocalRoot(Path(root))
        training_root = TrainingRoot.at(root)
        self._model_file = training_root.model_file
        self._received_log = training_root.logs / RECEIVED_LOG_NAME
        self._received_log.parent.mkdir(parents=True, exist_ok=True)
        self._left = max_games
        #: Game processes playing a game of the budget that they have not reported yet.
        self._playing: set[int] = set()
        self._lock = threading.Lock()
        self._reports: list[Report] = []
        self._arrived = threading.Condition(self._lock)

    def latest_version(self) -> int | None:
        return self._root.latest_version()

    def model_file(self) -> bytes | None:
        """The published model file, whole (it is replaced atomically, never rewritten)."""
        try:
            return self._model_file.read_bytes()
        except FileNotFoundError:
            return None

    def store_episode(self, name: str, data: bytes, machine: str) -> str:
        """Store a game sent by ``machine``; returns where the root holds it. Each answer
        is a line of ``logs/received.log``: where every remote game came from."""
        received = receive_episode(self._root.root, name, data)
        where = received.path.relative_to(self._root.root).as_posix()
        if received.duplicate:
            line = f"{name} sent again by {machine}: kept once, as {where}"
        else:
            line = f"{name} stored from {machine} ({len(data)} bytes)"
        with self._lock, open(self._received_log, "a", encoding="utf-8") as log:
            log.write(f"{datetime.now().isoformat(timespec='milliseconds')} {line}\n")
        return str(received.path)

    def waiting(self) -> int:
        return self._root.waiting()

    def room(self, limit: int, pending: int, wait_s: float) -> bool:
        return self._root.room(limit, pending, min(wait_s, MAX_ROOM_WAIT_S))

    def learner_idle(self) -> bool:
        return self._root.learner_idle()

    def take_slot(self, actor_id: int) -> bool:
        """A game of the budget for game process ``actor_id``, until it reports the game."""
        with self._lock:
            if self._left is not None:
                if self._left == 0:
                    return False
                self._left -= 1
            self._playing.add(actor_id)
            return True

    def restarted(self, actor_id: int) -> None:
        """Game process ``actor_id`` starts (again, if Ray replaced it): a game it took
        and never reported was lost with its machine, and goes back to the budget."""
        with self._lock:
            if actor_id in self._playing:
                self._playing.discard(actor_id)
                if self._left is not None:
                    self._left += 1

    def slots_spent(self) -> bool:
        with self._lock:
            return self._left == 0

    def next_game(
        self, actor_id: int, reports: list[Report], room: tuple[int, int, float] | None
    ) -> tuple[bool, bool, int | None]:
        """A game's one round trip between games: take its reports, wait for room
        (``room``: the ``limit``, ``pending`` and ``wait_s`` of :meth:`LocalRoot.room`;
        ``None``: no limit), and if there is some, a game of the budget. Returns (room,
        a game granted, the latest model version)."""
        self.put_reports(reports)
        if room is not None and not self.room(*room):
            return False, False, None
        return True, self.take_slot(actor_id), self.latest_version()

    def put_reports(self, reports: list[Report]) -> None:
        if not reports:
            return
        with self._arrived:
            for report in reports:
                if isinstance(report, GameReport):
                    self._playing.discard(report.actor_id)
                self._reports.append(report)
            self._arrived.notify_all()

    def take_reports(self, timeout: float) -> list[Report]:
        with self._arrived:
            if not self._reports:
                self._arrived.wait(timeout)
            out, self._reports = self._reports, []
        return out


# ---------------------------------------------------------------------- games' side


class RemoteRoot:
    """:class:`bgtrain.game.root_access.RootAccess` and the game loop's budget and report
    sink over the network, through a :class:`RootHub`, in one round trip between games
    (:meth:`RootHub.next_game`): the reports of the game just played go with it, and its
    answer holds the budget's grant and the latest version (a round trip costs about a
    millisecond even on one machine; a CartPole game may take less). The model's bytes
    are kept in a folder of this machine (``mirror``) and read from there with the same
    checks as any model file."""

    def __init__(self, hub: Any, mirror: Path, machine: str, actor_id: int) -> None:
        self._ray = import_ray()
        self._hub = hub
        self._machine = machine
        self._actor_id = actor_id
        self._mirror = TrainingRoot.at(mirror)
        self._reports: list[Report] = []
        #: The last answer's grant and latest version, until the loop asks for them.
        self._granted: bool | None = None
        self._latest: tuple[int | None] | None = None

    def call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        return self._ray.get(getattr(self._hub, method).remote(*args), timeout=timeout)

    def _next_game(self, room: tuple[int, int, float] | None) -> bool:
        reports, self._reports = self._reports, []
        has_room, granted, latest = self.call("next_game", self._actor_id, reports, room)
        if has_room:
            self._granted, self._latest = granted, (latest,)
        return bool(has_room)

    # ------------------------------------------------------------ RootAccess

    def room(self, limit: int, pending: int, wait_s: float) -> bool:
        return self._next_game((limit, pending, wait_s))

    def load_if_newer(self, known: int | None) -> LoadedModel | None:
        if self._latest is not None:
            (latest,), self._latest = self._latest, None
        else:
            latest = self.call("latest_version")
        if latest is None or latest == known:
            return None
        data = self.call("model_file")
        if data is None:
            return None
        path = self._mirror.model_file
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: f.write(data), fsync=False)  # a cache of the hub's
        return read_model_file(path)

    def waiting(self) -> int:
        self.flush()  # a spare game asks this while it waits: its last report goes now
        return int(self.call("waiting"))

    def learner_idle(self) -> bool:
        return bool(self.call("learner_idle"))

    def recorder(self, actor: str, env: str, compress: bool) -> EpisodeRecorder:
        return EpisodeRecorder(
            self._mirror, actor=actor, env=env, compress=compress, remember=0, sink=self.send
        )

    # ------------------------------------------------------------ GameSlots

    def take(self) -> bool:
        if self._granted is None:  # no room asked for first (no --max-waiting)
            self._next_game(None)
        granted, self._granted = self._granted, None
        return bool(granted)

    def spent(self) -> bool:
        return bool(self.call("slots_spent"))

    # ------------------------------------------------------------ ReportSink

    def put(self, item: Report, /) -> None:
        """Kept until the next round trip (:meth:`flush` at the end): stamped with the
        machine that played the game."""
        if isinstance(item, GameReport):
            item = item._replace(machine=self._machine)
        self._reports.append(item)

    def flush(self) -> None:
        reports, self._reports = self._reports, []
        if reports:
            self.call("put_reports", reports)

    # ------------------------------------------------------------ the recorder's sink

    def send(self, name: str, data: bytes) -> Path:
        """Store a finished game on the learner's machine; returns where it is there.
        Runs in the recorder's writer thread, which holds ``data`` until the hub answers.

        Raises:
            OSError: the hub could not store it, or did not answer, :data:`SEND_ATTEMPTS`
                times (the game is then reported unsaved).
        """
        errors = self._ray.exceptions.RayError
        last: BaseException | None = None
        for attempt in range(SEND_ATTEMPTS):
            try:
                return Path(
                    self.call("store_episode", name, data, self._machine, timeout=SEND_TIMEOUT_S)
                )
            except (errors, OSError) as exc:
                last = exc
                logger.warning("sending %s failed (try %d): %s", name, attempt + 1, exc)
                time.sleep(min(2.0**attempt, 10.0))
        raise OSError(f"could not send {name} to the learner's machine: {last}")


class GameActor:
    """One game loop on a cluster's machine (threaded: ``stop`` is answered while
    ``run`` plays). Re-created by Ray on another machine if its own is lost: its actor
    tag then names the new host and process, so no name it sends can be one sent before."""

    def __init__(self, config: ActorConfig, hub: Any) -> None:
        ray = import_ray()
        self.machine = this_machine(ray)
        host = socket.gethostname().split(".")[0][:16] or "host"
        tag = f"a{config.actor_id}-{host}-{os.getpid()}"
        self._config = dataclasses.replace(
            config,
            actor_tag=tag,
            room_wait_s=ROOM_WAIT_S,
            pacing_poll_s=0.0,
            spare_poll_s=max(REMOTE_POLL_S, config.spare_poll_s),
        )
        mirror = Path(tempfile.mkdtemp(prefix="bgtrain-game-"))
        self._root = RemoteRoot(hub, mirror, self.machine, config.actor_id)
        self._root.call("restarted", config.actor_id)
        self._stop = threading.Event()

    def run(self) -> None:
        root = self._root
        loop = run_games if self._config.loop is None else imported(self._config.loop)
        try:
            loop(self._config, self._stop, root, root, root)
        finally:
            root.flush()

    def stop(self) -> str:
        self._stop.set()
        return self.machine

    def imported(self, module: str) -> bool:
        """Whether this game's process has imported ``module`` (the tests ask for torch)."""
        import sys

        return module in sys.modules


# ---------------------------------------------------------------------- the engine


def _resources_text(node: dict[str, float], need: dict[str, float]) -> str:
    return ", ".join(f"{node.get(k, 0):g} {k}" for k in need)


class RayEngine:
    """:class:`bgtrain.runner.engine.Engine` on a Ray cluster (see the module's text).

    Args:
        address: the cluster to join (``"auto"``: the one ``ray start`` runs on this
            machine; ``"HOST:PORT"``; ``None``: a Ray instance of this run's own, here).
        game_cpus: CPUs each game takes on its machine (Ray's ``num_cpus``).
        game_resource: a custom resource each game needs one of (``ray start
            --resources '{"sc2": 4}'`` on the machines that have the game).

    Raises:
        BgtrainError: Ray is not installed (:data:`RAY_MISSING`).
    """

    def __init__(
        self,
        address: str | None = None,
        game_cpus: float = 1.0,
        game_resource: str | None = None,
    ) -> None:
        self._ray = import_ray()
        self.address = address
        self.game_cpus = game_cpus
        self.game_resource = game_resource
        self._learner = LearnerProcess()
        self._console: Callable[[str], None] = logger.warning
        self._hub: Any = None
        self._actors: list[Any] = []
        self._runs: list[Any] = []
        self._late: list[Report] = []
        self._machines: dict[str, str] = {}  # node id -> machine, of the games' reports
        self._lost_nodes: set[str] = set()
        self._next_node_check = 0.0
        self._connected_here = False

    # -------------------------------------------------------------- learner

    def start_learner(
        self, root: Path, settings: LearnerSettings, console: Callable[[str], None] | None = None
    ) -> None:
        if console is not None:
            self._console = console
        self._learner.start(root, settings, console)

    def learner_alive(self) -> bool:
        return self._learner.alive()

    # -------------------------------------------------------------- games

    def connect(self) -> None:
        """Join (or start) the cluster, once.

        Raises:
            BgtrainError: no cluster answers at :attr:`address`.
        """
        ray = self._ray
        if ray.is_initialized():
            return
        try:
            ray.init(
                address=self.address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "this machine"
            raise BgtrainError(
                f"could not join a Ray cluster at {where}: {exc}. Start one with "
                "`ray start --head` (README: More than one machine), or leave out --address "
                "to let the run start its own"
            ) from None
        self._connected_here = True

    def start_games(self, configs: Sequence[ActorConfig], max_games: int | None) -> None:
        # Absolute: the writer runs in a Ray worker, whose working folder is not the run's.
        roots = {Path(c.root).resolve() for c in configs}
        if len(roots) != 1:
            raise ValueError(f"the games of one run share one root, got {sorted(roots)}")
        self.connect()
        self._check_room()
        ray = self._ray
        here = ray.get_runtime_context().get_node_id()
        pin_here = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(here, soft=False)
        hub_class = ray.remote(RootHub).options(
            name=writer_name(),
            num_cpus=0,
            max_concurrency=HUB_THREADS,
            scheduling_strategy=pin_here,
        )
        self._hub = hub_class.remote(str(roots.pop()), max_games)
        resources = {self.game_resource: 1} if self.game_resource else {}
        game_class = ray.remote(GameActor).options(
            num_cpus=self.game_cpus,
            resources=resources,
            max_concurrency=2,
            max_restarts=-1,
            max_task_retries=-1,
        )
        self._actors = [game_class.remote(config, self._hub) for config in configs]
        self._runs = [actor.run.remote() for actor in self._actors]

    def _check_room(self) -> None:
        """Refuse at once a cluster where no machine could ever start a game (its games
        would wait for room with nothing said).

        Raises:
            BgtrainError: what a game needs, what the machines have, and what to do.
        """
        need = {"CPU": self.game_cpus, **({self.game_resource: 1} if self.game_resource else {})}
        nodes = [n.get("Resources", {}) for n in self._ray.nodes() if n.get("Alive")]
        if any(all(node.get(k, 0) >= v for k, v in need.items()) for node in nodes):
            return
        wanted = " and ".join(f"{v:g} {k}" for k, v in need.items())
        extra = f" --resources '{{\"{self.game_resource}\": 4}}'" if self.game_resource else ""
        raise BgtrainError(
            f"no machine of the Ray cluster at {self.address or 'this machine'} has room for "
            f"one game ({wanted}); its {len(nodes)} machine(s) have "
            + "; ".join(sorted(_resources_text(node, need) for node in nodes))
            + f". Start game machines with `ray start --address HEAD:6379{extra}` "
            "(README: More than one machine), or lower --game-cpus"
        )

    def reports(self, timeout: float) -> list[Report]:
        late, self._late = self._late, []
        if self._hub is None:
            return late
        try:
            got = self._ray.get(self._hub.take_reports.remote(0 if late else timeout))
        except self._ray.exceptions.RayError as exc:
            return [*late, self._lost_learner_side(exc)]
        self._remember_machines(got)
        self._check_nodes()
        return late + got

    def _lost_learner_side(self, exc: BaseException) -> GameProcessError:
        self._hub = None
        return GameProcessError(
            -1,
            "lost the Ray node of the learner's machine (the games' writer ran there: "
            f"{type(exc).__name__}); the run stops. Every game it confirmed is in the root; "
            "start Ray again and run bgtrain run again to go on",
        )

    def _remember_machines(self, reports: list[Report]) -> None:
        for report in reports:
            node = node_of(report.machine) if isinstance(report, GameReport) else None
            if node is not None:
                self._machines[node] = report.machine

    def _check_nodes(self) -> None:
        """Say once when a machine that played games left the cluster."""
        now = time.monotonic()
        if now < self._next_node_check or not self._machines:
            return
        self._next_node_check = now + NODE_CHECK_S
        alive = {n["NodeID"][:8] for n in self._ray.nodes() if n.get("Alive")}
        for node, machine in self._machines.items():
            if node not in alive and node not in self._lost_nodes:
                self._lost_nodes.add(node)
                self._console(
                    f"[WARN] Game machine {machine} left the cluster: its games in progress "
                    "are lost (never episodes); Ray restarts its game processes where the "
                    "cluster has room"
                )

    def games_alive(self) -> int:
        if not self._runs:
            return 0
        _, running = self._ray.wait(self._runs, num_returns=len(self._runs), timeout=0)
        return len(running)

    def stop(self) -> None:
        try:
            self._stop_games()
        finally:
            self._learner.stop()
            self._disconnect()

    def _stop_games(self) -> None:
        if not self._actors:
            return
        ray = self._ray
        acks = [actor.stop.remote() for actor in self._actors]
        answered, _ = ray.wait(acks, num_returns=len(acks), timeout=STOP_ACK_TIMEOUT_S)
        running = [run for run, ack in zip(self._runs, acks, strict=True) if ack in answered]
        deadline = time.monotonic() + GAMES_STOP_TIMEOUT_S
        while running and time.monotonic() < deadline:
            _, running = ray.wait(running, num_returns=len(running), timeout=0.1)
            self._late += self._drain(0)
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._late += self._drain(0)
        self._actors = self._runs = []

    def _drain(self, timeout: float) -> list[Report]:
        if self._hub is None:
            return []
        try:
            got = self._ray.get(self._hub.take_reports.remote(timeout))
        except self._ray.exceptions.RayError:
            return []
        self._remember_machines(got)
        return got

    def _disconnect(self) -> None:
        if self._hub is not None:
            with contextlib.suppress(Exception):
                self._ray.kill(self._hub)
            self._hub = None
        if self._connected_here:
            self._ray.shutdown()
            self._connected_here = False

    def kill(self) -> None:
        # From a signal handler: no Ray call (it may hold locks the interrupted code
        # holds). The process exits next, and Ray ends the actors this driver owns.
        self._learner.kill()
