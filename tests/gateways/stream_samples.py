"""A sample PsEPR client session and helpers shared by the stream parser's tests.

``SESSION`` is a whole client session (header, auth get and set, a message
carrying ``EVENT``, a presence, the stream end); :func:`feed_in_chunks` feeds
bytes to a fresh :class:`StreamParser` cut at the given offsets;
:func:`stream_error` returns the :class:`StreamError` a parser raises on
bytes fed in one chunk.
"""

from __future__ import annotations

import pytest

from dsmt.event import RECORD, Address, Sequencer
from gateways.psepr import stream
from gateways.psepr.inbound import StreamParser
from gateways.psepr.stream import StreamError

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


def feed_in_chunks(data: bytes, cuts) -> list:
    parser, items, last = StreamParser(), [], 0
    for cut in sorted(cuts) + [len(data)]:
        items += parser.feed(data[last:cut])
        last = cut
    return items


def stream_error(data: bytes, **kw) -> StreamError:
    with pytest.raises(StreamError) as caught:
        StreamParser(**kw).feed(data)
    return caught.value
