"""The router mesh: each subscriber gets each event exactly once, in cycles and lines,
interests are withdrawn everywhere, and a restarted middle router heals the mesh."""

from __future__ import annotations

import threading

import pytest

from dsmt.event import ATTRIBUTE
from dsmt.testing import wait_for

from .conftest import lease_count, stats

pytestmark = pytest.mark.timeout(60)

N = 40


def _mesh_router(make_router, name, *peers, **mesh):
    return make_router(name, mesh={"listen": ("127.0.0.1", 0),
                                   "peers": tuple(p.mesh_address for p in peers), **mesh})


class Inbox:
    def __init__(self) -> None:
        self.events = []
        self.lock = threading.Lock()

    def __call__(self, event) -> None:
        with self.lock:
            self.events.append(event)

    def ids(self) -> list[str]:
        with self.lock:
            return [e.id for e in self.events]


def _publish(client, n=N, channel="/m/x/"):
    made = [client.make(channel, ATTRIBUTE, {"field": "i", "value": str(i)}) for i in range(n)]
    for event in made:
        client.publish(event)
    return [e.id for e in made]


def _peers(rt) -> set[str]:
    return rt.call(lambda: rt.router.mesh.peer_names())


@pytest.fixture
def triangle(make_router):
    """c; b dials c; a dials b and c: a cycle a-b-c-a."""
    c = _mesh_router(make_router, "c")
    b = _mesh_router(make_router, "b", c)
    a = _mesh_router(make_router, "a", b, c)
    wait_for(lambda: _peers(a) == {"b", "c"} and _peers(b) == {"a", "c"}
             and _peers(c) == {"a", "b"}, 10, "triangle links")
    return a, b, c


def test_in_a_triangle_each_event_reaches_a_subscriber_exactly_once(triangle, make_client):
    a, b, c = triangle
    inbox = Inbox()
    sub = make_client(c, "carol")
    sub.lease("/m/", inbox)
    # c's interest reaches a directly and by way of b, and b directly and by way of a.
    wait_for(lambda: lease_count(a) == 2 and lease_count(b) == 2 and lease_count(c) == 1, 10,
             "interest to spread")
    sent = _publish(make_client(a, "alice")) + _publish(make_client(b, "bob"))
    wait_for(lambda: len(inbox.ids()) >= 2 * N, 10, "deliveries")
    # Every copy that took the longer way round has been seen and dropped.
    wait_for(lambda: stats(c).get("duplicates", 0) == 2 * N, 10, "the second copies")
    assert sorted(inbox.ids()) == sorted(sent)


def test_a_withdrawn_interest_disappears_from_every_router_of_a_cycle(triangle, make_client):
    a, b, c = triangle
    sub = make_client(c, "carol")
    lease = sub.lease("/m/", Inbox())
    wait_for(lambda: lease_count(a) == 2 and lease_count(b) == 2, 10, "interest to spread")
    sub.unlease(lease)
    wait_for(lambda: lease_count(a) == lease_count(b) == lease_count(c) == 0, 10,
             "withdrawal everywhere")


def test_a_subscriber_on_the_publishing_router_gets_the_event_once_too(triangle, make_client):
    a, b, c = triangle
    local, remote = Inbox(), Inbox()
    make_client(a, "dave").lease("/m/", local)
    make_client(c, "carol").lease("/m/", remote)
    wait_for(lambda: lease_count(a) == 3 and lease_count(b) == 4, 10, "interest to spread")
    sent = _publish(make_client(a, "alice"))
    wait_for(lambda: len(local.ids()) >= N and len(remote.ids()) >= N, 10, "deliveries")
    wait_for(lambda: stats(c).get("duplicates", 0) + stats(a).get("duplicates", 0) >= N, 10,
             "echoes dropped")
    assert sorted(local.ids()) == sorted(sent) == sorted(remote.ids())


def test_an_event_stops_after_the_hop_limit(make_router, make_client):
    c = _mesh_router(make_router, "c", hop_limit=1)
    b = _mesh_router(make_router, "b", c, hop_limit=1)
    a = _mesh_router(make_router, "a", b, hop_limit=1)
    wait_for(lambda: _peers(b) == {"a", "c"}, 10, "line links")
    near, far = Inbox(), Inbox()
    make_client(b, "bob").lease("/m/", near)
    make_client(c, "carol").lease("/m/", far)
    wait_for(lambda: lease_count(a) == 2, 10, "interest to spread")
    sent = _publish(make_client(a, "alice"), n=5)
    wait_for(lambda: len(near.ids()) == 5, 10, "one hop")
    wait_for(lambda: stats(b).get("hop_limited", 0) >= 5, 10, "the hop limit")
    assert near.ids() == sent and far.ids() == []


def test_a_peer_with_a_wrong_mesh_password_gets_no_link(make_router):
    c = _mesh_router(make_router, "c")
    a = _mesh_router(make_router, "a", c, password="wrong")
    wait_for(lambda: stats(c).get("refused", 0) >= 2, 10, "refusals")
    assert _peers(a) == set() and _peers(c) == set()


def test_a_client_account_cannot_log_in_on_the_mesh_listener(make_router, wire):
    c = _mesh_router(make_router, "c")
    w = wire(c.mesh_address)
    w.open()
    w.send(b"<iq type='set' id='x'><query xmlns='jabber:iq:auth'><username>alice</username>"
           b"<password>pw</password><resource>r</resource></query></iq>")
    w.wait_closed()
    assert _peers(c) == set()


def test_killing_and_restarting_the_middle_router_of_a_line_heals(make_router, make_client,
                                                                   router_process):
    a = _mesh_router(make_router, "a")
    c = _mesh_router(make_router, "c")
    peers = ("%s:%d" % a.mesh_address, "%s:%d" % c.mesh_address)
    b = router_process("b", peers=peers).start()
    wait_for(lambda: _peers(a) == {"b"} and _peers(c) == {"b"}, 15, "line links")
    inbox = Inbox()
    make_client(c, "carol").lease("/m/", inbox)
    wait_for(lambda: lease_count(a) == 1, 10, "interest to reach a through b")
    pub = make_client(a, "alice")
    before = _publish(pub, n=10)
    wait_for(lambda: len(inbox.ids()) == 10, 10, "deliveries through b")

    b.kill()
    wait_for(lambda: _peers(a) == set() and _peers(c) == set(), 10, "links to drop")
    assert lease_count(a) == 0
    b = router_process("b", peers=peers).start()
    wait_for(lambda: lease_count(a) == 1, 15, "routes re-established")
    after = _publish(pub, n=10)
    wait_for(lambda: len(inbox.ids()) == 20, 10, "deliveries through the new b")
    assert inbox.ids() == before + after
