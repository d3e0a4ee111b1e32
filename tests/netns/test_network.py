"""The multi-host harness itself: links really cut and restore, the relay really delays,
and nothing is left behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from dsmt.testing import wait_for
from tests.netns import network
from tests.netns.harness import REPO, _control
from tests.netns.network import Network

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def net():
    made = Network(["r1", "s1", "s2"])
    yield made
    made.close()
    assert [n for n in network.namespaces() if n.startswith(made.prefix)] == []


class Echo:
    """A TCP echo server bound in a namespace (the socket stays there)."""

    def __init__(self, net: Network, host: str, port: int) -> None:
        self.sock = net.call(host, socket.create_server, ("0.0.0.0", port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def close(self) -> None:
        self.sock.close()


def reaches(net: Network, host: str, address: tuple[str, int], timeout: float = 1.0) -> bool:
    """A TCP connection from ``host`` to ``address`` gets an echo within ``timeout``."""
    def attempt() -> bool:
        try:
            with socket.create_connection(address, timeout=timeout) as s:
                s.sendall(b"ping")
                return s.recv(4) == b"ping"
        except OSError:
            return False
    return net.call(host, attempt)


def round_trip(net: Network, host: str, address: tuple[str, int]) -> float:
    def measure() -> float:
        with socket.create_connection(address, timeout=5) as s:
            s.sendall(b"warm")
            s.recv(4)
            began = time.monotonic()
            s.sendall(b"ping")
            assert s.recv(4) == b"ping"
            return time.monotonic() - began
    return net.call(host, measure)


def test_cutting_a_link_blocks_tcp_and_restoring_it_unblocks_it(net):
    echo = Echo(net, "r1", 7000)
    try:
        target = (net.addresses["r1"], 7000)
        assert reaches(net, "s1", target)
        net.cut("s1")
        assert not reaches(net, "s1", target)
        assert reaches(net, "s2", target), "only s1's link is cut"
        net.restore("s1")
        wait_for(lambda: reaches(net, "s1", target), timeout=10, message="s1 reaches r1 again")
    finally:
        echo.close()


def test_a_partition_blocks_tcp_between_groups_only_until_healed(net):
    echo_r1, echo_s2 = Echo(net, "r1", 7001), Echo(net, "s2", 7001)
    try:
        to_r1, to_s2 = (net.addresses["r1"], 7001), (net.addresses["s2"], 7001)
        net.partition(["r1", "s1"], ["s2"])
        assert reaches(net, "s1", to_r1), "same group"
        assert not reaches(net, "s2", to_r1)
        assert not reaches(net, "s1", to_s2)
        net.heal()
        wait_for(lambda: reaches(net, "s2", to_r1) and reaches(net, "s1", to_s2), timeout=10,
                 message="the groups reach each other again")
    finally:
        echo_r1.close()
        echo_s2.close()


def test_the_delay_relay_adds_200_ms_each_way_and_removes_it(net, tmp_path):
    echo = Echo(net, "r1", 7002)
    control = tmp_path / "relay.sock"
    relay = subprocess.Popen(
        net.exec("r1", [sys.executable, "-m", "tests.netns.delay",
                        "--route=0.0.0.0:24001=127.0.0.1:7002", "--control", str(control)]),
        stdout=subprocess.PIPE, start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert relay.stdout.readline().strip() == b"relay listening"
        through = (net.addresses["r1"], 24001)
        plain = round_trip(net, "s1", through)
        assert _control(control, "delay 24001 0.2") == "ok"
        delayed = round_trip(net, "s1", through)
        assert _control(control, "delay 0 0") == "ok"
        back = round_trip(net, "s1", through)
        print(f"\nround trip through the relay: {plain * 1000:.1f} ms, with 200 ms each way "
              f"{delayed * 1000:.1f} ms, removed {back * 1000:.1f} ms")
        assert delayed >= 0.4
        assert delayed - plain >= 0.39
        assert back < 0.2
    finally:
        relay.kill()
        relay.wait()
        echo.close()


def test_closing_the_network_removes_its_namespaces_and_the_stale_ones_of_dead_runs():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = f"{network.PREFIX}{dead.pid}-1-sw"
    network.ip("netns", "add", stale)
    made = Network(["r1", "s1"])  # removes the stale namespace on start
    try:
        assert stale not in network.namespaces()
        mine = [n for n in network.namespaces() if n.startswith(made.prefix)]
        assert sorted(mine) == sorted(made.ns(h) for h in ("sw", "r1", "s1"))
    finally:
        made.close()
    assert [n for n in network.namespaces() if n.startswith(made.prefix)] == []


def test_a_net_slice_stops_every_process_and_namespace(net_slice, demo_plan_3):
    slice_ = net_slice(slivers=2, plan=demo_plan_3).start()
    wait_for(lambda: all(slice_.instances().values()), timeout=60,
             message=lambda: f"an instance on each sliver, have {slice_.instances()}")
    assert slice_.processes()
    slice_.stop()
    assert slice_.processes() == []
    assert [n for n in network.namespaces() if n.startswith(slice_.network.prefix)] == []
