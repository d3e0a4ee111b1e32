"""A client written to the 2005 PsEPR wire format interoperates with the router.

The bytes below are typed by hand as a 2005 client sent them: no DSMT
metadata, single-quoted attributes, whitespace between stanzas, the
optional iq:auth ``get`` round trip, ``jabber:x:expire`` on every message.
"""

from __future__ import annotations

import select
import time

from lxml import etree

from dsmt.event import ATTRIBUTE, LEASE

from gateways.psepr import inbound, stream

HEADER = (b"<?xml version='1.0'?><stream:stream to='r1' xmlns='jabber:client' "
          b"xmlns:stream='http://etherx.jabber.org/streams'>")
AUTH_GET = (b"<iq type='get' id='auth_1'><query xmlns='jabber:iq:auth'>"
            b"<username>%s</username></query></iq>")
AUTH_SET = (b"<iq type='set' id='auth_2'><query xmlns='jabber:iq:auth'>"
            b"<username>%s</username><password>pw</password><resource>%s</resource>"
            b"</query></iq>\n")
LEASE_MSG = b"""<message to='psepr_registry@r1'>
  <x xmlns='jabber:x:expire' seconds='60'/>
  <event xmlns='http://psepr.org/xs/event'>
    <to><channel>/planetlab/nodes/</channel></to>
    <from><service>%s</service><instance>%s</instance></from>
    <payload xmlns='http://psepr.org/xs/payload/lease'>
      <duration>120</duration><identifier>lease-17</identifier><op>register</op>
    </payload>
  </event>
</message>
"""
ATTRIBUTE_MSG = b"""<message to='psepr_registry@r1'>
  <x xmlns='jabber:x:expire' seconds='60'/>
  <event xmlns='http://psepr.org/xs/event'>
    <to><channel>/planetlab/nodes/planet1.cs.example.edu/</channel></to>
    <from><service>%s</service><instance>%s</instance></from>
    <payload xmlns='http://psepr.org/xs/payload/attribute'>
      <field>load</field><value>%s</value><expire>300</expire>
    </payload>
  </event>
</message>
"""


def _login(w, service: bytes, instance: bytes) -> None:
    w.send(HEADER)
    header = w.expect(lambda i: isinstance(i, stream.StreamHeader), what="stream header")
    assert header.id and header.from_ == "r1"
    w.send(AUTH_GET % service)
    fields = w.expect(lambda i: i is not inbound.END and not isinstance(i, stream.StreamHeader)
                      and i.get("id") == "auth_1")
    assert fields.get("type") == "result"
    assert {c.tag.split("}")[1] for c in fields[0]} == {"username", "password", "resource"}
    w.send(AUTH_SET % (service, instance))
    ok = w.expect(lambda i: i is not inbound.END and not isinstance(i, stream.StreamHeader)
                  and i.get("id") == "auth_2")
    assert ok.get("type") == "result"


def test_a_2005_client_logs_in_leases_and_receives_attribute_events(router, wire):
    sub, pub = wire(router), wire(router)
    _login(sub, b"alice", b"node-1")
    _login(pub, b"bob", b"node-2")
    sub.send(LEASE_MSG % (b"alice", b"node-1"))
    grant = sub.next_event(lambda e: e.type == LEASE, what="grant")
    assert grant.payload == {"op": "lease", "identifier": "lease-17", "duration": 120.0,
                             "type": None}
    assert grant.channel == "/planetlab/nodes/"
    for load in (b"0.5", b"1.25"):
        pub.send(ATTRIBUTE_MSG % (b"bob", b"node-2", load))
    first = sub.next_event(lambda e: e.type == ATTRIBUTE)
    second = sub.next_event(lambda e: e.type == ATTRIBUTE)
    assert first.payload == {"field": "load", "value": "0.5", "expire": 300.0}
    assert second.payload["value"] == "1.25"
    assert str(first.sender) == "bob/node-2"
    assert first.channel == "/planetlab/nodes/planet1.cs.example.edu/"


def test_the_bytes_a_2005_client_receives_are_a_plain_message_with_the_event(router, wire):
    sub, pub = wire(router), wire(router)
    _login(sub, b"alice", b"n1")
    _login(pub, b"bob", b"n2")
    sub.send(LEASE_MSG % (b"alice", b"n1"))
    sub.next_event(lambda e: e.type == LEASE)
    pub.send(ATTRIBUTE_MSG % (b"bob", b"n2", b"7"))
    message = sub.expect(lambda i: i is not inbound.END and not isinstance(i, stream.StreamHeader)
                         and i.tag == stream.MESSAGE)
    event_el = message.find("{http://psepr.org/xs/event}event")
    assert event_el is not None
    assert event_el.findtext("{http://psepr.org/xs/event}to/{http://psepr.org/xs/event}channel") \
        == "/planetlab/nodes/planet1.cs.example.edu/"
    assert message.find("{jabber:x:expire}x").get("seconds") == "60"


def test_a_2005_client_with_a_wrong_password_gets_401_and_the_stream_closes(router, wire):
    w = wire(router)
    w.send(HEADER)
    w.expect(lambda i: isinstance(i, stream.StreamHeader))
    w.send(AUTH_SET.replace(b"<password>pw", b"<password>nope") % (b"alice", b"x"))
    reply = w.expect(lambda i: i is not inbound.END and not isinstance(i, stream.StreamHeader)
                     and i.get("id") == "auth_2")
    assert reply.get("type") == "error"
    assert reply.find("{jabber:client}error").get("code") == "401"
    w.wait_closed()


def test_a_2005_message_is_forwarded_as_sent_with_its_namespace_declared(router, wire):
    sub, pub = wire(router), wire(router)
    _login(sub, b"alice", b"n1")
    _login(pub, b"bob", b"n2")
    sub.send(LEASE_MSG % (b"alice", b"n1"))
    sub.next_event(lambda e: e.type == LEASE)
    pub.send(ATTRIBUTE_MSG % (b"bob", b"n2", b"7"))
    raw = b""
    deadline = time.monotonic() + 10
    while b"</message>" not in raw and time.monotonic() < deadline:
        ready, _, _ = select.select([sub.sock], [], [], 0.2)
        if ready:
            raw += sub.sock.recv(1 << 16)
    # The bytes the publisher sent (quotes, whitespace), declaring the namespace they
    # inherited from the publisher's stream: no made-up prefix, readable on their own.
    sent = ATTRIBUTE_MSG % (b"bob", b"n2", b"7")
    assert raw.strip() == b'<message xmlns="jabber:client"' + sent.strip()[len(b"<message"):]
    assert etree.fromstring(raw.strip()).tag == stream.MESSAGE
