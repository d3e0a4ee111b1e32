"""dsmt.reader.HubReader over a real hub: the thread that reads for an actor."""

from __future__ import annotations

import threading
import time

import pytest
import zmq

from dsmt.bus import Bus
from dsmt.event import Address
from dsmt.hub import Endpoints
from dsmt.reader import BATCH, PAYS, Gathering, HubReader
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


class _Batches:
    """A handler and a flush that record what each wake-up of a reader handed on."""

    def __init__(self, hold=None):
        self.batches: list[list] = []
        self.handed: dict = {}  # payload -> monotonic time it was handed on
        self._open: list = []
        self._hold = hold

    def handle(self, event, from_snapshot):
        if self._hold is not None:
            self._hold.wait(BOUND)
        self.handed[event.payload] = time.monotonic()
        self._open.append(event.payload)

    def flush(self):
        self.batches.append(self._open)
        self._open = []

    def count(self):
        return sum(len(batch) for batch in self.batches)


def test_a_busy_reader_gathers_events_for_its_window_and_a_lone_event_is_handed_on_at_once(bus):
    gather = 3.0
    seen = _Batches()
    reader = HubReader(bus, ["/r/"], seen.handle, list, name="test-reader", gather=gather,
                       flush=seen.flush).start(BOUND)
    try:
        with bus.publisher(Address("p")) as pub:
            sent = time.monotonic()
            for payload in range(1, PAYS + 2):  # PAYS + 1 wake-ups within a window: busy
                pub.publish("/r/", "t", payload)
                wait_for(lambda: seen.count() == payload, BOUND, f"event {payload}")
            busy = time.monotonic()
            gathered = list(range(PAYS + 2, 2 * PAYS + 2))
            for payload in gathered:
                pub.publish("/r/", "t", payload)
            wait_for(lambda: seen.count() == 2 * PAYS + 1, BOUND, "the gathered events")
    finally:
        assert reader.close(BOUND)
    assert seen.batches == [[p] for p in range(1, PAYS + 2)] + [gathered]
    assert seen.handed[1] - sent < gather / 2  # the first ones were not held back
    # The reader slept through its window after the last wake-up (it began
    # just before `busy`): the next events waited for the end of it.
    assert seen.handed[gathered[0]] - busy > gather / 2
    assert reader.wakeups == PAYS + 2


def test_a_flood_is_handed_on_in_bounded_batches_in_order(bus):
    hold = threading.Event()
    seen = _Batches(hold)
    reader = HubReader(bus, ["/r/"], seen.handle, list, name="test-reader", gather=0.5,
                       flush=seen.flush).start(BOUND)
    try:
        with bus.publisher(Address("p")) as pub:
            for payload in range(3 * BATCH):  # the handler holds the first: the rest queue
                pub.publish("/r/", "t", payload)
            hold.set()
            wait_for(lambda: seen.count() == 3 * BATCH, BOUND, "the whole flood")
    finally:
        assert reader.close(BOUND)
    assert [p for batch in seen.batches for p in batch] == list(range(3 * BATCH))
    assert max(len(batch) for batch in seen.batches) == BATCH


def test_the_gathering_rule_holds_reads_back_only_while_a_window_gathers_enough():
    rule = Gathering(0.02)

    def burst(t):  # PAYS wake-ups within a window, then one more: the last says wait
        assert not any(rule.woke(t + i * 0.001, 1) for i in range(PAYS))
        return rule.woke(t + PAYS * 0.001, 1)

    assert burst(1.0)
    assert rule.woke(1.03, PAYS)  # the window gathered enough: wait again
    assert rule.woke(1.05, PAYS + 10)
    assert not rule.woke(1.07, PAYS - 1)  # too few: wake per event again
    assert not rule.woke(1.075, 1)  # and count afresh
    for t in (2.0, 2.1, 2.2, 2.3, 2.4):  # events further apart than a window: never held back
        assert not rule.woke(t, 1)
    assert not any(rule.woke(3.0 + i * 0.03, 1) for i in range(10))  # nor a window apart
    assert burst(4.0)
