"""Fixtures for the PsEPR tests: real routers on 127.0.0.1, real clients, raw wire sockets.

Every router binds port 0; every socket read is bounded by a timeout; every
router, client and subprocess a test makes is stopped by its fixture.
"""

from __future__ import annotations

import dataclasses
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dsmt.event import LEASE, Address, Event, Sequencer
from gateways.psepr import accounts, config, inbound, stream, xml
from gateways.psepr.client import Client
from gateways.psepr.lease_machine import Timing
from gateways.psepr.router import RouterThread

PASSWORD = "pw"
MESH_PASSWORD = "mesh-secret"
SERVICES = ("alice", "bob", "carol", "dave", "fuzz", "slow", "bench")
# Cheap scrypt cost: the tests check the logic, not the cost.
HASH = accounts.hash_password(PASSWORD, n=1 << 10)
MESH_HASH = accounts.hash_password(MESH_PASSWORD, n=1 << 10)
ROOT = Path(__file__).resolve().parents[2]


def router_config(name: str = "r1", **changes) -> config.RouterConfig:
    hashes = {s: HASH for s in SERVICES}
    hashes["psepr-mesh"] = MESH_HASH
    mesh = dataclasses.replace(config.Mesh(password=MESH_PASSWORD, retry_min=0.05, retry_max=0.5),
                               **changes.pop("mesh", {}))
    limits = dataclasses.replace(config.Limits(), **changes.pop("limits", {}))
    base = config.RouterConfig(name=name, listen=("127.0.0.1", 0),
                               accounts=accounts.Accounts(hashes), heartbeat=None,
                               mesh=mesh, limits=limits)
    return base.replace(**changes)


@pytest.fixture
def make_router():
    started: list[RouterThread] = []

    def make(name: str = "r1", **changes) -> RouterThread:
        rt = RouterThread(router_config(name, **changes)).start()
        started.append(rt)
        return rt

    yield make
    for rt in started:
        rt.stop()


@pytest.fixture
def router(make_router) -> RouterThread:
    return make_router()


FAST = Timing(retry_after=0.5, max_tries=10, renew_at=0.8)


@pytest.fixture
def make_client():
    made: list[Client] = []

    def make(rt_or_addresses, service: str = "alice", *, instance: str | None = None,
             password: str = PASSWORD, timing: Timing = FAST, connect: bool = True,
             **kw) -> Client:
        addresses = rt_or_addresses if isinstance(rt_or_addresses, list) \
            else [rt_or_addresses.address]
        client = Client(addresses, service, password, instance=instance, timing=timing,
                        reconnect_pause=kw.pop("reconnect_pause", 0.05), **kw)
        made.append(client)
        client.start()
        if connect:
            assert client.wait_connected(10), f"{service} did not connect"
        return client

    yield make
    for client in made:
        client.close()


def stats(rt: RouterThread) -> dict:
    return rt.call(lambda: dict(rt.router.stats))


def lease_count(rt: RouterThread) -> int:
    return rt.call(lambda: len(rt.router.leases))


