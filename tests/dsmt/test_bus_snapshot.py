"""The bus client over a real hub: snapshots. A late joiner gets the retained state then
only newer events, a retained None clears its key, a snapshot over its bound says so, and a
join under concurrent publishing is exact: no gap, no duplicate, no regression."""

from __future__ import annotations

import threading

import pytest

from dsmt.bus import Bus
from dsmt.event import Address
from dsmt.hub import Hub
from dsmt.testing import wait_for

pytestmark = pytest.mark.timeout(30)
BOUND = 20.0  # generous: these tests run beside others on a 2-core machine
AHEAD = 5000  # events a test publisher may be ahead of the hub's keeper


def test_a_late_joiner_gets_the_retained_state_then_only_newer_events(bus):
    with bus.publisher(Address("p")) as pub:
        pub.publish("/s/a/", "t", "a1", retain=True)
        pub.publish("/s/b/", "t", "b1", retain=True)
        pub.publish("/s/a/", "t", "a2", retain=True)
        pub.publish("/s/c/", "t", "c-live")  # not retained: not in a snapshot
        pub.publish("/other/", "t", "x", retain=True)  # outside the prefix
        with bus.subscriber("/s/", snapshot=True) as sub:
            pub.publish("/s/b/", "t", "b2", retain=True)
            got = [sub.recv(BOUND).payload for _ in range(3)]
            assert sub.recv(0) is None
    assert got == ["b1", "a2", "b2"]  # snapshot in hub order, then the update


def test_a_retained_none_clears_its_key(bus):
    with bus.publisher(Address("p")) as pub:
        pub.publish("/c/a/", "t", 1, retain=True)
        pub.publish("/c/a/", "t", None, retain=True)
        pub.publish("/c/b/", "t", 2, retain=True)
        with bus.subscriber("/c/", snapshot=True) as sub:
            assert [e.channel for e in sub.snapshot.events] == ["/c/b/"]


def test_a_snapshot_over_its_bound_is_truncated_and_says_so(zctx, tmp_path):
    with Hub(zctx, tmp_path / "run", max_snapshot_keys=3, stats_interval=None) as hub:
        bus = Bus(zctx, hub.inproc_endpoints)
        with bus.publisher(Address("p")) as pub:
            for i in range(10):
                pub.publish(f"/k/{i}/", "t", i, retain=True)
            with bus.subscriber("/k/", snapshot=True) as sub:
                assert sub.snapshot.truncated
                assert [e.payload for e in sub.snapshot.events] == [0, 1, 2]


def _publish_until(bus, hub, sender: Address, keys: list[str], minimum: int,
                   joined: list, joiners: int, started: threading.Event,
                   published: dict, failure: list) -> None:
    """Publish retained events round the keys until every joiner joined, then "end".

    At most 4 * ``minimum`` events, so that no reader's queue (HWM) overflows;
    and never more than AHEAD events ahead of the hub's keeper: a join is
    answered when the keeper has read up to its marker, and publishers in
    this very process could otherwise outrun it for as long as they like.
    """
    try:
        with bus.publisher(sender) as pub:
            i = 0
            while i < minimum or (len(joined) < joiners and i < 4 * minimum):
                pub.publish(keys[i % len(keys)], "t", i, retain=True)
                i += 1
                if i == 2000:
                    started.set()
                if not i % 1000:
                    wait_for(lambda: hub.stats()["forwarded"] >= i - AHEAD, BOUND)
            published[sender] = i
            pub.publish(f"/hot/end/{sender.instance}/", "t", "end", retain=True)
    except BaseException as exc:  # reported to the test thread
        failure.append(exc)
    finally:
        started.set()


