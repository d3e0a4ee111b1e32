"""The local wire: how an event travels through the hub (ZeroMQ + msgpack).

This docstring is the wire specification; this module is the only place
that encodes or decodes it.

An event is one ZeroMQ multipart message of exactly two frames::

    frame 0   the channel, UTF-8, a valid PsEPR channel (see dsmt.channels);
              ZeroMQ's prefix subscription on this frame gives PsEPR's
              "a channel and all its sub-channels" semantics.
    frame 1   a msgpack array of 12 items, in this order:

      0  version          int, 2
      1  retain           bool
      2  id               str, 1..128 chars, unique per event
      3  seq              int, 0..2**63-1, per sender, rising within an epoch
      4  epoch            int, 0..2**63-1, grows when the sender restarts
      5  ts               float, UNIX seconds
      6  type             str, 1..512 chars, the payload namespace URI
      7  sender service   str, 1..256 chars
      8  sender instance  str 1..256 chars, or nil
      9  to service       str 1..256 chars, or nil
     10  to instance      str 1..256 chars, or nil (nil when to service is nil)
     11  payload          any msgpack value: nil, bool, int, float, str,
                          bin, array, map with str keys (no ext types)

Fixed bytes, by construction: frame 0 starts with ``/``; frame 1 starts
with 0x9c (an array of 12) and 0x02 (the version), then 0xc3 (true) or 0xc2
(false) for ``retain``. :data:`RETAINED` is those first three bytes of a
retained event: the hub's keeper tells a retained event from the others by
one ``startswith`` without decoding it (see :mod:`dsmt._keeper`). Version 1
had ``retain`` at item 10 and is refused.

Framing by content: readers receive frames one at a time and tell a channel
frame from a body by its first byte (``/`` or 0x9c) instead of asking ZeroMQ
whether more frames follow (``RCVMORE`` costs a reader more than the two
``recv`` calls, measured: ~0.7 us against ~0.35 us each). ZeroMQ delivers
all frames of a message at once, so a channel frame with no frame after it
is a 1-frame message, and a channel frame followed by another channel frame
was one too. Consequence: in a message of three or more frames whose first
two are a valid event, readers take that event and drop the extra frames
(counted); the bytes are exactly what the sender could have sent as an
event, and no other reading of the stream changes.

Limits: frame 1 is at most :data:`MAX_BODY` bytes (1 MiB by default); the
decoder never reads past it, rejects trailing bytes, ext types, non-str map
keys and any field of the wrong type or size. Every violation raises
:class:`dsmt.errors.CodecError` naming what is wrong: garbage in, typed
error out, never a crash.

:func:`decode` returns an :class:`dsmt.event.Event`; :func:`inspect` applies
the very same validation but returns only ``(channel, retain, payload is
None)``. Every reader of the hub validates what it uses (the hub's C proxy
forwards without looking, see :mod:`dsmt.hub`), so :func:`decode` checks
the common case -- a known channel, a known (type, sender, to) header,
plain scalars in range -- in one expression and falls back to the
field-by-field checks, which name the error, for anything else.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

import msgpack

from dsmt import channels
from dsmt.errors import ChannelError, CodecError
from dsmt.event import Address, Event, Sequencer

VERSION = 2
# The first bytes of a retained event's body: array of 12, version 2, true.
RETAINED = bytes((0x9c, VERSION, 0xc3))
_NOT_RETAINED = bytes((0x9c, VERSION, 0xc2))
BODY_START = 0x9c  # the first byte of every body (frame 1)
CHANNEL_START = 0x2f  # "/", the first byte of every channel (frame 0)
MAX_BODY = 1 << 20
_MAX_INT = (1 << 63) - 1
_FIELDS = 12

# Channels seen on the wire repeat: remember the ones already validated.
_valid_channels: dict[bytes, str] = {}
_CHANNEL_CACHE = 4096
_addresses: dict[tuple[str, str | None], Address] = {}
_ADDRESS_CACHE = 4096
# (type, sender service, sender instance, to service, to instance) already
# validated -> (sender, to): one lookup checks five fields and yields the
# shared Address objects.
_headers: dict[tuple, tuple[Address, Address | None]] = {}
_HEADER_CACHE = 4096
_unpackb = msgpack.unpackb
_new_event = tuple.__new__  # Event(...) from its fields in order, in one C call


# One Packer per thread: reusing it halves the cost of packb(); a Packer is not
# safe to share between threads.
_packers = threading.local()


def _reject_ext(code: int, data: bytes) -> Any:
    raise CodecError(f"msgpack ext type {code} is not allowed")


def _packer() -> msgpack.Packer:
    try:
        return _packers.packer
    except AttributeError:
        _packers.packer = msgpack.Packer(use_bin_type=True)
        return _packers.packer


def encode(event: Event) -> tuple[bytes, bytes]:
    """The two frames of ``event``; raises CodecError if it cannot be encoded."""
    channel, type_, sender, payload, id_, seq, epoch, ts, retain, to = event
    try:
        packer = _packers.packer
    except AttributeError:
        packer = _packer()
    try:
        body = packer.pack([
            VERSION, retain, id_, seq, epoch, ts, type_, sender.service, sender.instance,
            None if to is None else to.service, None if to is None else to.instance,
            payload])
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"cannot encode payload of event {id_}: {exc}") from None
    if len(body) > MAX_BODY:
        raise CodecError(f"event {id_} is {len(body)} bytes, over the {MAX_BODY} limit")
    return channel.encode("utf-8"), body


def stamper(sequencer: Sequencer) -> Callable[[str, str, Any, bool, Address | None],
                                              tuple[Event, bytes]]:
    """A function that stamps one sender's next event and encodes its body in one step.

    ``stamp(channel, type, payload, retain, to)`` returns ``(event, body)``:
    the same as ``event = sequencer.make(...)`` then ``encode(event)[1]``,
    without a second pass over the event (the publisher's hot path; measured
    ~0.6 us of the ~3 us a publish took). Raises CodecError as :func:`encode`
    does (the seq is used then, as with ``make``). The returned function owns
    a msgpack Packer: call it from one thread only (the publisher's).
    """
    sender, epoch, counter, id_prefix = sequencer.parts()
    service, instance = sender.service, sender.instance
    pack = msgpack.Packer(use_bin_type=True).pack
    now = time.time

    def stamp(channel: str, type_: str, payload: Any, retain: bool,
              to: Address | None) -> tuple[Event, bytes]:
        seq = next(counter)
        ts = now()
        id_ = f"{id_prefix}{seq}"
        try:
            body = pack([VERSION, retain, id_, seq, epoch, ts, type_, service, instance,
                         None if to is None else to.service,
                         None if to is None else to.instance, payload])
        except (TypeError, ValueError, OverflowError) as exc:
            raise CodecError(f"cannot encode payload of event {id_}: {exc}") from None
        if len(body) > MAX_BODY:
            raise CodecError(f"event {id_} is {len(body)} bytes, over the {MAX_BODY} limit")
        return _new_event(Event, (channel, type_, sender, payload, id_, seq, epoch, ts, retain,
                                  to)), body

    return stamp


def decode_channel(frame: bytes) -> str:
    """The channel of frame 0, validated; raises CodecError."""
    cached = _valid_channels.get(frame)
    if cached is not None:
        return cached
    try:
        channel = channels.validate(frame.decode("utf-8"))
    except (UnicodeDecodeError, ChannelError) as exc:
        raise CodecError(f"bad channel frame ({exc})", frame) from None
    if len(_valid_channels) >= _CHANNEL_CACHE:
        _valid_channels.clear()
    _valid_channels[bytes(frame)] = channel
    return channel


def decode(frames: Sequence[bytes]) -> Event:
    """The event in ``frames`` (channel, body); raises CodecError on anything else."""
    if len(frames) == 2:
        return decode_pair(frames[0], frames[1])
    raise CodecError(f"expected 2 frames, got {len(frames)}")


def decode_pair(head: bytes, body: bytes) -> Event:
    """The event of a channel frame and a body: :func:`decode` without the frame list."""
    channel = _valid_channels.get(head)
    lead = body[:3]
    # The hot path of every subscriber: one test for the common case (a known
    # channel, a version-2 12-item array -- the lead bytes say so -- a sender
    # already validated, plain scalars in range); anything else goes through
    # _parse, which names the error.
    if channel is not None and (lead == RETAINED or lead == _NOT_RETAINED) and (
            len(body) <= MAX_BODY):
        try:
            (_, retain, id_, seq, epoch, ts, type_, s_service, s_instance, t_service,
             t_instance, payload) = _unpackb(body, raw=False, strict_map_key=True,
                                             ext_hook=_reject_ext)
            addresses = _headers.get((type_, s_service, s_instance, t_service, t_instance))
        except Exception:  # garbage, or an unhashable header field: _parse says what
            addresses = None
        if (addresses is not None and type(id_) is str and 0 < len(id_) <= 128
                and type(seq) is int and 0 <= seq <= _MAX_INT
                and type(epoch) is int and 0 <= epoch <= _MAX_INT and type(ts) is float):
            return _new_event(Event, (channel, type_, addresses[0], payload, id_, seq, epoch,
                                      ts, retain, addresses[1]))
    (channel, id_, seq, epoch, ts, type_, s_service, s_instance, t_service, t_instance,
     retain, payload) = _parse((head, body))
    key = (type_, s_service, s_instance, t_service, t_instance)
    addresses = _headers.get(key)
    if addresses is None:
        if len(_headers) >= _HEADER_CACHE:
            _headers.clear()
        addresses = _headers[key] = (
            _address(s_service, s_instance),
            None if t_service is None else _address(t_service, t_instance))
    return _new_event(Event, (channel, type_, addresses[0], payload, id_, seq, epoch, ts,
                              retain, addresses[1]))


def _address(service: str, instance: str | None) -> Address:
    # Senders repeat and Address is immutable: share one object per address.
    key = (service, instance)
    address = _addresses.get(key)
    if address is None:
        if len(_addresses) >= _ADDRESS_CACHE:
            _addresses.clear()
        address = _addresses[key] = Address(service, instance)
    return address


def inspect(frames: Sequence[bytes]) -> tuple[str, bool, bool]:
    """``(channel, retain, payload is None)`` of a valid event, without building it.

    Validates exactly as :func:`decode` does (same errors); for the hub, which
    forwards the frames unchanged and needs only these three facts.
    """
    fields = _parse(frames)
    return fields[0], fields[10], fields[11] is None


def _parse(frames: Sequence[bytes]) -> tuple:
    """The validated fields: channel then items 1..11 of the body (ts as float)."""
    if len(frames) != 2:
        raise CodecError(f"expected 2 frames, got {len(frames)}")
    channel = decode_channel(frames[0])
    body = frames[1]
    if len(body) > MAX_BODY:
        raise CodecError(f"body of {len(body)} bytes is over the {MAX_BODY} limit")
    try:
        fields = msgpack.unpackb(body, raw=False, strict_map_key=True, ext_hook=_reject_ext)
    except CodecError:
        raise
    except Exception as exc:  # msgpack raises many types on garbage
        raise CodecError(f"body is not msgpack ({type(exc).__name__}: {exc})", body) from None
    if type(fields) is not list or len(fields) != _FIELDS:
        raise CodecError("body is not a 12-item array", body)
    (version, retain, id_, seq, epoch, ts, type_, s_service, s_instance, t_service,
     t_instance, payload) = fields
    if version != VERSION or type(version) is not int:
        raise CodecError(f"unsupported version {version!r}")
    # The checks are inlined; _check_* only build the error message.
    if type(id_) is not str or not 0 < len(id_) <= 128:
        _check_str("id", id_, 128)
    if type(seq) is not int or not 0 <= seq <= _MAX_INT:
        _check_int("seq", seq)
    if type(epoch) is not int or not 0 <= epoch <= _MAX_INT:
        _check_int("epoch", epoch)
    if type(ts) is not float:
        if type(ts) is not int:
            raise CodecError(f"ts must be a float, got {type(ts).__name__}")
        ts = float(ts)
    if type(type_) is not str or not 0 < len(type_) <= 512:
        _check_str("type", type_, 512)
    if type(s_service) is not str or not 0 < len(s_service) <= 256:
        _check_str("sender service", s_service, 256)
    if s_instance is not None:
        _check_str("sender instance", s_instance, 256)
    if t_service is None:
        if t_instance is not None:
            raise CodecError("to instance without to service")
    else:
        _check_str("to service", t_service, 256)
        if t_instance is not None:
            _check_str("to instance", t_instance, 256)
    if type(retain) is not bool:
        raise CodecError(f"retain must be a bool, got {type(retain).__name__}")
    return (channel, id_, seq, epoch, ts, type_, s_service, s_instance, t_service, t_instance,
            retain, payload)


def _check_str(name: str, value: object, limit: int) -> None:
    if type(value) is not str or not 0 < len(value) <= limit:
        raise CodecError(f"{name} must be a str of 1..{limit} chars", value)


def _check_int(name: str, value: object) -> None:
    if type(value) is not int or not 0 <= value <= _MAX_INT:
        raise CodecError(f"{name} must be an int in 0..2**63-1", value)
