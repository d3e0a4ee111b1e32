"""Fuzzed client streams: StreamParser yields items or raises StreamError, and stays consistent.

Random bytes and mutants of a valid stream (header, auth, messages with
events, end) are fed in random chunkings. Checked: nothing but StreamError
escapes ``feed()``; a dead parser raises the same error again; the header
comes once and first, END last; the stream's tree never holds more than the
stanza in progress; how the bytes are chunked does not change the outcome;
each message's event decodes or raises XmlError.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from dsmt.event import ATTRIBUTE, LEASE, Address, Sequencer
from gateways.psepr import inbound, stream
from gateways.psepr.xml import XmlError

from . import fuzz_settings, fuzz_timeout, mutants

pytestmark = fuzz_timeout(120)

SEQ = Sequencer(Address("fuzz", "i1"))
MAX_STANZA = 2048  # small, so the cap is reached by fuzzed input too


def _valid_stream() -> bytes:
    to = "psepr_registry@r1"
    events = [SEQ.make("/org/dsmt/x/", ATTRIBUTE, {"field": "f", "value": "v\u00e9"}),
              SEQ.make("/a/", LEASE, {"op": "register", "identifier": "l1", "duration": 60.0,
                                      "type": None})]
    return (stream.stream_header(to="r1") + stream.auth_get("a1", "fuzz")
            + stream.auth_set("a2", "fuzz", "pw", "i1") + b"\n "
            + b"".join(stream.message_stanza(e, to=to, expire=60) for e in events)
            + b"<presence/>" + stream.STREAM_END)


VALID = _valid_stream()
inputs = st.one_of(st.binary(max_size=200), st.just(VALID),
                   st.integers(0, len(VALID)).map(lambda i: VALID[:i]))
cuts = st.lists(st.integers(1, 400), max_size=8)


def _chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, i = [], 0
    for n in sizes:
        out.append(data[i:i + n])
        i += n
    out.append(data[i:])
    return out


def run(chunks: list[bytes], raw: bool = False) -> tuple[list, stream.StreamError | None]:
    parser = inbound.StreamParser(max_stanza=MAX_STANZA, raw=raw)
    items: list = []
    for chunk in chunks:
        ended = parser.ended
        try:
            got = parser.feed(chunk)
        except stream.StreamError as exc:
            assert exc.condition in stream.CONDITIONS
            with pytest.raises(stream.StreamError) as again:
                parser.feed(b" ")
            assert again.value is exc
            return items, exc
        assert not (ended and got), "items after the end of the stream"
        for item in got:
            forwarded = parser.raw(item) if isinstance(item, etree._Element) else None
            if forwarded is not None:  # the bytes a router would forward, as a receiver reads them
                (received,) = _receive(forwarded)
                assert etree.tostring(received) == etree.tostring(item)
        items.extend(got)
        if parser._root is not None:
            assert len(parser._root) <= 1, "the stream's tree keeps completed stanzas"
    for i, item in enumerate(items):
        if isinstance(item, stream.StreamHeader):
            assert i == 0 and parser.header == item
        elif item is inbound.END:
            assert i == len(items) - 1 and parser.ended
        else:
            assert i > 0 and isinstance(items[0], stream.StreamHeader)
            _check_stanza(item)
    return items, None


def _receive(data: bytes) -> list:
    """What a client reads from ``data`` sent on the router's stream."""
    parser = inbound.StreamParser()
    parser.feed(stream.stream_header(from_="r1", id="x"))
    return parser.feed(data)


def _check_stanza(el) -> None:
    if el.tag == stream.MESSAGE:
        try:
            stream.message_event(el)
        except XmlError:
            pass
        stream.message_expire(el)
    elif el.tag == stream.IQ:
        stream.parse_auth(el)


def _key(items: list) -> list:
    return [i if isinstance(i, stream.StreamHeader) or i is inbound.END
            else etree.tostring(i) for i in items]


@fuzz_settings()
@given(data=inputs, seed=st.integers(0, 2**32), sizes=cuts)
def test_a_fuzzed_stream_in_any_chunking_yields_items_or_stream_error(data, seed, sizes):
    for raw in [data, *mutants(data, seed)]:
        whole, whole_error = run([raw])
        chunked, chunked_error = run(_chunks(raw, sizes), raw=True)
        assert (whole_error is None) == (chunked_error is None), (whole_error, chunked_error)
        if whole_error is None:
            assert _key(whole) == _key(chunked)


def test_the_valid_stream_parses_to_header_three_stanzas_presence_and_end():
    items, error = run([VALID])
    assert error is None
    assert isinstance(items[0], stream.StreamHeader) and items[-1] is inbound.END
    assert len(items) == 7