def _join_and_read(bus, ends: int, joined: list, out: list) -> None:
    """Join with a snapshot, then read (concurrently with the publishers) up to ``ends`` ends."""
    try:
        with bus.subscriber("/hot/", snapshot=True) as sub:
            joined.append(sub)  # the publishers may finish now
            snap = [sub.recv(0) for _ in sub.snapshot.events]
            assert snap == list(sub.snapshot.events)
            ends -= sum(e.payload == "end" for e in snap)
            live = []
            while ends:
                event = sub.recv(BOUND)
                assert event is not None, f"stalled after {live[-1:]}"
                live.append(event)
                ends -= event.payload == "end"
            out.append((sub.snapshot, live, dict(sub.gap_detector.counters())))
    except BaseException as exc:  # reported to the test thread
        out.append(exc)


def _run_joins(bus, hub, senders: list[Address], keys: list[str], minimum: int,
               joiners: int) -> tuple[dict, list]:
    """Publishers busy on ``keys``; ``joiners`` subscribers join meanwhile and read to the end."""
    started = [threading.Event() for _ in senders]
    joined: list = []
    published: dict = {}
    failure: list = []
    out: list = []
    publishers = [threading.Thread(target=_publish_until, args=(
        bus, hub, who, keys, minimum, joined, joiners, go, published, failure))
        for who, go in zip(senders, started)]
    for thread in publishers:
        thread.start()
    readers = []
    try:
        assert all(go.wait(BOUND) for go in started)
        readers = [threading.Thread(target=_join_and_read, args=(bus, len(senders), joined, out))
                   for _ in range(joiners)]
        for thread in readers:
            thread.start()
        for thread in readers + publishers:
            thread.join(BOUND * 6)
    finally:
        joined.extend([None] * joiners)  # release the publishers if a join failed
        for thread in publishers + readers:
            thread.join(BOUND)
    errors = [item for item in out if isinstance(item, BaseException)]
    assert not errors, errors
    assert not failure, failure
    assert len(out) == joiners
    return published, out


def test_snapshot_then_updates_has_no_gap_and_no_duplicate_under_concurrent_publishing(bus, hub):
    keys = [f"/hot/k{i}/" for i in range(16)]
    sender = Address("hot", "0")
    published, joins = _run_joins(bus, hub, [sender], keys, 20_000, joiners=3)
    total = published[sender]
    for snap, live, gaps in joins:
        mine = [e for e in snap.events if e.sender == sender]
        assert mine, "the join happened before any publishing"
        assert not any(e.payload == "end" for e in mine), "the join happened after publishing"
        state = {e.channel: e.payload for e in mine}
        expected = max(e.seq for e in mine) + 1  # every event is retained: the newest is in it
        for event in live:
            assert event.seq == expected, f"got seq {event.seq}, expected {expected}"
            expected += 1
            if event.payload != "end":
                assert event.payload > state.get(event.channel, -1)  # newer than what we hold
                state[event.channel] = event.payload
        assert expected - 1 == total + 1
        assert gaps["gaps"] == 0 and gaps["stale"] == 0
        assert state == {keys[(total - 1 - i) % len(keys)]: total - 1 - i
                         for i in range(len(keys))}


def test_a_join_is_exact_even_when_two_senders_write_the_same_keys(bus, hub):
    """The cut is a point in the one stream, not a per-key version: no regressions."""
    keys = [f"/hot/k{i}/" for i in range(8)]
    senders = [Address("hot", "a"), Address("hot", "b")]
    _, joins = _run_joins(bus, hub, senders, keys, 10_000, joiners=2)
    with bus.subscriber("/hot/", snapshot=True) as late:
        final = {e.channel: (e.sender, e.seq) for e in late.snapshot.events
                 if e.payload != "end"}
    for snap, live, gaps in joins:
        state = {e.channel: (e.sender, e.seq) for e in snap.events}
        newest = {who: max([seq for w, seq in state.values() if w == who], default=0)
                  for who in senders}
        first: dict = {}
        for event in live:
            first.setdefault(event.sender, event.seq)
            if event.payload != "end":
                state[event.channel] = (event.sender, event.seq)
        for who in first:  # nothing the snapshot already held is delivered again
            assert first[who] > newest[who]
        assert gaps["gaps"] == 0 and gaps["stale"] == 0
        assert {k: v for k, v in state.items() if not k.startswith("/hot/end/")} == final
