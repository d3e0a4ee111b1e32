"""Retained state for late joiners: the zguide "clone" pattern over the hub.

The hub's keeper (:mod:`dsmt._keeper`) keeps, per key (an event's channel),
the newest event published with ``retain=True``, stamped with its own
sequence: ``hub_seq`` counts the events the keeper has seen on its stream,
which is the one order in which the hub's C proxy forwards them to every
subscriber. A retained event whose payload is ``None`` clears its key (it is
still forwarded).

Why a late joiner sees no gap and no duplicate
----------------------------------------------
The keeper is not in the forwarding path: it subscribes to everything on
the hub's XPUB, behind the proxy. What makes the cut exact is that the
proxy writes each message to every subscriber's queue in the same order,
the keeper's included. A joining subscriber:

1. subscribes to its prefixes and to a private *sync channel*
   (:func:`dsmt.hub.sync_channel`), and waits for the hub's *welcome* on it;
   subscriptions travel in order on one pipe, so once the hub has seen the
   sync subscription every data subscription is live;
2. sends a snapshot request (prefixes, its sync channel, a token);
3. the keeper publishes a *marker* event (payload ``{"kind": "snapshot",
   "token": ...}``) on the sync channel, through the proxy like any event,
   and keeps the request waiting; when the marker comes back on its own
   stream, it reads the store at once (everything before the marker in the
   stream, nothing after) and replies with the events and ``hub_seq``;
4. the subscriber drops every event it receives before the marker (each
   came before the cut, so its effect is in the snapshot or superseded by
   it), applies the snapshot, then delivers everything after the marker.

The subscriber was subscribed before the marker passed the proxy (step 1),
so its stream after the marker is exactly the keeper's stream after the
marker restricted to its prefixes: nothing twice, nothing missing (unless a
high-water mark dropped some, which the gap detector reports), whatever
number of senders write the same key. A per-key version cut (drop a live
event older than the snapshot's event for its key) would be exact only for
one sender per key; the stream-position cut needs no versions. The price:
a reply waits until the keeper has read its stream up to the marker, so
while publishers outpace the keeper, a join waits out the keeper's backlog
(the old in-line hub throttled the publishers instead).

Request (a client DEALER to the hub ROUTER), one multipart message::

    MAGIC, token (1..64 ASCII), sync channel (UTF-8, or empty: no marker),
    prefix, prefix, ...          (1..MAX_PREFIXES subscriptions, "/" = all)

Reply::

    MAGIC, b"OK",  token, hub_seq (ASCII int), truncated (b"0"|b"1"),
                   channel, body, channel, body, ...   (oldest hub_seq first)
    MAGIC, b"ERR", token (or empty), reason (UTF-8)

Bounds: a reply holds at most ``max_keys`` events and ``max_bytes`` bytes of
channel+body (defaults :data:`MAX_KEYS`, :data:`MAX_BYTES`); beyond that the
newest events are left out and ``truncated`` is set: a client that needs the
whole state must narrow its prefixes. The store itself holds at most
:data:`MAX_STORE_KEYS` keys; beyond that the key updated longest ago is
evicted and counted. A garbage request gets an ``ERR`` reply (or none, when
not even the envelope is readable) and is counted; it never disturbs the hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from dsmt import channels, codec
from dsmt.errors import ChannelError, CodecError, DsmtError
from dsmt.event import Event

MAGIC = b"DSMT-SNAPSHOT/1"
MAX_KEYS = 10_000
MAX_BYTES = 16 << 20
MAX_STORE_KEYS = 100_000
MAX_PREFIXES = 64
MAX_REQUEST_FRAMES = 3 + MAX_PREFIXES
MAX_TOKEN = 64


class SnapshotError(DsmtError):
    """The hub refused a snapshot request or answered something unreadable."""


@dataclass(frozen=True, slots=True)
class Request:
    token: str
    sync_channel: str | None
    prefixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A decoded reply: the retained events (oldest first) as of ``hub_seq``."""

    token: str
    hub_seq: int
    truncated: bool
    events: tuple[Event, ...]
    undecodable: int


