"""The bridge's importer with a real hub: it publishes in its caller's (the client's) thread."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import zmq

from dsmt.bus import Bus
from dsmt.event import RECORD, Address, Sequencer
from dsmt.hub import Endpoints, Hub
from gateways.bridge import resync_request
from gateways.bridge.importer import Importer
from gateways.bridge.recent import RecentIds

pytestmark = pytest.mark.timeout(60)
BOUND = 10.0
IMPORTER = Address("bridge.import", "s1")


@pytest.fixture
def ctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def test_an_import_is_published_unchanged_from_the_callers_thread_and_counted_once(
        ctx, tmp_path):
    hub = Hub(ctx, tmp_path / "hub", stats_interval=None).start()
    try:
        bus = Bus(ctx, hub.endpoints)
        fatal: list = []
        importer = Importer(bus, IMPORTER, RecentIds(100), RecentIds(100), fatal.append)
        remote = Sequencer(Address("peer", "s2")).make("/test/x/", RECORD, {"n": 1}, retain=True)
        client_thread = ThreadPoolExecutor(1)  # stands for the PsEPR client's thread
        with bus.subscriber("/test/") as sub:
            client_thread.submit(importer, remote).result(BOUND)
            client_thread.submit(importer, remote).result(BOUND)  # a second lease's copy
            got = sub.recv(BOUND)
            assert sub.recv(0.2) is None
        publishing = importer._publisher
        assert publishing is not None and publishing._owner != threading.get_ident()
        client_thread.submit(importer.close).result(BOUND)  # closed where it was opened
        client_thread.shutdown()
        assert got == remote  # sender, id, seq, epoch, payload: all unchanged
        assert importer.stats()["imported"] == 1 and importer.stats()["duplicates"] == 1
        assert fatal == [] and importer._publisher is None
    finally:
        hub.stop()


def test_a_hub_that_cannot_be_reached_fails_the_bridge_once_and_counts_each_lost_import(
        ctx, tmp_path):
    mute = Bus(ctx, Endpoints.ipc(tmp_path), connect_timeout=0.2)  # no hub behind it
    fatal: list = []
    importer = Importer(mute, IMPORTER, RecentIds(100), RecentIds(100), fatal.append)
    sequencer = Sequencer(Address("peer", "s2"))
    for n in range(3):
        importer(sequencer.make("/test/x/", RECORD, n))
    assert [type(exc) for exc in fatal] == [TimeoutError]
    assert importer.stats()["import_dropped"] == 3 and importer.stats()["imported"] == 0


def test_an_echo_of_an_export_and_a_resync_request_are_counted_and_never_published(
        ctx, tmp_path):
    # A router that ignores the import lease's echo=False sends the bridge its own exports.
    mute = Bus(ctx, Endpoints.ipc(tmp_path), connect_timeout=0.2)  # publishing would fail
    fatal: list = []
    exported = RecentIds(100)
    importer = Importer(mute, IMPORTER, exported, RecentIds(100), fatal.append)
    own = Sequencer(Address("app", "s1")).make("/test/x/", RECORD, "exported")
    exported.add(own)
    importer(own)
    importer(resync_request(Sequencer(Address("late", "c1")), "/test/"))
    assert fatal == [] and importer._publisher is None
    assert importer.stats()["echoes"] == 1 and importer.stats()["control"] == 1
