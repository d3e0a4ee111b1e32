"""The PsEPR client stream, sans I/O (gateways/psepr/stream.py)."""

from __future__ import annotations

import gc

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from dsmt.event import LEASE, RECORD, Address, Sequencer
from gateways.psepr import inbound, stream, xml
from gateways.psepr.inbound import END, StreamParser
from gateways.psepr.stream import StreamError, StreamHeader

HEADER = stream.stream_header(to="router.example")
EVENT = Sequencer(Address("monitor", "node17")).make(
    "/org/dsmt/ns/deployment/s/plan/", RECORD, {"version": 3, "services": ["web"]}, retain=True)
SESSION = b"".join([
    HEADER,
    stream.auth_get("a1", "monitor"),
    b"\n  ",
    stream.auth_set("a2", "monitor", "secret", "node17"),
    stream.message_stanza(EVENT, to=stream.registry_jid("router.example")),
    b"<presence/>",
    stream.STREAM_END,
])


def _shape(items):
    """Items in comparable form: stanzas serialized, header and END as they are."""
    return [etree.tostring(i) if isinstance(i, etree._Element) else i for i in items]


def _feed_in_chunks(data: bytes, cuts) -> list:
    parser, items, last = StreamParser(), [], 0
    for cut in sorted(cuts) + [len(data)]:
        items += parser.feed(data[last:cut])
        last = cut
    return items


def _stream_error(data: bytes, **kw) -> StreamError:
    with pytest.raises(StreamError) as caught:
        StreamParser(**kw).feed(data)
    return caught.value


# ---------------------------------------------------------------- a session


def test_a_2005_session_parses_into_header_stanzas_and_end():
    parser = StreamParser()
    header, get, set_, message, presence, end = parser.feed(SESSION)
    assert header == StreamHeader({"to": "router.example"}) and parser.header == header
    assert stream.parse_auth(get) == stream.AuthRequest("get", "a1", "monitor", None, None)
    assert stream.parse_auth(set_) == stream.AuthRequest("set", "a2", "monitor", "secret",
                                                          "node17")
    assert message.get("to") == "psepr_registry@router.example"
    assert stream.message_expire(message) == 60.0
    assert stream.message_event(message) == EVENT
    assert presence.tag == stream.PRESENCE and stream.parse_auth(presence) is None
    assert end is END and parser.ended


def test_stanzas_are_detached_elements_in_the_client_namespace():
    message = StreamParser().feed(SESSION)[3]
    assert message.getparent() is None and message.tag == stream.MESSAGE
    assert etree.tostring(message).startswith(b'<message xmlns="jabber:client"')


def test_feeding_byte_by_byte_yields_the_same_items_as_one_chunk():
    assert _shape(_feed_in_chunks(SESSION, range(1, len(SESSION)))) == _shape(
        StreamParser().feed(SESSION))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, len(SESSION)), max_size=30))
def test_any_chunking_yields_the_same_items(cuts):
    assert _shape(_feed_in_chunks(SESSION, cuts)) == _shape(StreamParser().feed(SESSION))


def test_the_router_side_of_the_login_reads_back_on_the_client():
    client = StreamParser()
    client.feed(stream.stream_header(from_="router.example", id="s1"))
    fields, ok, refused = (client.feed(data)[0] for data in (
        stream.auth_fields("a1"), stream.auth_ok("a2"), stream.auth_refused("a3")))
    assert stream.parse_auth_reply(fields) == stream.AuthReply(
        "a1", True, frozenset({"username", "password", "resource"}))
    assert stream.parse_auth_reply(ok) == stream.AuthReply("a2", True)
    assert stream.parse_auth_reply(refused) == stream.AuthReply(
        "a3", False, code=401, condition="not-authorized")


def test_the_server_header_carries_from_and_id():
    (header,) = StreamParser().feed(stream.stream_header(from_="r", id="abc", version="1.0"))
    assert (header.from_, header.id, header.to) == ("r", "abc", None)
    assert header.attrs["version"] == "1.0"


def test_a_stream_error_round_trips_with_its_condition_and_text():
    client = StreamParser()
    client.feed(stream.stream_header(from_="r"))
    (el,) = client.feed(stream.stream_error("policy-violation", "too big") + stream.STREAM_END)[:1]
    error = stream.parse_stream_error(el)
    assert (error.condition, error.text) == ("policy-violation", "too big")
    with pytest.raises(ValueError):
        stream.stream_error("made-up")


