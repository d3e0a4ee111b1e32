"""The PsEPR XML event codec (gateways/psepr/xml.py): round trips and refusals."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from dsmt import codec
from dsmt.errors import CodecError
from dsmt.event import (ATTRIBUTE, COMMAND, HEARTBEAT, LEASE, RECORD, STATUS, Address, Event,
                        Sequencer)
from gateways.psepr import xml
from gateways.psepr.xml import XmlError

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- strategies

XML_SAFE = st.characters(codec="utf-8").filter(lambda c: not xml.XML_UNSAFE.match(c))
ANY_CHAR = st.characters(exclude_categories=())  # includes lone surrogates and controls
safe_text = st.text(XML_SAFE, max_size=20)
name = st.text(XML_SAFE, min_size=1, max_size=20)

_CHANNEL_CHARS = st.characters(codec="utf-8").filter(
    lambda c: (0x21 <= ord(c) <= 0x7E and c not in "/@") or (ord(c) >= 0xA0
                                                             and not xml.XML_UNSAFE.match(c)))
channel = st.lists(st.text(_CHANNEL_CHARS, min_size=1, max_size=8).filter(lambda e: e != "*"),
                   min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts) + "/")
address = st.builds(Address, name, st.none() | name)

msgpack_scalar = (
    st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1) | st.floats()
    | st.text(ANY_CHAR, max_size=20) | st.binary(max_size=20)
)
msgpack_value = st.recursive(
    msgpack_scalar,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(ANY_CHAR, max_size=8), inner, max_size=5),
    max_leaves=25,
)
dsmt_type = st.sampled_from([RECORD, STATUS, HEARTBEAT, COMMAND,
                             "http://dsmt.org/xs/payload/custom"])


@st.composite
def events(draw, type_=dsmt_type, payload=msgpack_value):
    return Event(
        channel=draw(channel),
        type=draw(type_),
        sender=draw(address),
        payload=draw(payload),
        id=draw(st.text(XML_SAFE, min_size=1, max_size=128)),
        seq=draw(st.integers(0, (1 << 63) - 1)),
        epoch=draw(st.integers(0, (1 << 63) - 1)),
        ts=draw(st.floats(allow_nan=False)),
        retain=draw(st.booleans()),
        to=draw(st.none() | address),
    )


def same(a, b) -> bool:
    """Equal values of the same types; floats compared bit for bit (NaN included)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def _fields(event: Event) -> tuple[str, ...]:
    """Event's field names, whether it is a dataclass or a NamedTuple."""
    return getattr(event, "_fields", None) or tuple(event.__dataclass_fields__)


def round_trip(event: Event) -> Event:
    return xml.event_from_bytes(xml.event_to_bytes(event, max_size=1 << 20), max_size=1 << 20)


# ---------------------------------------------------------------- round trips


@FAST
@given(events())
def test_every_msgpack_payload_and_address_survives_the_round_trip(event):
    back = round_trip(event)
    assert same(back.payload, event.payload)
    assert back == Event(**{**{f: getattr(event, f) for f in _fields(event)},
                            "payload": back.payload})


@FAST
@given(events(payload=st.text(ANY_CHAR)))
def test_strings_xml_cannot_carry_are_escaped_and_restored(event):
    assert round_trip(event).payload == event.payload


def test_the_typed_record_encoding_is_the_documented_one():
    event = Sequencer(Address("svc", "0")).make("/a/", RECORD, {
        "n": None, "t": True, "f": False, "i": -3, "d": 0.5, "s": "x", "b": b"\x00",
        "l": [1], "m": {}, "\x00": "\x01"})
    assert xml.event_to_bytes(event).decode().endswith(
        f'<payload xmlns="{RECORD}"><m><n k="n"/><t k="t"/><f k="f"/><i k="i">-3</i>'
        '<d k="d">0.5</d><s k="s">x</s><b k="b">AA==</b><l k="l"><i>1</i></l><m k="m"/>'
        '<s e="b64" k64="AA==">AQ==</s></m></payload></event>')


def test_int_extremes_and_special_floats_are_exact():
    values = [-(1 << 63), (1 << 64) - 1, 0.1, -0.0, math.inf, -math.inf, 5e-324,
              struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000123))[0]]
    event = Sequencer(Address("svc")).make("/a/", RECORD, values)
    assert same(round_trip(event).payload, values)


