"""A slice spread over network namespaces: routers and slivers on separate hosts.

:class:`NetSlice` is a :class:`actors.localslice.LocalSlice` (same folder
layout, accounts, slice key, node.toml and plan) whose router(s) and slivers
run in the hosts of a :class:`tests.netns.network.Network`::

    r1: dsmt router (127.0.0.1:23345, mesh 198.18.0.1:23341)
        delay relay (tests.netns.delay): 0.0.0.0:2400N -> 127.0.0.1:23345, one per sliver
    sN: dsmt node, its bridge dialling 198.18.0.(home router):2400N; its app processes

Every sliver reaches its router through its own relay listener, so latency
is added per sliver (:meth:`delay`) without netem. With ``routers=2`` the
routers peer (r2 dials r1) and ``homes`` says which router each sliver uses.

Faults: :meth:`kill_app`, :meth:`kill_node` (the node agent only: its apps
live on, to be re-adopted), :meth:`kill_sliver` (node and apps),
:meth:`kill_router`, each with SIGKILL; :meth:`start_sliver` and
:meth:`start_router` bring them back; :meth:`cut`/:meth:`restore` a sliver's
link, :meth:`partition`/:meth:`heal` groups of hosts, :meth:`delay`.

:meth:`stop` stops every process, kills what is left under the slice's
folder and deletes the namespaces; the fixture in ``conftest.py`` then
checks that no process and no namespace of the run is left.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from actors.localslice import LocalSlice, Sliver, _readline, _terminate
from tests.netns.network import Network

REPO = Path(__file__).resolve().parents[2]
CLIENT_PORT = 23345
MESH_PORT = 23341
RELAY_BASE = 24000


@dataclass
class NetSlice(LocalSlice):
    routers: int = 1
    homes: dict[str, str] = field(default_factory=dict)   # sliver -> router host
    network: Network | None = None
    router_procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    relays: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.port = CLIENT_PORT
        self.router_names = [f"r{i + 1}" for i in range(self.routers)]
        for member in self.members:
            self.homes.setdefault(member.name, self.router_names[0])

    # --- LocalSlice hooks ----------------------------------------------------------------

    def routers_for(self, member: Sliver) -> list[str]:
        home = self.homes[member.name]
        return [f"{self.network.addresses[home]}:{self.relay_port(member.name)}"]

    def wrap(self, where: str, argv: list[str]) -> list[str]:
        return self.network.exec(where, argv)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> NetSlice:
        self.network = Network([*self.router_names, *(m.name for m in self.members)])
        atexit.register(self.stop)  # a run that dies without its fixture's cleanup
        try:
            self.write()
            if self.routers > 1:
                self._mesh_account()
            for router in self.router_names:
                self._write_router(router)
                self._start_relay(router, timeout)
                self.start_router(router, timeout)
            for member in self.members:
                self.start_sliver(member.name)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every process (SIGTERM, then SIGKILL what is left) and delete the hosts."""
        atexit.unregister(self.stop)
        for member in self.members:
            _terminate(member.process, timeout)
        for process in [*self.router_procs.values(), *self.relays.values()]:
            _terminate(process, timeout)
        self.kill_leftovers()
        if self.network is not None:
            self.network.close()

    def relay_port(self, sliver: str) -> int:
        return RELAY_BASE + int(sliver[1:])

    def _mesh_account(self) -> None:
        """The routers log in to each other as ``psepr-mesh``, with the slice's password."""
        from gateways.psepr import accounts

        with open(self.root / "accounts.toml", "a") as f:
            f.write(f'"psepr-mesh" = "{accounts.hash_password(self.password)}"\n')

    def _write_router(self, router: str) -> None:
        address = self.network.addresses[router]
        peers = [f'"{self.network.addresses[r]}:{MESH_PORT}"' for r in self.router_names
                 if r < router]  # each router dials those before it: one link per pair
        (self.root / f"{router}.toml").write_text(
            f'[router]\nname = "{router}"\nlisten = "127.0.0.1:{CLIENT_PORT}"\n'
            f'accounts = "{self.root / "accounts.toml"}"\ninsecure = true\nheartbeat = 1.0\n\n'
            f'[mesh]\nlisten = "{address}:{MESH_PORT}"\npeers = [{", ".join(peers)}]\n'
            f'password_file = "{self.root / "slice.secret"}"\nretry_min = 0.2\nretry_max = 1.0\n')

    def start_router(self, router: str = "r1", timeout: float = 30.0) -> None:
        log = open(self.root / f"{router}.log", "ab")
        process = subprocess.Popen(
            self.network.exec(router, [self.python, "-m", "dsmt.cli", "router", "--config",
                                       str(self.root / f"{router}.toml")]),
            stdout=subprocess.PIPE, stderr=log, start_new_session=True, cwd=self.root)
        self.router_procs[router] = process
        if router == self.router_names[0]:
            self.router = process
        line = _readline(process, timeout)
        if "listening" not in line:
            raise RuntimeError(f"router {router} did not start: {line!r} (see {log.name})")

    def _start_relay(self, router: str, timeout: float) -> None:
        routes = [f"--route=0.0.0.0:{self.relay_port(m.name)}=127.0.0.1:{CLIENT_PORT}"
                  for m in self.members if self.homes[m.name] == router]
        process = subprocess.Popen(
            self.network.exec(router, [self.python, "-m", "tests.netns.delay", *routes,
                                       "--control", str(self._control(router))]),
            stdout=subprocess.PIPE, stderr=open(self.root / f"relay-{router}.log", "ab"),
            start_new_session=True, cwd=self.root,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        self.relays[router] = process
        if "relay listening" not in _readline(process, timeout):
            raise RuntimeError(f"the delay relay in {router} did not start")

    def _control(self, router: str) -> Path:
        return self.root / f"relay-{router}.sock"

    # --- faults ---------------------------------------------------------------------------

    def kill_app(self, sliver: str) -> list[int]:
        """SIGKILL the sliver's application processes; their pids."""
        doomed = self.instances()[sliver]
        for process in doomed:
            _kill(process.pid)
        psutil.wait_procs(doomed, timeout=5)
        return [p.pid for p in doomed]

    def kill_node(self, sliver: str) -> None:
        """SIGKILL the sliver's node agent only (its applications keep running)."""
        member = self.member(sliver)
        if member.process is not None:
            _kill(member.process.pid)
            member.process.wait()
            member.process = None

    def kill_sliver(self, sliver: str) -> None:
        """SIGKILL the sliver's node agent and every application process it runs."""
        apps = self.instances()[sliver]
        self.kill_node(sliver)
        for process in apps:
            _kill(process.pid)
        psutil.wait_procs(apps, timeout=5)

    def kill_router(self, router: str = "r1") -> None:
        process = self.router_procs.pop(router)
        _kill(process.pid)
        process.wait()

    def running(self, sliver: str) -> bool:
        process = self.member(sliver).process
        return process is not None and process.poll() is None

    def cut(self, sliver: str) -> None:
        self.network.cut(sliver)

    def restore(self, sliver: str) -> None:
        self.network.restore(sliver)

    def partition(self, *groups: list[str]) -> None:
        self.network.partition(*groups)

    def heal(self) -> None:
        self.network.heal()

    def delay(self, sliver: str | None, seconds: float) -> None:
        """Add ``seconds`` each way between ``sliver`` (None: every sliver) and its router."""
        routers = self.router_names if sliver is None else [self.homes[sliver]]
        port = 0 if sliver is None else self.relay_port(sliver)
        for router in routers:
            reply = _control(self._control(router), f"delay {port} {seconds}")
            if reply != "ok":
                raise RuntimeError(f"relay {router}: {reply}")

    def delays(self, router: str = "r1") -> str:
        return _control(self._control(router), "show")


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _control(path: Path, line: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(line.encode() + b"\n")
        return s.makefile().readline().strip()
