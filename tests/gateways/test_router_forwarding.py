"""How the router writes what it routes: the bytes received, in bites of a large read."""

from __future__ import annotations

from dsmt.event import ATTRIBUTE
from gateways.psepr import connection, stream


def _pair(router, wire):
    sub = wire(router).login("alice")
    sub.lease("/a/")
    sub.grant()
    pub = wire(router).login("bob")
    return sub, pub


def _connection_of(router, service: str) -> connection.Connection:
    (conn,) = [c for c in router.router.connections
               if c.address is not None and c.address.service == service]
    return conn


class _Spy:
    """The connection's transport, recording what is written through it.

    A wrapper, not a patched ``write``: uvloop's transports are C objects.
    """

    def __init__(self, transport, record) -> None:
        self._transport = transport
        self._record = record

    def write(self, data) -> None:
        self._record(data)
        self._transport.write(data)

    def __getattr__(self, name):
        return getattr(self._transport, name)


def test_a_published_message_reaches_the_subscriber_as_the_bytes_it_was_sent_in(router, wire):
    sub, pub = _pair(router, wire)
    event = pub.event("/a/", ATTRIBUTE, {"field": "f", "value": "1"})
    sent = stream.message_stanza(event, to="psepr_registry@r1").replace(b'"', b"'")
    seen: list[bytes] = []

    def spy() -> None:
        conn = _connection_of(router, "alice")
        conn.transport = _Spy(conn.transport, lambda data: seen.append(bytes(data)))

    router.call(spy)
    pub.send(sent)  # single quotes: a serializer would have written double ones
    sub.next_event(lambda e: e.id == event.id)
    assert sent in b"".join(seen)


def test_a_large_read_is_written_out_in_bites_not_after_all_of_it_was_handled(router, wire):
    sub, pub = _pair(router, wire)
    events = [pub.event("/a/", ATTRIBUTE, {"field": "f", "value": str(i)}) for i in range(400)]
    data = b"".join(stream.message_stanza(e, to="psepr_registry@r1") for e in events)
    assert len(data) > 4 * connection.BITE
    writes: list[int] = []

    def feed_at_once() -> None:
        # As if the router had been kept off the CPU while all of it arrived.
        conn = _connection_of(router, "alice")
        conn.transport = _Spy(conn.transport, lambda chunk: writes.append(len(chunk)))
        _connection_of(router, "bob").data_received(data)

    router.call(feed_at_once)
    got = [sub.next_event().id for _ in events]
    assert got == [e.id for e in events]
    assert len(writes) >= len(data) // connection.BITE