def test_a_decoded_payload_crosses_the_msgpack_hub_unchanged():
    event = Sequencer(Address("svc")).make("/a/b/", STATUS,
                                           {"state": "running", "pid": 42, "blob": b"\xff",
                                            "load": [0.5, None, True]})
    back = round_trip(event)
    assert codec.decode(codec.encode(back)) == back == event


@FAST
@given(events(type_=st.just(ATTRIBUTE), payload=st.fixed_dictionaries({
    "field": name, "value": safe_text,
    "expire": st.none() | st.floats(0, 1e12) | st.integers(0, 10**9)})))
def test_attribute_payloads_round_trip(event):
    assert round_trip(event) == event


@FAST
@given(events(type_=st.just(LEASE), payload=st.fixed_dictionaries({
    "op": st.sampled_from(["register", "unregister", "lease"]),
    "identifier": name,
    "duration": st.floats(0, 1e9),
    "type": st.none() | name}, optional={"echo": st.booleans()})))
def test_lease_payloads_round_trip(event):
    assert round_trip(event) == event


@st.composite
def raw_payloads(draw):
    ns = "urn:x:" + draw(st.text("abc", min_size=1, max_size=3))
    root = etree.Element(f"{{{ns}}}payload", nsmap={None: ns})
    for _ in range(draw(st.integers(0, 3))):
        child = etree.SubElement(root, f"{{urn:y}}{draw(st.sampled_from(['a', 'b']))}",
                                 nsmap={"y": "urn:y"})
        child.text = draw(safe_text) or None  # "" would serialize as <a></a>, read back as <a/>
        child.set("attr", draw(safe_text))
        child.tail = draw(safe_text) or None
    return ns, {"xml": etree.tostring(root, encoding="unicode")}


@FAST
@given(raw_payloads(), channel, address)
def test_unknown_payload_namespaces_pass_through_verbatim(raw, channel, sender):
    ns, payload = raw
    event = Sequencer(sender).make(channel, ns, payload)
    assert round_trip(event) == event


def test_a_2005_event_without_dsmt_metadata_gets_fresh_metadata():
    data = (b'<event xmlns="http://psepr.org/xs/event">'
            b'<to><channel>/planetlab/sliver/status/</channel><service>monitor</service></to>'
            b'<from><service>psepr_client</service><instance>node17</instance></from>'
            b'<payload xmlns="http://psepr.org/xs/payload/attribute">'
            b'<field>load</field><value>0.42</value><expire>60</expire></payload></event>')
    first, second = xml.event_from_bytes(data), xml.event_from_bytes(data)
    assert first.channel == "/planetlab/sliver/status/"
    assert first.to == Address("monitor") and first.sender == Address("psepr_client", "node17")
    assert first.payload == {"field": "load", "value": "0.42", "expire": 60.0}
    assert (first.seq, first.epoch, first.retain) == (0, 0, False)
    assert len(first.id) == 32 and first.id != second.id
    assert first.ts > 1e9


def test_a_2005_raw_payload_is_kept_and_reemitted():
    data = (b'<event xmlns="http://psepr.org/xs/event"><to><channel>/x/</channel></to>'
            b'<from><service>old</service></from>'
            b'<payload xmlns="http://example.org/ping" seq="3"><p:when xmlns:p="urn:p">now'
            b'</p:when></payload></event>')
    event = xml.event_from_bytes(data)
    assert event.type == "http://example.org/ping"
    assert event.payload == {"xml": '<payload xmlns="http://example.org/ping" seq="3">'
                                    '<p:when xmlns:p="urn:p">now</p:when></payload>'}
    assert round_trip(event) == event


def test_metadata_attributes_are_written_in_the_dsmt_namespace():
    event = Sequencer(Address("svc")).make("/a/", RECORD, None, retain=True)
    el = xml.event_to_element(event)
    assert el.get(f"{{{xml.META_NS}}}retain") == "true"
    assert el.get(f"{{{xml.META_NS}}}seq") == "1"
    assert float(el.get(f"{{{xml.META_NS}}}ts")) == event.ts
    assert el.nsmap == {None: xml.EVENT_NS, "d": xml.META_NS}


# ---------------------------------------------------------------- refusals

EVENT = (b'<event xmlns="http://psepr.org/xs/event"><to><channel>%s</channel></to>'
         b'<from><service>s</service></from><payload xmlns="%s">%s</payload></event>')


def _event(payload: bytes, ns: bytes = RECORD.encode(), channel: bytes = b"/a/") -> bytes:
    return EVENT % (channel, ns, payload)


