"""dsmt.reader.HubReader over a real hub: the thread that reads for an actor."""

from __future__ import annotations

import pytest
import zmq

from dsmt.bus import Bus
from dsmt.event import Address
from dsmt.hub import Endpoints
from dsmt.reader import HubReader
from dsmt.testing import wait_for

pytestmark = pytest.mark.timeout(30)
BOUND = 20.0


def test_a_reader_hands_on_the_snapshot_first_then_live_events_and_stops_at_once(bus):
    with bus.publisher(Address("p")) as pub:
        old = pub.publish("/r/a/", "t", "retained", retain=True)
        seen: list = []
        reader = HubReader(bus, ["/r/"], lambda e, snap: seen.append((e, snap)), list,
                           name="test-reader", snapshot=True).start(BOUND)
        new = pub.publish("/r/b/", "t", "live")
        wait_for(lambda: len(seen) == 2, BOUND, "both events")
    reader.stop()
    assert reader.join(BOUND) and not reader.alive
    assert seen == [(old, True), (new, False)]


def test_a_handler_that_raises_is_counted_and_the_reader_goes_on(bus):
    calls: list = []

    def handle(event, from_snapshot):
        calls.append(event.payload)
        if event.payload == "bad":
            raise ValueError("a handler bug")

    fatal: list = []
    reader = HubReader(bus, ["/r/"], handle, fatal.append, name="test-reader").start(BOUND)
    with bus.publisher(Address("p")) as pub:
        for payload in ("bad", "good"):
            pub.publish("/r/", "t", payload)
        wait_for(lambda: calls == ["bad", "good"], BOUND, "both events handled")
    assert reader.close(BOUND) and not reader.alive
    assert reader.errors == 1 and fatal == []


def test_a_hub_that_never_answers_fails_start_and_the_reader_is_told_to_stop(tmp_path):
    context = zmq.Context()
    try:
        mute = Bus(context, Endpoints.ipc(tmp_path), connect_timeout=0.2)
        reader = HubReader(mute, ["/r/"], lambda e, s: None, list, name="test-reader")
        with pytest.raises(TimeoutError):
            reader.start(BOUND)
        assert reader.join(BOUND) and not reader.alive  # the thread ended by itself
    finally:
        context.destroy(linger=0)
