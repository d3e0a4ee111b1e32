"""The client library: router choice, lease renegotiation, retries, filtering, threads."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import SimpleNamespace

import pytest

from dsmt.event import ATTRIBUTE, LEASE, STATUS
from dsmt.reader import PAYS
from dsmt.testing import wait_for
from gateways.psepr import lease_machine as lm
from gateways.psepr import inbound, stream
from gateways.psepr._client_protocol import ClientProtocol

from .conftest import lease_count

pytestmark = pytest.mark.timeout(30)


def _attr(value="1"):
    return {"field": "f", "value": value}


def _closed_port() -> tuple[str, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()


def test_a_client_skips_a_dead_router_and_connects_to_a_live_one(router, make_client):
    client = make_client([_closed_port(), router.address], connect=False)
    assert client.wait_connected(10)
    assert client.router == router.address


def test_leases_are_renegotiated_after_a_reconnect(make_router, make_client):
    first, second = make_router("r1"), make_router("r2")
    got = []
    client = make_client([first.address], connect=False)
    client.routers.append(second.address)  # before start: same list, either order
    assert client.wait_connected(10)
    sub = client.lease("/a/", got.append)
    wait_for(lambda: sub.state == lm.GRANTED, 5, "grant")
    used = first if client.router == first.address else second
    other = second if used is first else first
    requests = client.stats["lease_requests"]
    used.stop()
    wait_for(lambda: client.router == other.address and sub.state == lm.GRANTED
             and client.stats["lease_requests"] > requests, 10, "reconnect and re-grant")
    assert lease_count(other) == 1
    make_client(other, "bob").publish(client.make("/a/", ATTRIBUTE, _attr("again")))
    wait_for(lambda: got, 5, "delivery after the reconnect")


class SilentRouter:
    """Logs clients in, counts their lease requests and never answers them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = self.sock.getsockname()
        self.requests = 0
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        self._conns.append(conn)
        parser = inbound.StreamParser()
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            for item in parser.feed(data):
                if isinstance(item, stream.StreamHeader):
                    conn.sendall(stream.stream_header(from_="silent", id="1"))
                elif item is not inbound.END and item.tag == stream.IQ:
                    conn.sendall(stream.auth_ok(item.get("id")))
                elif item is not inbound.END and item.tag == stream.MESSAGE:
                    if stream.message_event(item).type == LEASE:
                        self.requests += 1

    def close(self) -> None:
        for conn in self._conns:
            conn.close()
        self.sock.close()


def test_an_unanswered_lease_request_is_retried_then_given_up(make_client):
    silent = SilentRouter()
    try:
        client = make_client([silent.address], timing=lm.Timing(retry_after=0.05, max_tries=4))
        sub = client.lease("/a/", lambda e: None)
        wait_for(lambda: sub.state == lm.FAILED, 5, "give up")
        assert silent.requests == 4
    finally:
        silent.close()


def test_events_go_to_the_callbacks_whose_prefix_and_type_match(router, make_client):
    statuses, under_b, everything = [], [], []
    client = make_client(router)
    subs = [client.lease("/a/", statuses.append, type=STATUS),
            client.lease("/a/b/", under_b.append),
            client.lease("/a/", everything.append)]
    wait_for(lambda: all(s.state == lm.GRANTED for s in subs), 5, "grants")
    pub = make_client(router, "bob")
    pub.publish(pub.make("/a/b/c/", ATTRIBUTE, _attr("attr")))
    pub.publish(pub.make("/a/x/", STATUS, {"state": "running"}))
    wait_for(lambda: len(everything) == 2, 5, "deliveries")
    assert [e.type for e in statuses] == [STATUS]
    assert [e.payload["value"] for e in under_b] == ["attr"]


def test_a_lease_without_echo_gets_every_event_on_its_prefix_but_the_clients_own(
        router, make_client):
    quiet, loud = [], []
    client = make_client(router)
    subs = [client.lease("/a/", quiet.append, echo=False),
            client.lease("/b/", loud.append)]
    wait_for(lambda: all(s.state == lm.GRANTED for s in subs), 5, "grants")
    other = make_client(router, "bob")
    client.publish(client.make("/a/", ATTRIBUTE, _attr("mine")))
    client.publish(client.make("/b/", ATTRIBUTE, _attr("mine")))
    other.publish(other.make("/a/", ATTRIBUTE, _attr("bob's")))
    wait_for(lambda: len(quiet) == 1 and len(loud) == 1, 5, "deliveries")
    # Per connection, the router routes in order: "mine" on /a/ came before bob's.
    assert [e.payload["value"] for e in quiet] == ["bob's"]
    assert [e.payload["value"] for e in loud] == ["mine"]  # a default lease still echoes


