"""A router forwards a message as the bytes it arrived in (StreamParser(raw=True)).

The property that matters: bytes are given only where certain, and are then
exactly the stanza as sent (declaring the namespace it inherited from the
stream), whatever the stanzas around it and however the stream is cut.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gateways.psepr import stream, xml
from gateways.psepr.inbound import StreamParser
from gateways.psepr.stream import StreamHeader

HEADER = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
          b"xmlns:stream='http://etherx.jabber.org/streams' to='r'>")
LOGIN = b"<iq type='set' id='a'><query xmlns='jabber:iq:auth'><username>u</username></query></iq>"
DECLARE = b' xmlns="jabber:client"'

# Stanza kinds, {i} numbers them; "bytes" is what raw() must give (None: nothing).
KINDS = {
    "plain": (b"<message to='r'><body>{i}</body></message>", "declare"),
    "own-ns": (b"<message xmlns='jabber:client' to='r'><body>{i}</body></message>", "same"),
    "spaced-end": (b"<message to='r'><body>{i}</body></message \n>", "declare"),
    "cdata-end-tag": ((b"<message to='r'><body>{i}<![CDATA[</message><message a='1'>]]>"
                       b"</body></message>"), "declare"),
    "nested": (b"<message to='r'><x xmlns='urn:x'><message>{i}</message></x></message>",
               "declare"),
    "self-closed": (b"<message to='r' id='{i}'/>", None),
    "prefixed": (b"<c:message xmlns:c='jabber:client' to='r'><body>{i}</body></c:message>",
                 None),
    "uses-stream-prefix": (b"<message to='r'><stream:x>{i}</stream:x></message>", None),
    "iq": (b"<iq type='get' id='{i}'><query xmlns='jabber:iq:auth'/></iq>", None),
    "features": (b"<stream:features><message>{i}</message><message a='1'/></stream:features>",
                 None),
}


def _stanza(kind: str, i: int) -> bytes:
    return KINDS[kind][0].replace(b"{i}", str(i).encode())


def _expected(kind: str, data: bytes) -> bytes | None:
    how = KINDS[kind][1]
    if how == "declare":
        return b"<message" + DECLARE + data[len(b"<message"):]
    return data if how == "same" else None


def _run(chunks: list[bytes], parser: StreamParser | None = None) -> list:
    parser = parser or StreamParser(raw=True)
    out = []
    for chunk in chunks:
        for item in parser.feed(chunk):
            if isinstance(item, etree._Element):
                out.append((item, parser.raw(item)))
    return out


def _cut(data: bytes, cuts) -> list[bytes]:
    cuts = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


def test_libxml2_reports_an_end_as_soon_as_the_end_tag_closes():
    # What raw() relies on: the piece whose feeding reports a stanza's end holds its end tag.
    parser = xml.hardened_parser()
    parser.feed(HEADER[len(b"<?xml version='1.0'?>"):])
    list(parser.read_events())
    parser.feed(b"<message><body>x</body></message")
    assert [e for e, _ in parser.read_events()] == ["start", "start", "end"]
    parser.feed(b" >")
    assert [(e, el.tag) for e, el in parser.read_events()] == [("end", stream.MESSAGE)]


def test_a_message_is_given_the_bytes_it_arrived_in_declaring_the_inherited_namespace():
    first, second = _stanza("plain", 1), _stanza("own-ns", 2)
    (_, login), (m1, raw1), (_, raw2) = _run([HEADER + LOGIN + b"\n " + first + b"\t" + second])
    assert login is None  # an iq is never forwarded
    assert raw1 == _expected("plain", first) and raw2 == second
    assert etree.tostring(etree.fromstring(raw1)) == etree.tostring(m1)


def test_the_first_stanza_after_the_header_gets_no_bytes_the_next_one_does():
    m = _stanza("plain", 1)
    assert [raw for _, raw in _run([HEADER + m + m])] == [None, _expected("plain", m)]


def test_an_uncertain_end_leaves_stanzas_without_bytes_until_one_ends_certainly():
    # A self-closed stanza's end is no end tag: where the next one starts is unknown
    # until a piece fed holds certain ends only.
    p2, p3, p4 = (_stanza("plain", i) for i in (2, 3, 4))
    chunks = [HEADER + LOGIN, _stanza("self-closed", 1) + p2, p3, p4]
    assert [raw for _, raw in _run(chunks)] == [None, None, None, None, _expected("plain", p4)]


def test_a_stanza_using_the_stream_prefix_or_a_stream_declaring_more_gets_no_bytes():
    m = _stanza("plain", 1)
    assert _run([HEADER + LOGIN + _stanza("uses-stream-prefix", 1)])[-1][1] is None
    more = HEADER.replace(b"to='r'", b"xmlns:d='http://dsmt.org/xs/event-meta' to='r'")
    assert _run([more + LOGIN + m])[-1][1] is None


def test_bytes_are_only_those_of_the_last_feed():
    parser = StreamParser(raw=True)
    ((_, _), (m, raw)) = _run([HEADER + LOGIN + _stanza("plain", 1)], parser)
    assert raw is not None
    parser.feed(b" ")
    assert parser.raw(m) is None


def test_forget_drops_the_bytes_so_an_idle_connection_keeps_no_stanza_alive():
    parser = StreamParser(raw=True)
    ((_, _), (m, raw)) = _run([HEADER + LOGIN + _stanza("plain", 1)], parser)
    assert raw is not None
    parser.forget()
    assert parser.raw(m) is None and not parser._raws


def test_a_parser_without_raw_gives_no_bytes():
    assert [raw for _, raw in _run([HEADER + LOGIN + _stanza("plain", 1)], StreamParser())] \
        == [None, None]


@settings(max_examples=300, deadline=None)
@given(kinds=st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=12),
       spaces=st.lists(st.sampled_from([b"", b" ", b"\n\t", b"  \r\n"]), min_size=12,
                       max_size=12),
       cuts=st.lists(st.integers(min_value=1, max_value=3000), max_size=8))
def test_bytes_given_are_exactly_the_stanza_sent_whatever_the_mix_and_the_cuts(
        kinds, spaces, cuts):
    sent = [_stanza(kind, i) for i, kind in enumerate(kinds)]
    data = HEADER + LOGIN + b"".join(s + space for s, space in zip(sent, spaces))
    got = _run(_cut(data, cuts))[1:]
    assert len(got) == len(sent)
    for kind, stanza, (el, raw) in zip(kinds, sent, got):
        if raw is not None:
            assert raw == _expected(kind, stanza), kind
            assert etree.tostring(etree.fromstring(raw)) == etree.tostring(el)


def test_a_clean_stream_cut_anywhere_gives_every_message_after_the_first_its_bytes():
    sent = [_stanza("plain", i) for i in range(40)]
    data = HEADER + LOGIN + b"".join(sent)
    for size in (1, 7, 100, 1023, 1024, 5000):
        got = _run([data[i:i + size] for i in range(0, len(data), size)])[1:]
        assert [raw for _, raw in got] == [_expected("plain", s) for s in sent], size


def test_hostile_input_still_ends_the_stream_with_raw_tracking():
    for bad, condition in ((b"<message><a></message>", "not-well-formed"),
                           (b"<message>" + b"x" * 70000, "policy-violation"),
                           (b"<!-- c -->", "restricted-xml")):
        try:
            _run([HEADER + LOGIN + bad])
        except stream.StreamError as exc:
            assert exc.condition == condition
        else:
            raise AssertionError(f"{bad[:20]!r} was accepted")


def test_the_kept_bytes_stay_bounded_over_a_long_stream():
    parser = StreamParser(raw=True)
    parser.feed(HEADER + LOGIN)
    batch = b"".join(_stanza("plain", i) + b" " for i in range(200))
    for _ in range(50):
        parser.feed(batch)
        parser.feed(b"<message to='r'><body>partial")
        parser.feed(b"</body></message>")
        assert len(parser._bounds.buf) < 64
    assert isinstance(StreamParser(raw=True).feed(HEADER)[0], StreamHeader)