BAD_EVENTS = [
    (b"<event", "not-well-formed"),
    (b"", "not-well-formed"),
    (b"\xff\xfe<\x00e\x00/\x00>\x00", "not-well-formed"),
    (b'<!DOCTYPE event [<!ENTITY a "b">]><event/>', "restricted-xml"),
    (b'<!DOCTYPE event SYSTEM "file:///etc/passwd"><event/>', "restricted-xml"),
    (b"<?xml-stylesheet href='x'?><event/>", "restricted-xml"),
    (b"<event><!-- hi --></event>", "restricted-xml"),
    (b"<event>&ext;</event>", "not-well-formed"),
    (b"<a>" * 65 + b"</a>" * 65, "policy-violation"),
    (b"<event>" + b" " * xml.MAX_STANZA + b"</event>", "policy-violation"),
    (b"<other/>", "bad-format"),
    (_event(b"<i>1.5</i>"), "bad-format"),
    (_event(b"<i>18446744073709551616</i>"), "bad-format"),
    (_event(b"<d>one</d>"), "bad-format"),
    (_event(b"<b>***</b>"), "bad-format"),
    (_event(b"<s e='rot13'>x</s>"), "bad-format"),
    (_event(b"<m><i>1</i></m>"), "bad-format"),
    (_event(b"<m><i k='a'>1</i><i k='a'>2</i></m>"), "bad-format"),
    (_event(b"<q/>"), "bad-format"),
    (_event(b"<n/><n/>"), "bad-format"),
    (_event(b"<n>x</n>"), "bad-format"),
    (_event(b"<n/>", channel=b"/a//"), "bad-format"),
    (_event(b"<n/>", channel=b"/*/"), "bad-format"),
    (_event(b"<op>steal</op><identifier>i</identifier>", LEASE.encode()), "bad-format"),
    (_event(b"<op>register</op><identifier>i</identifier>", LEASE.encode()), "bad-format"),
    (_event(b"<op>register</op><identifier>i</identifier><duration>1</duration>"
            b"<echo>maybe</echo>", LEASE.encode()), "bad-format"),
    (_event(b"<field>f</field>", ATTRIBUTE.encode()), "bad-format"),
    (_event(b"<field>f</field><value>v</value><expire>-1</expire>", ATTRIBUTE.encode()),
     "bad-format"),
    (b'<event xmlns="http://psepr.org/xs/event"><to><channel>/a/</channel></to>'
     b'<payload xmlns="urn:x"/></event>', "bad-format"),
    (b'<event xmlns="http://psepr.org/xs/event" xmlns:d="http://dsmt.org/xs/event-meta" '
     b'd:seq="-1"><to><channel>/a/</channel></to><from><service>s</service></from>'
     b'<payload xmlns="urn:x"/></event>', "bad-format"),
]


@pytest.mark.parametrize("data,condition", BAD_EVENTS)
def test_bad_input_is_refused_with_a_typed_error(data, condition):
    with pytest.raises(XmlError) as caught:
        xml.event_from_bytes(data)
    assert caught.value.condition == condition
    assert isinstance(caught.value, CodecError)


def test_billion_laughs_is_refused_before_any_expansion():
    lol = b'<!ENTITY lol0 "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10))
    with pytest.raises(XmlError, match="DOCTYPE") as caught:
        xml.event_from_bytes(b"<!DOCTYPE lolz [" + lol + b"]><lolz>&lol9;</lolz>")
    assert caught.value.condition == "restricted-xml"


@pytest.mark.parametrize("payload,type_", [
    ({"x": object()}, RECORD),
    ({1: "int key"}, RECORD),
    (1 << 64, RECORD),
    ([[[[]]]] * 1, "http://dsmt.org/xs/payload/" + "x" * 600),
    ({"field": "f"}, ATTRIBUTE),
    ({"field": "f", "value": "v", "extra": 1}, ATTRIBUTE),
    ({"field": "f", "value": "\x00"}, ATTRIBUTE),
    ({"field": "f", "value": "v", "expire": math.inf}, ATTRIBUTE),
    ({"op": ["register"], "identifier": "i", "duration": 1}, LEASE),
    ({"op": "register", "identifier": "", "duration": 1}, LEASE),
    ({"op": "register", "identifier": "i", "duration": 1, "echo": "no"}, LEASE),
    ({"xml": "<payload xmlns='urn:other'/>"}, "urn:x"),
    ({"xml": "<!DOCTYPE p [<!ENTITY e 'x'>]><payload xmlns='urn:x'>&e;</payload>"}, "urn:x"),
    ("not a dict", "urn:x"),
])
def test_payloads_that_cannot_be_encoded_are_refused(payload, type_):
    event = Sequencer(Address("svc")).make("/a/", type_, payload)
    with pytest.raises(XmlError):
        xml.event_to_bytes(event)