class Wire:
    """A raw socket speaking the stream by hand, as a 2005 client did."""

    def __init__(self, address, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.timeout = timeout
        self.parser = inbound.StreamParser()
        self.items: list = []
        self.closed = False
        self.error: stream.StreamError | None = None
        self.host = "r1"
        self.seq = Sequencer(Address("wire"))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def pump(self, wait: float) -> None:
        """Read what arrives within ``wait`` seconds into ``items``."""
        if self.closed:
            return
        ready, _, _ = select.select([self.sock], [], [], wait)
        if not ready:
            return
        try:
            data = self.sock.recv(1 << 16)
        except (ConnectionResetError, socket.timeout):
            data = b""
        if not data:
            self.closed = True
            return
        try:
            self.items.extend(self.parser.feed(data))
        except stream.StreamError as exc:
            self.error = exc
            self.closed = True

    def expect(self, predicate, timeout: float | None = None, what: str = "an item"):
        """The first item (consumed) for which ``predicate`` holds; fails after ``timeout``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, item in enumerate(self.items):
                if predicate(item):
                    del self.items[i]
                    return item
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                raise AssertionError(f"no {what} within the timeout (closed={self.closed}, "
                                     f"error={self.error}, {len(self.items)} items, last "
                                     f"{self.items[-3:]!r})")
            self.pump(min(remaining, 0.2))

    def drain(self) -> None:
        """Read everything already waiting, without blocking."""
        before = -1
        while not self.closed and before != len(self.items):
            before = len(self.items)
            self.pump(0)

    def wait_closed(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.closed:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "the router did not close the connection"
            self.pump(min(remaining, 0.2))

    def open(self, host: str = "r1") -> stream.StreamHeader:
        self.send(stream.stream_header(to=host))
        return self.expect(lambda i: isinstance(i, stream.StreamHeader), what="stream header")

    def login(self, service: str = "alice", password: str = PASSWORD,
              instance: str | None = None) -> "Wire":
        self.open()
        self.send(stream.auth_set("a2", service, password, instance))
        reply = self.expect(lambda i: _is(i, stream.IQ), what="login answer")
        assert reply.get("type") == "result", "login refused"
        return self

    def event(self, channel: str, type: str, payload, **kw) -> Event:
        return self.seq.make(channel, type, payload, **kw)

    def publish(self, event: Event) -> None:
        self.send(stream.message_stanza(event, to=f"psepr_registry@{self.host}"))

    def lease(self, channel: str, identifier: str = "l1", duration: float = 60.0,
              type: str | None = None, op: str = "register") -> None:
        self.publish(self.event(channel, LEASE, {"op": op, "identifier": identifier,
                                                 "duration": duration, "type": type}))

    def grant(self, identifier: str = "l1") -> dict:
        ev = self.next_event(lambda e: e.type == LEASE and e.payload["op"] == "lease"
                             and e.payload["identifier"] == identifier, what="lease grant")
        return ev.payload

    def next_event(self, predicate=lambda e: True, timeout: float | None = None,
                   what: str = "event") -> Event:
        item = self.expect(lambda i: _is(i, stream.MESSAGE) and _has_event(i)
                           and predicate(stream.message_event(i)), timeout, what)
        return stream.message_event(item)

    def events(self, wait: float) -> list[Event]:
        """Every event that arrives within ``wait`` seconds (for "nothing arrives" checks)."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not self.closed:
            self.pump(deadline - time.monotonic())
        found = [stream.message_event(i) for i in self.items
                 if _is(i, stream.MESSAGE) and _has_event(i)]
        self.items = [i for i in self.items if not (_is(i, stream.MESSAGE) and _has_event(i))]
        return found

    def close(self) -> None:
        self.sock.close()


def _is(item, tag: str) -> bool:
    return not isinstance(item, stream.StreamHeader) and item is not inbound.END \
        and item.tag == tag


def _has_event(item) -> bool:
    return item.find(xml.EVENT_TAG) is not None


@pytest.fixture
def wire():
    made: list[Wire] = []

    def make(rt_or_address) -> Wire:
        address = rt_or_address if isinstance(rt_or_address, tuple) else rt_or_address.address
        w = Wire(address)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


class RouterProcess:
    """``dsmt router`` in a subprocess; ``start()`` returns once it prints its ready line."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.proc: subprocess.Popen | None = None
        self.address: tuple[str, int] | None = None
        self.mesh_address: tuple[str, int] | None = None

    def start(self, timeout: float = 20.0) -> "RouterProcess":
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from dsmt.cli import main; main()", "router",
             "--config", str(self.config_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("router "):
            self.kill()
            raise AssertionError(f"router did not start: {line!r} "
                                 f"{self.proc.stderr.read().decode()[-2000:]}")
        words = line.split()
        self.address = config.parse_address(words[4], 0)
        if words[6] != "-":
            self.mesh_address = config.parse_address(words[6], 0)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def router_process(tmp_path):
    made: list[RouterProcess] = []

    def make(name: str, *, listen: str = "127.0.0.1:0", mesh_listen: str | None = None,
             peers: tuple[str, ...] = (), extra: str = "") -> RouterProcess:
        accounts_file = tmp_path / "accounts.toml"
        lines = [f'"{s}" = "{HASH}"' for s in SERVICES] + [f'"psepr-mesh" = "{MESH_HASH}"']
        accounts_file.write_text("[accounts]\n" + "\n".join(lines) + "\n")
        path = tmp_path / f"{name}.toml"
        mesh = [f'password = "{MESH_PASSWORD}"', "retry_min = 0.05", "retry_max = 0.5"]
        if mesh_listen:
            mesh.append(f'listen = "{mesh_listen}"')
        if peers:
            mesh.append("peers = [" + ", ".join(f'"{p}"' for p in peers) + "]")
        path.write_text(
            f'[router]\nname = "{name}"\nlisten = "{listen}"\naccounts = "accounts.toml"\n'
            f'heartbeat = "infinity"\n{extra}\n[mesh]\n' + "\n".join(mesh) + "\n")
        rp = RouterProcess(path)
        made.append(rp)
        return rp

    yield make
    for rp in made:
        rp.stop()