def test_events_published_while_disconnected_are_sent_after_connecting(router, make_client):
    got = []
    sub = make_client(router)
    lease = sub.lease("/a/", got.append)
    wait_for(lambda: lease.state == lm.GRANTED, 5, "grant")
    pub = make_client(router, "bob", connect=False)
    events = [pub.make("/a/", ATTRIBUTE, _attr(str(i))) for i in range(5)]
    for event in events:
        pub.publish(event)
    wait_for(lambda: len(got) == 5, 10, "buffered events")
    assert [e.id for e in got] == [e.id for e in events]


def test_publish_is_safe_from_many_threads(router, make_client):
    got = []
    sub = make_client(router)
    lease = sub.lease("/a/", got.append)
    wait_for(lambda: lease.state == lm.GRANTED, 5, "grant")
    pub = make_client(router, "bob")

    def burst(k: int) -> None:
        for i in range(50):
            pub.publish(pub.make("/a/", ATTRIBUTE, _attr(f"{k}.{i}")))

    threads = [threading.Thread(target=burst, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    wait_for(lambda: len(got) == 200, 10, "all events")
    assert len({e.id for e in got}) == 200


def test_a_lease_on_everything_is_refused_up_front_because_the_xml_cannot_carry_it(
        router, make_client):
    from dsmt.errors import ChannelError
    with pytest.raises(ChannelError):
        make_client(router).lease("/", lambda e: None)


def test_a_wrong_password_never_connects(router, make_client):
    client = make_client(router, password="nope", connect=False)
    wait_for(lambda: client.stats["connect_failures"] >= 2, 5, "refusals")
    assert not client.wait_connected(0)


def test_a_busy_connection_reads_once_per_gathering_window(router, make_client):
    window = 1.0
    got = []  # (value, monotonic time received)
    client = make_client(router, gather=window)
    sub = client.lease("/a/", lambda e: got.append((e.payload["value"], time.monotonic())))
    wait_for(lambda: sub.state == lm.GRANTED, 5, "grant")
    pub = make_client(router, "bob")
    sent = []
    for i in range(PAYS + 2):  # ping-pong: each event published once the previous one arrived
        sent.append(time.monotonic())
        pub.publish(pub.make("/a/", ATTRIBUTE, _attr(str(i))))
        wait_for(lambda: len(got) == i + 1, 10, f"event {i}")
    assert [value for value, _ in got] == [str(i) for i in range(PAYS + 2)]
    delays = [at - sent[i] for i, (_, at) in enumerate(got)]
    # Without gathering each comes within milliseconds; with it, once PAYS + 1
    # reads came within a window, the next read waits for its end.
    assert sum(delays) > window / 2, delays


class _Transport:
    """The OS seam of one connection: records pause/resume (unit test of the gathering rule)."""

    def __init__(self):
        self.paused = False
        self.closing = False

    def pause_reading(self):
        assert not self.paused
        self.paused = True

    def resume_reading(self):
        self.paused = False

    def is_closing(self):
        return self.closing


class _Timer:
    def __init__(self, when, callback):
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self):
        self.cancelled = True


class _Loop:
    """A loop whose time the test sets and whose timers it fires (futures: a real idle loop)."""

    def __init__(self, real):
        self.now = 0.0
        self.timers = []
        self.create_future = real.create_future

    def time(self):
        return self.now

    def call_later(self, delay, callback):
        self.timers.append(_Timer(self.now + delay, callback))
        return self.timers[-1]

    def fire(self):
        timer = self.timers.pop(0)
        self.now = timer.when
        if not timer.cancelled:
            timer.callback()


def test_a_busy_connection_stops_reading_for_a_window_and_a_lost_one_is_not_resumed():
    real = asyncio.new_event_loop()
    loop = _Loop(real)
    client = SimpleNamespace(_loop=loop, _max_stanza=65536, gather=0.02)
    proto = ClientProtocol(client, "127.0.0.1")
    proto.logged_in.set_result(None)
    transport = proto.transport = _Transport()

    def read_at(t, stanzas=1):
        loop.now = t
        proto._gather(stanzas)
        return transport.paused

    def reads_from(t):  # PAYS reads, then one more: the last one pauses
        assert not any(read_at(t + i * 0.001) for i in range(PAYS))
        return read_at(t + PAYS * 0.001)

    assert reads_from(1.0)
    paused_at = loop.now
    loop.fire()
    assert not transport.paused and loop.now == pytest.approx(paused_at + 0.02)
    assert read_at(loop.now, stanzas=PAYS)  # the window gathered enough: paused again
    transport.closing = True
    loop.fire()
    assert transport.paused  # a closing transport is not resumed
    transport.closing, transport.paused = False, False
    assert not read_at(2.0, stanzas=PAYS - 1)  # a window that gathered too few: reading again
    assert reads_from(3.0) and len(loop.timers) == 1
    proto.connection_lost(None)
    assert loop.timers[0].cancelled  # no resume of a lost connection
    real.close()
