"""The PsEPR client stream, sans I/O (gateways/psepr/stream.py): a session, and the edges of
native tree building.

Hostile input and the parser's memory are in :mod:`tests.gateways.test_stream_hostile`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from dsmt.event import LEASE, RECORD, Address, Sequencer
from gateways.psepr import stream, xml
from gateways.psepr.inbound import END, StreamParser
from gateways.psepr.stream import StreamError, StreamHeader

from tests.gateways.stream_samples import EVENT, HEADER, SESSION, feed_in_chunks, stream_error


def _shape(items):
    """Items in comparable form: stanzas serialized, header and END as they are."""
    return [etree.tostring(i) if isinstance(i, etree._Element) else i for i in items]


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
    assert _shape(feed_in_chunks(SESSION, range(1, len(SESSION)))) == _shape(
        StreamParser().feed(SESSION))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, len(SESSION)), max_size=30))
def test_any_chunking_yields_the_same_items(cuts):
    assert _shape(feed_in_chunks(SESSION, cuts)) == _shape(StreamParser().feed(SESSION))


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
        items = feed_in_chunks(data, cuts)
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
    assert stream_error(data).condition == "not-well-formed"


@pytest.mark.parametrize("data", [b"qqq\xf1", b"qq", b" \n x<stream:stream>"])
def test_text_where_the_stream_should_start_is_refused_however_it_is_cut(data):
    # libxml2 may wait for more input before refusing it (a cut UTF-8 sequence at the
    # end), so whether a stream failed depended on how it was cut (a fuzz flake).
    for cuts in ([], range(1, len(data))):
        with pytest.raises(StreamError) as caught:
            feed_in_chunks(data, cuts)
        assert caught.value.condition == "not-well-formed"


def test_a_utf8_sequence_cut_by_a_chunk_boundary_waits_for_its_end():
    data = HEADER + "<message><body>é</body></message>".encode()
    cut = data.index(b"\xc3") + 1
    assert len(feed_in_chunks(data, [cut])) == 2


@pytest.mark.parametrize("prolog", [
    b"<?xml version='1.0' encoding='UTF-8'?>\n",
    b"\xef\xbb\xbf<?xml version='1.0'?>",
    b"\xef\xbb\xbf",
    b"  \n",
    b"",
])
def test_a_bom_declaration_and_whitespace_before_the_header_pass_however_cut(prolog):
    data = prolog + HEADER[HEADER.index(b"<stream:"):] + b"<presence/>"
    assert len(feed_in_chunks(data, range(1, len(data)))) == 2


@pytest.mark.parametrize("prolog", [
    b"<!-- hi -->", b"<?xml version='1.0'?><!-- hi -->", b"<?php x ?>",
    b"<?xml-stylesheet href='x'?>", b"\xef\xbb\xbf<!DOCTYPE s>",
])
def test_comments_pis_and_doctypes_before_the_header_are_refused_byte_by_byte(prolog):
    data = prolog + HEADER[HEADER.index(b"<stream:"):]
    with pytest.raises(StreamError) as caught:
        feed_in_chunks(data, range(1, len(data)))
    assert caught.value.condition == "restricted-xml"


def test_nesting_past_libxml2s_own_limit_in_one_chunk_is_still_a_policy_violation():
    assert stream_error(HEADER + b"<message>" + b"<a>" * 300).condition == "policy-violation"


def test_a_comment_after_the_stream_end_is_refused():
    assert stream_error(HEADER + stream.STREAM_END + b"<!-- x -->").condition == (
        "restricted-xml")


def test_the_envelope_of_a_message_names_what_routing_needs():
    parser = StreamParser()
    parser.feed(HEADER)
    (message,) = parser.feed(stream.message_stanza(EVENT, to="psepr_registry@r"))
    envelope = stream.message_envelope(message)
    assert (envelope.channel, envelope.type, envelope.to, envelope.sender, envelope.id) == (
        EVENT.channel, EVENT.type, EVENT.to, EVENT.sender, EVENT.id)
    assert envelope.event() == EVENT
