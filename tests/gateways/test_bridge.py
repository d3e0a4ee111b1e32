"""The bridge with real parts: a hub on ipc, bus clients, routers on loopback, PsEPR clients."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import zmq

from dsmt.actor import Origin
from dsmt.bus import Bus
from dsmt.channels import Layout
from dsmt.childspec import ChildSpec
from dsmt.context import Context
from dsmt.event import RECORD, STATUS, Address
from dsmt.hub import Hub
from dsmt.node import Node
from dsmt.registry import Registry
from dsmt.testing import stop_all, wait_for
from gateways.bridge import Bridge, BridgeConfig, resync_request
from gateways.psepr import lease_machine as lm

from .conftest import PASSWORD

pytestmark = pytest.mark.timeout(60)

BOUND = 10.0


class Sliver:
    """A hub on ipc, a bus, a context and the bridge actor of sliver ``s1``."""

    def __init__(self, tmp_path) -> None:
        self.zmq = zmq.Context()
        self.hub = Hub(self.zmq, tmp_path / "hub", stats_interval=None).start()
        self.bus = Bus(self.zmq, self.hub.endpoints)
        self.registry = Registry()
        self.layout = Layout("test")
        self.ctx = Context("s1", self.layout, publishers=self.bus.publisher,
                           registry=self.registry)
        self.ref = None
        self.owned: list = []

    def start_bridge(self, routers, **changes) -> None:
        settings = dict(service="carol", password=PASSWORD, export_prefixes=("/test/",),
                        import_prefixes=(), reconnect_min=0.05, reconnect_max=0.2,
                        lease_retry_after=0.5)
        settings.update(changes)
        config = BridgeConfig(routers=tuple(r.address for r in routers), **settings)
        self.ref = Bridge.start(Origin(self.ctx, "/s1/bridge"), config=config, bus=self.bus)

    def inspect(self) -> dict:
        return self.ref.proxy().inspect().get(timeout=BOUND)

    def counters(self) -> dict:
        return self.inspect()["counters"]

    def wait_connected(self, router=None) -> dict:
        want = None if router is None else "%s:%d" % router.address

        def ready():
            snap = self.inspect()
            bridge = snap["bridge"]
            return bridge["connected"] and (want is None or bridge["router"] == want) and all(
                lease["state"] == lm.GRANTED for lease in bridge["leases"]) and snap
        return wait_for(ready, BOUND, "the bridge connected with its leases granted")

    def publisher(self, service: str = "app"):
        pub = self.bus.publisher(Address(service, "s1"))
        self.owned.append(pub)
        return pub

    def subscriber(self, prefixes, snapshot: bool = False):
        sub = self.bus.subscriber(prefixes, snapshot=snapshot)
        self.owned.append(sub)
        return sub

    def close(self) -> None:
        for item in self.owned:
            item.close()
        stop_all(self.registry, BOUND)
        self.hub.stop()
        self.zmq.destroy(linger=0)


@pytest.fixture
def sliver(tmp_path):
    s = Sliver(tmp_path)
    yield s
    s.close()


def leased(make_client, router, prefix: str, service: str = "dave"):
    """A PsEPR client on ``router`` holding a granted lease on ``prefix``, and what it got."""
    got: list = []
    client = make_client(router, service)
    sub = client.lease(prefix, got.append)
    wait_for(lambda: sub.state == lm.GRANTED, BOUND, f"{service}'s lease on {prefix}")
    return client, got


def received(sub, predicate, what: str = "an event"):
    """Read ``sub`` until an event satisfies ``predicate``; returns every event read."""
    seen = []
    wait_for(lambda: (lambda e: e is not None and (seen.append(e) or predicate(e)))(
        sub.recv(0.05)), BOUND, what)
    return seen


def test_an_event_under_an_export_prefix_reaches_the_router_and_one_outside_does_not(
        sliver, router, make_client):
    _, got = leased(make_client, router, "/test/")
    _, other = leased(make_client, router, "/elsewhere/", service="bob")
    sliver.start_bridge([router], export_prefixes=("/test/out/",))
    sliver.wait_connected()
    pub = sliver.publisher()
    outside = pub.publish("/elsewhere/x/", RECORD, "no")
    inside = pub.publish("/test/out/a/", RECORD, {"n": 1})
    wait_for(lambda: got, BOUND, "the exported event at the router-side subscriber")
    event = got[0]
    assert (event.id, event.sender, event.payload) == (inside.id, inside.sender, {"n": 1})
    assert all(e.channel.startswith("/test/out/") for e in got)
    assert not [e for e in other if e.id == outside.id]
    assert sliver.counters()["exported"] >= 1


def test_imported_events_reach_the_hub_once_and_neither_direction_loops(
        sliver, router, make_client):
    # Export and import overlap on /test/: the hub shows the bridge its own
    # imports, and the router would send it its own exports but for the import
    # lease's echo=False (a router without that option: the importer's unit tests).
    _, dave = leased(make_client, router, "/test/")
    bob = make_client(router, "bob")
    sliver.start_bridge([router], export_prefixes=("/test/",), import_prefixes=("/test/",))
    sliver.wait_connected()
    hub_side = sliver.subscriber("/test/")
    pub = sliver.publisher()

    local = pub.publish("/test/local/", RECORD, "from the hub")
    wait_for(lambda: any(e.id == local.id for e in dave), BOUND, "the export at dave")
    remote = bob.make("/test/remote/", RECORD, "from psepr")
    bob.publish(remote)
    seen = received(hub_side, lambda e: e.id == remote.id, "the imported event on the hub")
    imported = seen[-1]
    assert (imported.sender, imported.seq, imported.payload) == (remote.sender, remote.seq,
                                                                 "from psepr")
    wait_for(lambda: sliver.counters()["loops"] >= 1, BOUND, "the import seen by the reader")

    # Markers behind both: once they arrived, a copy sent back would have too.
    marker = pub.publish("/test/marker/", RECORD, "m")
    wait_for(lambda: any(e.id == marker.id for e in dave), BOUND, "the marker at dave")
    last = bob.make("/test/last/", RECORD, "l")
    bob.publish(last)
    seen += received(hub_side, lambda e: e.id == last.id, "the last import on the hub")
    assert [e.id for e in dave].count(remote.id) == 1
    assert [e.id for e in dave].count(local.id) == 1
    assert [e.id for e in seen].count(local.id) == 1
    assert [e.id for e in seen].count(remote.id) == 1
    counters = sliver.counters()
    assert counters["imported"] == 2 and counters["echoes"] == 0 and counters["loops"] >= 1


def test_a_restarted_router_gets_the_newest_state_of_every_key_and_overflow_is_counted(
        sliver, make_router, make_client):
    first = make_router("r1")
    port = first.address[1]
    sliver.start_bridge([first], buffer_max_events=20)
    sliver.wait_connected()
    status = sliver.subscriber(sliver.layout.status("bridge"), snapshot=True)
    first.stop()
    wait_for(lambda: not sliver.inspect()["bridge"]["connected"], BOUND, "the loss noticed")

    pub = sliver.publisher()
    keys = [f"/test/status/k{i}/" for i in range(5)]
    for value in range(10):
        for key in keys:
            pub.publish(key, STATUS, {"value": value}, retain=True)
    for n in range(30):
        pub.publish("/test/log/", RECORD, n)
    wait_for(lambda: sliver.counters()["dropped"] == 15, BOUND, "the overflow counted")
    counters = sliver.counters()
    assert counters["compacted"] == 5 * 9
    assert counters["buffered"] == 20 and counters["lost"] == 0
    report = received(status, lambda e: e.payload.get("dropped") == 15,
                      "the loss in the bridge's status")[-1]
    assert report.payload["state"] == "requested"
    assert report.payload["reason"].startswith("lost router")

    second = make_router("r1", listen=("127.0.0.1", port))
    snap = sliver.wait_connected(second)
    assert snap["counters"]["reconnects"] == 1 and snap["counters"]["buffered"] == 0
    assert snap["state"] == "running"

    late, got = leased(make_client, second, "/test/status/")
    late.publish(resync_request(late, "/test/status/"))
    newest = {}

    def complete():
        for event in got:
            newest[event.channel] = event.payload["value"]
        return len(newest) == 5 and all(v == 9 for v in newest.values())
    wait_for(complete, BOUND, lambda: f"every key at its newest value, got {newest}")


def test_the_bridge_fails_over_to_the_other_router_and_traffic_resumes(
        sliver, make_router, make_client):
    routers = [make_router("r1"), make_router("r2")]
    sliver.start_bridge(routers, import_prefixes=("/test/in/",))
    snap = sliver.wait_connected()
    used = next(r for r in routers if "%s:%d" % r.address == snap["bridge"]["router"])
    other = routers[1] if used is routers[0] else routers[0]
    _, got = leased(make_client, other, "/test/out/")
    bob = make_client(other, "bob")
    hub_side = sliver.subscriber("/test/in/")

    used.stop()
    sliver.wait_connected(other)
    sent = sliver.publisher().publish("/test/out/after/", RECORD, "after failover")
    wait_for(lambda: any(e.id == sent.id for e in got), BOUND, "export through the new router")
    incoming = bob.make("/test/in/after/", RECORD, "import after failover")
    bob.publish(incoming)
    received(hub_side, lambda e: e.id == incoming.id, "import through the new router")
    assert sliver.counters()["reconnects"] == 1


def test_garbage_on_the_hub_side_never_stops_the_bridge(sliver, router, make_client):
    _, got = leased(make_client, router, "/test/")
    sliver.start_bridge([router])
    sliver.wait_connected()
    raw = sliver.zmq.socket(zmq.XPUB)
    sliver.owned.append(raw)
    raw.linger = 0
    raw.connect(sliver.hub.endpoints.publish)
    assert raw.poll(BOUND * 1000) and raw.recv() == b"\x01"  # the hub subscribed
    for frames in ([b"/test/g/"], [b"/test/g/", b"\xc1garbage"], [b"/test/g/", b"", b""],
                   [b"not a channel", b"x"], [b"/test/\x00/", b"\x93\x01\x02\x03"]):
        raw.send_multipart(frames)
    pub = sliver.publisher()
    # These decode on the hub, but PsEPR XML cannot carry them: too big, too deep.
    pub.publish("/test/big/", RECORD, "x" * 100_000)
    deep: list = []
    for _ in range(60):
        deep = [deep]
    pub.publish("/test/deep/", RECORD, deep)
    good = pub.publish("/test/good/", RECORD, "still here")
    wait_for(lambda: any(e.id == good.id for e in got), BOUND, "a good event after garbage")
    wait_for(lambda: sliver.hub.stats()["dropped"] >= 5, BOUND, "the hub's drop count")
    snap = sliver.inspect()
    assert snap["state"] == "running" and sliver.ref.is_alive()
    assert snap["counters"]["unexportable"] == 2
    assert snap["bridge"]["last_problem"]
    assert {e.channel for e in got} == {"/test/good/"}


def test_the_retained_state_on_the_hub_at_start_is_exported_but_only_this_slivers(
        sliver, router, make_client):
    _, got = leased(make_client, router, "/test/")
    mine = sliver.publisher().publish("/test/mine/", STATUS, "s1's", retain=True)
    # Retained on the hub by an earlier bridge that imported it: not this sliver's to send.
    theirs = sliver.bus.publisher(Address("app", "s2"))
    sliver.owned.append(theirs)
    theirs.publish("/test/theirs/", STATUS, "s2's", retain=True)
    sliver.start_bridge([router])
    sliver.wait_connected()
    wait_for(lambda: any(e.id == mine.id for e in got), BOUND, "the snapshot's own event")
    marker = sliver.publisher().publish("/test/marker/", RECORD, "live")
    wait_for(lambda: any(e.id == marker.id for e in got), BOUND, "a live event after it")
    assert "/test/theirs/" not in {e.channel for e in got}
    assert sliver.counters()["foreign"] == 1


def test_a_bridge_in_a_node_finds_the_bus_walks_to_running_and_stops_cleanly(
        router, make_client):
    run_dir = Path(tempfile.mkdtemp(prefix="dsmt-bridge-", dir="/tmp"))
    config = BridgeConfig(routers=(router.address,), service="carol", password=PASSWORD,
                          export_prefixes=("/org/dsmt/ns/deployment/test/",),
                          reconnect_min=0.05, reconnect_max=0.2)
    _, got = leased(make_client, router, "/org/dsmt/ns/deployment/test/")
    node = Node("s1", Layout("test"), run_dir, [ChildSpec("bridge", Bridge, {"config": config})])
    try:
        node.start()
        wait_for(lambda: [e.payload["state"] for e in got
                          if e.payload.get("component") == "bridge"][-1:] == ["running"],
                 BOUND, "the bridge's running status at the router")
        states = [e.payload["state"] for e in got if e.payload.get("component") == "bridge"]
        # What was published before the connection reached the router as the newest state.
        assert states[-1] == "running"
        assert node.stop() == 0
        assert len(node.registry) == 0
    finally:
        node.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
