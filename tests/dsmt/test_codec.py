"""The local wire codec: every event round-trips, garbage only ever raises CodecError."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsmt import codec
from dsmt.errors import CodecError
from dsmt.event import Address, Event

_LIMIT = 2**63 - 1
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                    st.floats(allow_nan=False), st.text(max_size=20), st.binary(max_size=20))
payloads = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20)
names = st.text(min_size=1, max_size=16)
addresses = st.builds(Address, names, st.none() | names)
events = st.builds(
    Event,
    channel=st.sampled_from(["/a/", "/org/dsmt/ns/deployment/s/plan/", "/ü/ñ/"]),
    type=names, sender=addresses, payload=payloads,
    id=st.text(min_size=1, max_size=128), seq=st.integers(0, _LIMIT),
    epoch=st.integers(0, _LIMIT), ts=st.floats(allow_nan=False),
    retain=st.booleans(), to=st.none() | addresses)


@given(events)
@settings(suppress_health_check=[HealthCheck.too_slow])  # a loaded machine stalls draws
def test_every_event_round_trips_through_the_wire(event):
    frames = codec.encode(event)
    assert codec.decode(frames) == event


@given(st.lists(st.binary(max_size=200), max_size=4))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_random_frames_only_ever_raise_codec_error(frames):
    try:
        codec.decode(frames)
    except CodecError:
        pass


@given(st.lists(payloads, min_size=0, max_size=14))
def test_wrong_shaped_msgpack_bodies_only_ever_raise_codec_error(fields):
    try:
        codec.decode([b"/a/", msgpack.packb(fields)])
    except CodecError:
        pass


@given(events, st.data())
def test_a_valid_body_with_one_field_of_the_wrong_type_raises_codec_error(event, data):
    fields = msgpack.unpackb(codec.encode(event)[1])
    # version, retain, id, seq, epoch, type, sender service
    index = data.draw(st.sampled_from([0, 1, 2, 3, 4, 6, 7]))
    fields[index] = data.draw(st.sampled_from([[], {}, -1, "", 2**64 - 1, 1.5]))
    with pytest.raises(CodecError):
        codec.decode([b"/a/", msgpack.packb(fields)])


@given(events, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_after_the_body_are_rejected(event, extra):
    channel, body = codec.encode(event)
    with pytest.raises(CodecError):
        codec.decode([channel, body + extra])


def test_ext_types_bad_channels_and_oversized_bodies_are_rejected():
    ok = codec.encode(Event("/a/", "t", Address("s"), None, "i", 1, 1, 0.0))
    for frames in ([b"/a/", msgpack.packb(msgpack.ExtType(3, b""))],
                   [b"/a//", ok[1]], [b"a", ok[1]], [b"\xff/", ok[1]],
                   [b"/a/", b"\x00" * (codec.MAX_BODY + 1)], [ok[0]], [*ok, b""]):
        with pytest.raises(CodecError):
            codec.decode(frames)


def test_an_unencodable_payload_raises_codec_error():
    with pytest.raises(CodecError):
        codec.encode(Event("/a/", "t", Address("s"), object(), "i", 1, 1, 0.0))


@given(events)
def test_inspect_agrees_with_decode_on_valid_events(event):
    assert codec.inspect(codec.encode(event)) == (event.channel, event.retain,
                                                  event.payload is None)


@given(st.lists(st.binary(max_size=200), max_size=4))
def test_inspect_refuses_exactly_what_decode_refuses(frames):
    outcomes = []
    for parse in (codec.decode, codec.inspect):
        try:
            parse(frames)
            outcomes.append("ok")
        except CodecError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1] or "ok" not in outcomes


def test_a_failed_encode_leaves_the_reused_packer_clean():
    good = Event("/a/", "t", Address("s"), [1, 2], "i", 1, 1, 0.0)
    with pytest.raises(CodecError):
        codec.encode(Event("/a/", "t", Address("s"), [1, object()], "i", 1, 1, 0.0))
    assert codec.decode(codec.encode(good)) == good


@given(events)
def test_a_body_starts_with_the_retained_bytes_exactly_when_the_event_is_retained(event):
    channel, body = codec.encode(event)
    assert channel[:1] == b"/" and body[0] == codec.BODY_START
    assert body.startswith(codec.RETAINED) == event.retain


def test_a_version_1_body_is_refused():
    v1 = msgpack.packb([1, "i", 1, 1, 0.0, "t", "s", None, None, None, True, "x"])
    with pytest.raises(CodecError, match="version"):
        codec.decode([b"/a/", v1])
