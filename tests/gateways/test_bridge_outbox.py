"""The bridge's outbox and config: compaction, bounds, what a reconnection sends."""

from __future__ import annotations

import pytest

from dsmt.errors import ChannelError
from dsmt.event import RECORD, Address, Sequencer
from gateways.bridge import BridgeConfig
from gateways.bridge.outbox import Outbox

pytestmark = pytest.mark.timeout(10)

seq = Sequencer(Address("app", "s1"))


def retained(key: str, value):
    return seq.make(f"/t/{key}/", RECORD, value, retain=True)


def plain(value):
    return seq.make("/t/log/", RECORD, value)


def test_retained_updates_while_disconnected_are_compacted_to_the_newest_per_key():
    box = Outbox(max_events=100)
    for value in range(10):
        for key in ("a", "b"):
            assert box.add(retained(key, value), 10) is False
    assert box.counters["compacted"] == 18
    assert box.buffered == 2
    sent = box.connect()
    assert [(e.channel, e.payload) for e in sent] == [("/t/a/", 9), ("/t/b/", 9)]
    assert box.buffered == 0 and box.counters["flushed"] == 2


def test_non_retained_overflow_drops_the_oldest_first_and_keeps_retained_state():
    box = Outbox(max_events=5)
    box.add(retained("a", 1), 10)
    box.add(retained("b", 1), 10)
    for value in range(6):
        box.add(plain(value), 10)
    assert box.counters["dropped"] == 3
    assert box.counters["lost"] == 0
    assert [e.payload for e in box.connect()] == [1, 1, 3, 4, 5]


def test_the_byte_bound_counts_too():
    box = Outbox(max_events=100, max_bytes=25)
    box.add(retained("a", 1), 10)
    box.add(plain(1), 10)
    box.add(plain(2), 10)
    assert box.counters["dropped"] == 1
    assert box.bytes == 20


def test_retained_state_over_the_bound_loses_the_key_updated_longest_ago_and_counts_it():
    box = Outbox(max_events=2)
    for key in ("a", "b", "c"):
        box.add(retained(key, 1), 10)
    assert box.counters["lost"] == 1
    assert [e.channel for e in box.connect()] == ["/t/b/", "/t/c/"]
    box.add(retained("d", 1), 10)
    assert box.counters["forgotten"] == 1  # b had been sent: only re-sends lose it


def test_connected_events_go_out_at_once_and_a_reconnection_resends_the_whole_state():
    box = Outbox(max_events=10)
    box.connect()
    assert box.add(retained("a", 1), 10) is True
    assert box.add(plain("x"), 10) is True
    assert len(box) == 1  # only the state is kept while connected
    box.disconnect()
    box.add(plain("y"), 10)
    assert [e.payload for e in box.connect()] == [1, "y"]
    assert box.counters["resent"] == 1 and box.counters["flushed"] == 1


def test_select_returns_the_state_under_a_prefix():
    box = Outbox(max_events=10)
    box.add(retained("a", 1), 1)
    box.add(retained("b", 2), 1)
    assert [e.payload for e in box.select("/t/b/")] == [2]
    assert len(box.select("/")) == 2


def test_a_bridge_config_refuses_to_lease_everything_and_bad_values():
    with pytest.raises(ChannelError):
        BridgeConfig(routers=(("127.0.0.1", 1),), service="s", password="p",
                     import_prefixes=("/",))
    with pytest.raises(ValueError):
        BridgeConfig(routers=(), service="s", password="p")
    with pytest.raises(ValueError):
        BridgeConfig(routers=(("h", 1),), service="s", password="p", reconnect_min=2,
                     reconnect_max=1)
    config = BridgeConfig(routers=[("h", 1)], service="s", password="secret",
                          export_prefixes=["/"])
    assert config.routers == (("h", 1),) and config.export_prefixes == ("/",)
    assert "secret" not in repr(config.describe())
