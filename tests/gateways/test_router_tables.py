"""Lease table, routing index and event-id memory: the router's bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dsmt.event import ATTRIBUTE, LEASE, Address
from gateways.psepr.dedup import SeenIds
from gateways.psepr.leases import LeaseTable, grant_duration
from gateways.psepr.routes import RouteIndex


@dataclass(eq=False)
class Holder:
    address: Address | None
    is_peer: bool = False


def _index(*specs):
    table, index = LeaseTable(), RouteIndex()
    for holder, prefix, type_ in specs:
        lease, _ = table.register(holder, f"{prefix}{type_}", prefix, type_, 60.0, now=0.0)
        index.add(lease)
    return table, index


def test_a_lease_on_a_channel_receives_its_subchannels_but_not_siblings_with_the_same_start():
    alice = Holder(Address("alice"))
    _, index = _index((alice, "/a/b/", None))
    assert index.match("/a/b/", ATTRIBUTE) == [alice]
    assert index.match("/a/b/c/", ATTRIBUTE) == [alice]
    assert index.match("/a/bc/", ATTRIBUTE) == []
    assert index.match("/a/", ATTRIBUTE) == []


def test_a_lease_on_slash_receives_everything():
    alice = Holder(Address("alice"))
    _, index = _index((alice, "/", None))
    assert index.match("/x/y/", ATTRIBUTE) == [alice]


def test_a_holder_with_several_matching_leases_receives_an_event_once():
    alice = Holder(Address("alice"))
    _, index = _index((alice, "/a/", None), (alice, "/a/b/", None), (alice, "/", ATTRIBUTE))
    assert index.match("/a/b/c/", ATTRIBUTE) == [alice]


def test_a_type_restricted_lease_only_receives_that_payload_namespace():
    alice = Holder(Address("alice"))
    _, index = _index((alice, "/a/", LEASE))
    assert index.match("/a/", ATTRIBUTE) == []
    assert index.match("/a/", LEASE) == [alice]


def test_an_addressed_event_reaches_only_that_service_and_instance_but_every_peer():
    a1, a2, bob = Holder(Address("a", "1")), Holder(Address("a", "2")), Holder(Address("bob"))
    peer = Holder(None, is_peer=True)
    _, index = _index((a1, "/x/", None), (a2, "/x/", None), (bob, "/x/", None), (peer, "/x/", None))
    assert set(map(id, index.match("/x/", ATTRIBUTE, Address("a")))) == {id(a1), id(a2), id(peer)}
    assert set(map(id, index.match("/x/", ATTRIBUTE, Address("a", "2")))) == {id(a2), id(peer)}


def test_a_no_echo_lease_keeps_its_holders_own_events_from_it_but_not_anyone_elses():
    alice, bob = Holder(Address("alice")), Holder(Address("bob"))
    table, index = LeaseTable(), RouteIndex()
    index.add(table.register(alice, "quiet", "/a/", None, 60.0, now=0.0, echo=False)[0])
    index.add(table.register(bob, "loud", "/a/", None, 60.0, now=0.0)[0])
    assert index.match("/a/x/", ATTRIBUTE, source=alice) == [bob]  # alice's own: not back
    assert index.match("/a/x/", ATTRIBUTE, source=bob) == [alice, bob]  # bob echoes
    index.add(table.register(alice, "loud-too", "/a/x/", None, 60.0, now=0.0)[0])
    assert set(map(id, index.match("/a/x/", ATTRIBUTE, source=alice))) == {id(alice), id(bob)}


def test_removing_a_lease_stops_its_routes():
    alice = Holder(Address("alice"))
    table, index = _index((alice, "/a/", None))
    index.remove(table.unregister(alice, "/a/None"))
    assert index.match("/a/", ATTRIBUTE) == [] and len(index) == 0 and len(table) == 0


def test_re_registering_an_identifier_replaces_the_lease_and_moves_its_deadline():
    table, owner = LeaseTable(), object()
    first, old = table.register(owner, "id", "/a/", None, 10.0, now=0.0)
    assert old is None
    second, old = table.register(owner, "id", "/a/", None, 10.0, now=8.0)
    assert old is first
    assert table.expire(12.0) == []
    assert table.next_deadline() == 18.0
    assert table.expire(18.0) == [second]
    assert len(table) == 0


def test_leases_without_duration_never_expire_and_go_with_their_owner():
    table, owner = LeaseTable(), object()
    table.register(owner, "x", "/a/", None, None, now=0.0)
    table.register(owner, "y", "/b/", None, 5.0, now=0.0)
    assert [lease.identifier for lease in table.expire(1e9)] == ["y"]
    assert [lease.identifier for lease in table.drop_owner(owner)] == ["x"]
    assert table.next_deadline() is None


@pytest.mark.parametrize("requested,granted", [
    (30.0, 30.0), (10_000.0, 600.0), (0, 60.0), (-1, 60.0), (float("nan"), 60.0),
    ("30", 60.0), (None, 60.0), (True, 60.0),
])
def test_the_granted_duration_is_capped_and_bad_requests_get_the_default(requested, granted):
    assert grant_duration(requested, default=60.0, cap=600.0) == granted


def test_seen_ids_forget_after_the_window_and_never_hold_more_than_the_size():
    seen = SeenIds(size=3, window=10.0)
    assert seen.first_time("a", 0.0) and not seen.first_time("a", 1.0)
    for name in "bcd":
        seen.first_time(name, 2.0)
    assert len(seen) == 3 and "a" not in seen
    assert seen.first_time("b", 13.0)