def test_a_message_error_goes_back_to_the_sender():
    message = etree.fromstring(b"<message xmlns='jabber:client' from='a@r/1' to='b@r' id='m1'/>")
    reply = etree.fromstring(stream.message_error(message, "modify", "bad-request", "no event"))
    assert (reply.get("type"), reply.get("to"), reply.get("from"), reply.get("id")) == (
        "error", "a@r/1", "b@r", "m1")
    error = reply.find(f"{{{stream.CLIENT_NS}}}error")
    assert error.get("code") == "400"
    assert error.find(f"{{{stream.STANZA_ERRORS_NS}}}bad-request") is not None


def test_a_message_without_exactly_one_event_is_refused():
    parser = StreamParser()
    parser.feed(HEADER)
    (empty,) = parser.feed(b"<message to='psepr_registry@r'><body>hi</body></message>")
    with pytest.raises(xml.XmlError):
        stream.message_event(empty)


def test_a_message_too_big_for_the_stanza_cap_is_refused_on_encode():
    event = Sequencer(Address("s")).make("/a/", RECORD, "x" * (xml.MAX_STANZA - 300))
    with pytest.raises(xml.XmlError, match="over the"):
        stream.message_stanza(event, to="psepr_registry@r")


def test_a_lease_grant_message_carries_the_lease_payload():
    grant = Sequencer(Address("router")).make("/a/", LEASE, {
        "op": "lease", "identifier": "l1", "duration": 600.0, "type": None},
        to=Address("monitor", "node17"))
    data = stream.message_stanza(grant, to="monitor@r/node17", expire=None)
    parser = StreamParser()
    parser.feed(stream.stream_header(from_="r"))
    (message,) = parser.feed(data)
    assert stream.message_expire(message) is None
    assert stream.message_event(message) == grant


# ---------------------------------------------------------------- hostile input

LOL = b'<!ENTITY lol0 "lol">' + b"".join(
    b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10))


@pytest.mark.parametrize("data,condition", [
    (HEADER + b"<message><</message>", "not-well-formed"),
    (b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'"
     b" a='1' a='2'>", "not-well-formed"),
    (HEADER + b"<message><body>x</message>", "not-well-formed"),
    (HEADER + b"<message>\xff\xfe</message>", "not-well-formed"),
    (HEADER + b"<message>&xxe;</message>", "not-well-formed"),
    (HEADER + stream.STREAM_END + b"<message/>", "not-well-formed"),
    (b"<!DOCTYPE stream:stream>" + HEADER, "restricted-xml"),
    (b"<!DOCTYPE lolz [" + LOL + b"]>" + HEADER + b"<message>&lol9;</message>",
     "restricted-xml"),
    (b'<!DOCTYPE s [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + HEADER
     + b"<message>&xxe;</message>", "restricted-xml"),
    (b'<!DOCTYPE s [<!ENTITY % p SYSTEM "http://evil.example/x.dtd"> %p;]>' + HEADER,
     "restricted-xml"),
    (HEADER + b"<message><?php evil() ?></message>", "restricted-xml"),
    (HEADER + b"<message><!-- x --></message>", "restricted-xml"),
    (HEADER + b"<message>" + b"x" * (xml.MAX_STANZA + 2 * inbound.SLICE), "policy-violation"),
    (HEADER + b"<message>" + b"<a>" * 64, "policy-violation"),
    (b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'"
     b" xmlns='jabber:server'>", "invalid-namespace"),
    (b"<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>", "invalid-namespace"),
    (b"<stream xmlns='jabber:client'>", "invalid-namespace"),
    (HEADER + b"<event xmlns='http://psepr.org/xs/event'/>", "unsupported-stanza-type"),
    (HEADER + b"<foo/>", "unsupported-stanza-type"),
    (HEADER + b"hello<message/>", "bad-format"),
])
def test_hostile_input_ends_the_stream_with_the_right_condition(data, condition):
    assert _stream_error(data).condition == condition


def test_a_billion_laughs_is_refused_at_once_whatever_the_chunking():
    data = b"<!DOCTYPE lolz [" + LOL + b"]>" + HEADER + b"<message>&lol9;</message>"
    with pytest.raises(StreamError) as caught:
        _feed_in_chunks(data, range(1, len(data)))
    assert caught.value.condition == "restricted-xml"


def test_a_stanza_at_the_cap_passes_and_one_beyond_it_does_not():
    body = lambda n: b"<message><body>" + b"x" * n + b"</body></message>"  # noqa: E731
    at_cap = body(xml.MAX_STANZA - len(body(0)))
    assert len(at_cap) == xml.MAX_STANZA
    items = StreamParser().feed(HEADER + at_cap + at_cap)
    assert len(items) == 3
    over = body(xml.MAX_STANZA + 2 * inbound.SLICE)
    assert _stream_error(HEADER + at_cap + over).condition == "policy-violation"