class RetainedStore:
    """The newest retained event per key, in hub-sequence order. Keeper thread only.

    An entry is *checked* (decoded by the keeper) or *unchecked*: the keeper
    stores the retained events of the stream as raw frames, without decoding
    them (see :mod:`dsmt._keeper`), and :meth:`check` decodes each unchecked
    entry once before the store is read and at least once per report
    interval. A key rewritten many times between two checks is decoded once.
    An entry that does not decode falls back to the key's newest *checked*
    value (kept aside while unchecked ones replace it), so a bad body costs
    at most the valid updates that arrived between two checks, never the key.
    """

    def __init__(self, max_keys: int = MAX_STORE_KEYS) -> None:
        # A plain dict keeps insertion order, and every put re-inserts its key
        # at the end, so iteration order is hub_seq order (but for a value check puts back).
        self._entries: dict[str, tuple[int, bytes, bytes]] = {}
        # keys whose entry is not decoded yet -> the key's newest checked entry (or None)
        self._unchecked: dict[str, tuple[int, bytes, bytes] | None] = {}
        self._max_keys = max_keys
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def unchecked(self) -> int:
        return len(self._unchecked)

    def put(self, key: str, clears: bool, hub_seq: int, frames: Sequence[bytes]) -> None:
        """Keep decoded ``frames`` (forwarded at ``hub_seq``) as ``key``'s value, or clear it."""
        self._unchecked.pop(key, None)
        entries = self._entries
        entries.pop(key, None)
        if not clears:
            entries[key] = (hub_seq, frames[0], frames[1])
            self._bound(entries)

    def put_unchecked(self, key: str, hub_seq: int, channel: bytes, body: bytes) -> None:
        """Keep ``key``'s newest value without decoding it; :meth:`check` does that later."""
        entries = self._entries
        previous = entries.pop(key, None)
        entries[key] = (hub_seq, channel, body)
        unchecked = self._unchecked
        if key not in unchecked:
            unchecked[key] = previous
        if len(entries) > self._max_keys:
            self._bound(entries)

    def _bound(self, entries: dict) -> None:
        if len(entries) > self._max_keys:
            oldest = next(iter(entries))
            del entries[oldest]
            self._unchecked.pop(oldest, None)
            self.evicted += 1

    def check(self) -> list[CodecError]:
        """Decode every unchecked entry; put back the last checked value of those that
        do not decode (or drop the key if it had none) and return why."""
        bad = []
        entries = self._entries
        for key, checked in self._unchecked.items():
            _, channel, body = entries[key]
            try:
                event = codec.decode((channel, body))
                if not event.retain or event.payload is None:
                    raise CodecError("a retained-looking body that is not a retained value")
            except CodecError as exc:
                del entries[key]
                if checked is not None:
                    entries[key] = checked  # at the end: iteration is no longer hub_seq order
                bad.append(exc)
        self._unchecked.clear()
        return bad

    def select(self, prefixes: Sequence[str], max_keys: int = MAX_KEYS,
               max_bytes: int = MAX_BYTES) -> tuple[list[tuple[bytes, bytes]], bool]:
        """Frames of every retained event under ``prefixes``, oldest first; and "truncated".

        Call :meth:`check` first: unchecked entries are returned as they are.
        """
        picked: list[tuple[bytes, bytes]] = []
        size = 0
        for key, (_, channel, body) in self._entries.items():
            if not any(key.startswith(prefix) for prefix in prefixes):
                continue
            size += len(channel) + len(body)
            if len(picked) >= max_keys or size > max_bytes:
                return picked, True
            picked.append((channel, body))
        return picked, False


def encode_request(token: str, sync_channel: str | None, prefixes: Iterable[str]) -> list[bytes]:
    """The frames of a snapshot request (client side)."""
    sync = b"" if sync_channel is None else sync_channel.encode("utf-8")
    return [MAGIC, token.encode("ascii"), sync, *(p.encode("utf-8") for p in prefixes)]


def parse_request(frames: Sequence[bytes]) -> Request:
    """The request in ``frames`` (after the ROUTER identity); raises CodecError."""
    if not 4 <= len(frames) <= MAX_REQUEST_FRAMES:
        raise CodecError(f"snapshot request of {len(frames)} frames")
    if frames[0] != MAGIC:
        raise CodecError("not a snapshot request", frames[0])
    token = _token(frames[1])
    sync = None
    if frames[2]:
        sync = codec.decode_channel(frames[2])
    prefixes = []
    for raw in frames[3:]:
        try:
            prefixes.append(channels.validate_subscription(raw.decode("utf-8")))
        except (UnicodeDecodeError, ChannelError) as exc:
            raise CodecError(f"bad prefix ({exc})", raw) from None
    return Request(token, sync, tuple(prefixes))


def _token(raw: bytes) -> str:
    if not 0 < len(raw) <= MAX_TOKEN or not raw.isascii() or not raw.isalnum():
        raise CodecError(f"token must be 1..{MAX_TOKEN} ASCII letters or digits", raw)
    return raw.decode("ascii")


def reply_ok(request: Request, hub_seq: int, picked: list[tuple[bytes, bytes]],
             truncated: bool) -> list[bytes]:
    frames = [MAGIC, b"OK", request.token.encode("ascii"), b"%d" % hub_seq,
              b"1" if truncated else b"0"]
    for channel, body in picked:
        frames.append(channel)
        frames.append(body)
    return frames


def reply_error(token_frame: bytes, why: str) -> list[bytes]:
    """An ERR reply; echoes the token only if it is a well-formed one."""
    try:
        token = _token(token_frame).encode("ascii")
    except CodecError:
        token = b""
    return [MAGIC, b"ERR", token, why.encode("utf-8", "replace")[:512]]


def parse_reply(frames: Sequence[bytes], token: str) -> Snapshot:
    """Decode a reply to the request with ``token``; raises SnapshotError.

    Events that do not decode are counted in ``undecodable`` and left out
    (the hub stores only events it decoded, so this means a bug or a foreign
    peer, not a normal condition).
    """
    if len(frames) < 3 or frames[0] != MAGIC:
        raise SnapshotError("the hub's snapshot reply is not a DSMT snapshot")
    if frames[1] == b"ERR":
        why = frames[3].decode("utf-8", "replace") if len(frames) > 3 else "?"
        raise SnapshotError(f"the hub refused the snapshot request: {why}")
    if frames[1] != b"OK" or len(frames) < 5 or len(frames) % 2 == 0:
        raise SnapshotError("malformed snapshot reply")
    if frames[2] != token.encode("ascii"):
        raise SnapshotError("snapshot reply for another request")
    try:
        hub_seq = int(frames[3])
    except ValueError:
        raise SnapshotError("snapshot reply without a hub sequence") from None
    events = []
    bad = 0
    for i in range(5, len(frames), 2):
        try:
            events.append(codec.decode((frames[i], frames[i + 1])))
        except CodecError:
            bad += 1
    return Snapshot(token, hub_seq, frames[4] == b"1", tuple(events), bad)