def test_too_deep_payloads_are_refused_on_encode():
    deep: list = []
    for _ in range(xml.MAX_RECORD_DEPTH + 1):
        deep = [deep]
    with pytest.raises(XmlError, match="deeper"):
        xml.event_to_bytes(Sequencer(Address("svc")).make("/a/", RECORD, deep))
    ok: list = []
    for _ in range(xml.MAX_RECORD_DEPTH - 1):
        ok = [ok]
    assert round_trip(Sequencer(Address("svc")).make("/a/", RECORD, ok)).payload == ok


@pytest.mark.parametrize("change", [
    {"channel": "/a//"}, {"channel": "/\ufffe/"}, {"id": ""}, {"seq": -1}, {"epoch": 1 << 63},
    {"ts": "now"}, {"sender": Address("")}, {"sender": Address("s\x00")},
    {"to": Address("t", "")}, {"type": ""},
])
def test_events_with_bad_fields_are_refused_on_encode(change):
    good = Sequencer(Address("svc")).make("/a/", RECORD, None)
    bad = Event(**{**{f: getattr(good, f) for f in _fields(good)}, **change})
    with pytest.raises(XmlError):
        xml.event_to_bytes(bad)


def test_an_event_over_the_size_cap_is_refused_on_encode():
    event = Sequencer(Address("svc")).make("/a/", RECORD, "x" * xml.MAX_STANZA)
    with pytest.raises(XmlError, match="over the"):
        xml.event_to_bytes(event)


def _mutations(data: bytes):
    return st.lists(st.tuples(st.integers(0, len(data)), st.integers(0, 3), st.binary(max_size=4)),
                    max_size=6)


VALID = xml.event_to_bytes(Sequencer(Address("svc", "1")).make(
    "/a/b/", RECORD, {"k": [1, 2.5, "s", b"b", None, True, {"n": {}}]}, retain=True))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200) | _mutations(VALID).map(lambda ms: _mutate(VALID, ms)))
def test_garbage_and_mutated_events_raise_only_xml_error(data):
    try:
        event = xml.event_from_bytes(data)
    except XmlError:
        return
    assert isinstance(event, Event)


def _mutate(data: bytes, mutations) -> bytes:
    for pos, cut, insert in mutations:
        pos = min(pos, len(data))
        data = data[:pos] + insert + data[pos + cut:]
    return data


@pytest.mark.parametrize("data,condition", BAD_EVENTS)
def test_the_routing_envelope_refuses_what_the_full_decode_refuses(data, condition):
    with pytest.raises(XmlError) as caught:
        xml.envelope(xml.parse(data))
    assert caught.value.condition == condition


def test_the_envelope_of_a_2005_event_gives_its_event_the_id_it_was_routed_by():
    data = (b'<event xmlns="http://psepr.org/xs/event"><to><channel>/a/</channel>'
            b'<service>m</service></to><from><service>s</service></from>'
            b'<payload xmlns="urn:x"><y/></payload></event>')
    envelope = xml.envelope(xml.parse(data))
    event = envelope.event()
    assert (event.id, event.channel, event.to, event.sender) == (
        envelope.id, "/a/", Address("m"), Address("s"))
    assert len(envelope.id) == 32 and event.payload == envelope.payload == {
        "xml": '<payload xmlns="urn:x"><y/></payload>'}


def test_a_lease_may_be_on_slash_but_no_other_event_may():
    sender = Sequencer(Address("svc"))
    lease = sender.make("/", LEASE, {
        "op": "register", "identifier": "all", "duration": 60.0, "type": None})
    assert round_trip(lease) == lease
    with pytest.raises(XmlError):
        xml.event_to_bytes(sender.make("/", RECORD, None))
    with pytest.raises(XmlError):
        xml.event_from_bytes(_event(b"<n/>", channel=b"/"))


@pytest.mark.parametrize("prolog", [b"\xef\xbb\xbf", b"<?xml version='1.0'?>\n", b" "])
def test_a_bom_declaration_and_whitespace_before_the_root_are_accepted(prolog):
    assert xml.event_from_bytes(prolog + VALID) == xml.event_from_bytes(VALID)


def test_a_comment_before_the_root_is_refused_without_parsing():
    with pytest.raises(XmlError, match="comments") as caught:
        xml.parse(b"<!-- x --><event/>")
    assert caught.value.condition == "restricted-xml"