def test_a_smaller_stanza_cap_is_honoured_byte_by_byte():
    parser = StreamParser(max_stanza=4096)
    parser.feed(HEADER)
    with pytest.raises(StreamError) as caught:
        for _ in range(10_000):
            parser.feed(b"<message>" if _ == 0 else b"y")
    assert caught.value.condition == "policy-violation"


def test_an_endless_header_is_refused_by_the_cap():
    header = b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='"
    assert _stream_error(header + b"x" * (xml.MAX_STANZA + 2 * inbound.SLICE)).condition == (
        "policy-violation")


def test_nesting_is_capped_with_the_stream_element_counted():
    nested = lambda n: b"<a>" * n + b"</a>" * n  # noqa: E731
    assert len(StreamParser().feed(HEADER + b"<message>" + nested(62) + b"</message>")) == 2
    assert _stream_error(HEADER + b"<message>" + nested(63) + b"</message>").condition == (
        "policy-violation")


def test_a_dead_parser_keeps_raising_its_error():
    parser = StreamParser()
    with pytest.raises(StreamError) as first:
        parser.feed(HEADER + b"<foo/>")
    with pytest.raises(StreamError) as again:
        parser.feed(b"<message/>")
    assert again.value is first.value


def test_whitespace_keepalives_between_stanzas_are_accepted():
    parser = StreamParser()
    parser.feed(HEADER)
    for _ in range(2 * xml.MAX_STANZA // 1024):
        assert parser.feed(b" " * 1024) == []
    assert len(parser.feed(b"<presence/>")) == 1


def _mutate(data: bytes, mutations) -> bytes:
    for pos, cut, insert in mutations:
        pos = min(pos, len(data))
        data = data[:pos] + insert + data[pos + cut:]
    return data


MUTATIONS = st.lists(st.tuples(st.integers(0, len(SESSION)), st.integers(0, 4),
                               st.binary(max_size=6) | st.sampled_from(
                                   [b"<", b">", b"&", b"<!DOCTYPE x>", b"<?x?>", b"]]>",
                                    b"<a>" * 70, b"\x00", b"\xc3", b"</stream:stream>"])),
                     min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | MUTATIONS.map(lambda ms: _mutate(SESSION, ms)),
       st.lists(st.integers(0, 400), max_size=8))
def test_garbage_and_mutated_streams_raise_only_stream_error(data, cuts):
    try:
        items = _feed_in_chunks(data, [c for c in cuts if c <= len(data)])
    except StreamError as exc:
        assert exc.condition in stream.CONDITIONS
        return
    for item in items:
        assert isinstance(item, (StreamHeader, etree._Element)) or item is END


# ---------------------------------------------------------------- memory


def test_a_long_stream_does_not_grow_the_parser():
    stanza = b"<message to='psepr_registry@r'><x xmlns='jabber:x:expire' seconds='60'/></message>"
    batch = stanza * 500
    parser = StreamParser()
    parser.feed(HEADER)
    count = 0

    def run(batches: int) -> None:
        nonlocal count
        for _ in range(batches):
            items = parser.feed(batch)
            count += len(items)
            del items

    run(20)  # warm up: lxml's name dictionary, allocator pools
    gc.collect()
    rss = psutil.Process().memory_info().rss
    run(180)
    gc.collect()
    grown = psutil.Process().memory_info().rss - rss
    assert count == 100_000
    # Keeping 90k stanzas (or a tree of the stream) would take tens of MB.
    assert grown < 8 << 20, f"RSS grew by {grown} bytes over 90k stanzas"


def test_the_deepest_encodable_payloads_still_fit_in_a_stream():
    typed: list = []
    for _ in range(xml.MAX_RECORD_DEPTH - 1):
        typed = [typed]
    raw = ("<p>" * (xml.MAX_DEPTH - 3) + "</p>" * (xml.MAX_DEPTH - 3)).replace(
        "<p>", "<payload xmlns='urn:deep'>", 1)[:-4] + "</payload>"
    sender = Sequencer(Address("s"))
    events = [sender.make("/a/", RECORD, typed), sender.make("/a/", "urn:deep", {"xml": raw})]
    parser = StreamParser()
    parser.feed(HEADER)
    for event in events:
        (message,) = parser.feed(stream.message_stanza(event, to="psepr_registry@r"))
        assert stream.message_event(message) == xml.event_from_bytes(xml.event_to_bytes(event))
    too_deep = raw.replace("<p>", "<p><p>", 1).replace("</p>", "</p></p>", 1)
    with pytest.raises(xml.XmlError, match="deeper"):
        stream.message_stanza(sender.make("/a/", "urn:deep", {"xml": too_deep}), to="r")


# ---------------------------------------------------------------- native tree building


def test_a_stanza_inheriting_the_stream_namespace_is_detached_with_it_declared():
    parser = StreamParser()
    parser.feed(HEADER)
    (message,) = parser.feed(b"<message to='r'><body>hi</body></message>")
    assert message.getparent() is None
    assert etree.tostring(message) == (
        b'<message xmlns="jabber:client" to="r"><body>hi</body></message>')


def test_whitespace_between_stanzas_is_dropped_however_it_is_cut():
    data = HEADER + b"\n <presence/>\n\t <presence/>  \n<presence/> "
    for cuts in ([], range(1, len(data)), [len(HEADER) + 3, len(HEADER) + 17]):
        items = _feed_in_chunks(data, cuts)
        assert [etree.tostring(i) for i in items[1:]] == [
            b'<presence xmlns="jabber:client"/>'] * 3


def test_text_between_stanzas_is_refused_however_it_is_cut():
    parser = StreamParser()
    parser.feed(HEADER + b"<presence/>he")
    with pytest.raises(StreamError) as caught:
        parser.feed(b"llo<presence/>")
    assert caught.value.condition == "bad-format"


@pytest.mark.parametrize("data", [
    HEADER + b"<message>\xff",               # never UTF-8
    HEADER + b"<message>\xed\xa0\x80",       # a surrogate
    HEADER + b"<message>\x00",               # a control character
    HEADER + b"<message>\xef\xbf\xbe",       # U+FFFE
    b"\xff\xfe<\x00s\x00",                   # UTF-16, before any header
])
def test_bytes_that_can_never_be_xml_are_refused_at_once(data):
    assert _stream_error(data).condition == "not-well-formed"


@pytest.mark.parametrize("data", [b"qqq\xf1", b"qq", b" \n x<stream:stream>"])
def test_text_where_the_stream_should_start_is_refused_however_it_is_cut(data):
    # libxml2 may wait for more input before refusing it (a cut UTF-8 sequence at the
    # end), so whether a stream failed depended on how it was cut (a fuzz flake).
    for cuts in ([], range(1, len(data))):
        with pytest.raises(StreamError) as caught:
            _feed_in_chunks(data, cuts)
        assert caught.value.condition == "not-well-formed"


def test_a_utf8_sequence_cut_by_a_chunk_boundary_waits_for_its_end():
    data = HEADER + "<message><body>é</body></message>".encode()
    cut = data.index(b"\xc3") + 1
    assert len(_feed_in_chunks(data, [cut])) == 2


@pytest.mark.parametrize("prolog", [
    b"<?xml version='1.0' encoding='UTF-8'?>\n",
    b"\xef\xbb\xbf<?xml version='1.0'?>",
    b"\xef\xbb\xbf",
    b"  \n",
    b"",
])
def test_a_bom_declaration_and_whitespace_before_the_header_pass_however_cut(prolog):
    data = prolog + HEADER[HEADER.index(b"<stream:"):] + b"<presence/>"
    assert len(_feed_in_chunks(data, range(1, len(data)))) == 2


@pytest.mark.parametrize("prolog", [
    b"<!-- hi -->", b"<?xml version='1.0'?><!-- hi -->", b"<?php x ?>",
    b"<?xml-stylesheet href='x'?>", b"\xef\xbb\xbf<!DOCTYPE s>",
])
def test_comments_pis_and_doctypes_before_the_header_are_refused_byte_by_byte(prolog):
    data = prolog + HEADER[HEADER.index(b"<stream:"):]
    with pytest.raises(StreamError) as caught:
        _feed_in_chunks(data, range(1, len(data)))
    assert caught.value.condition == "restricted-xml"


def test_nesting_past_libxml2s_own_limit_in_one_chunk_is_still_a_policy_violation():
    assert _stream_error(HEADER + b"<message>" + b"<a>" * 300).condition == "policy-violation"


def test_a_comment_after_the_stream_end_is_refused():
    assert _stream_error(HEADER + stream.STREAM_END + b"<!-- x -->").condition == (
        "restricted-xml")


def test_the_envelope_of_a_message_names_what_routing_needs():
    parser = StreamParser()
    parser.feed(HEADER)
    (message,) = parser.feed(stream.message_stanza(EVENT, to="psepr_registry@r"))
    envelope = stream.message_envelope(message)
    assert (envelope.channel, envelope.type, envelope.to, envelope.sender, envelope.id) == (
        EVENT.channel, EVENT.type, EVENT.to, EVENT.sender, EVENT.id)
    assert envelope.event() == EVENT
