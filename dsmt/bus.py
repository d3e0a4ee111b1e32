"""The bus client: how actors and tools publish to and subscribe from the hub.

``Bus(context, endpoints)`` is a factory, cheap and thread-safe; the sockets
live in what it makes:

- :meth:`Bus.publisher` -> :class:`Publisher`, the :class:`dsmt.context.Publisher`
  of one sender: stamps events with a :class:`dsmt.event.Sequencer` and sends
  them to the hub. ``Bus.publisher`` is itself a
  :class:`dsmt.context.PublisherFactory`.
- :meth:`Bus.subscriber` -> :class:`Subscriber`: receives the events under a
  set of channel prefixes, optionally starting with the retained state
  (the clone pattern of :mod:`dsmt.snapshot`), and reports gaps
  (:mod:`dsmt.gaps`).

Threading: a Publisher or Subscriber is created, used and closed by one
thread (it owns a ZeroMQ socket); another thread calling it gets
RuntimeError. Sockets are made with ``linger=0``, so a context can always be
terminated at once. One deliberate exception: :meth:`Publisher.close` closes
with a linger of :data:`FLUSH_LINGER` seconds, because with 0 ZeroMQ throws
away events still queued in the socket -- measured: the last few hundred
events of a burst, i.e. typically an actor's final status. ``close()`` itself
never blocks (ZeroMQ flushes in its I/O thread); only terminating the
context waits, at most that long.

No sleeps and no slow-joiner losses: constructing a Publisher returns once
the hub's subscription has reached its socket, and constructing a Subscriber
returns once the hub has confirmed its subscriptions (the *welcome* on its
sync channel); an event published after both constructors return is
delivered. Both raise TimeoutError if the hub does not answer in time.

High-water marks and what is counted: see :mod:`dsmt.hub`.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from threading import get_ident
from collections import deque
from typing import Any, Iterable, Iterator

import zmq

from dsmt import channels, codec, snapshot
from dsmt.clock import poll_ms
from dsmt.errors import CodecError
from dsmt.event import Address, Event, Sequencer
from dsmt.gaps import GapDetector, Report
from dsmt.hub import HWM, SYNC_PREFIX, Endpoints, sync_channel
from dsmt.latch import Latch

log = logging.getLogger(__name__)

SEND_TIMEOUT = 5.0
FLUSH_LINGER = 1.0
CONNECT_TIMEOUT = 5.0
_SYNC_PREFIX_B = SYNC_PREFIX.encode()
_CHANNEL_CACHE = 4096
_DRAIN_EVERY = 255  # events between two drains of the subscription messages (2**n - 1)
_DRAIN_INTERVAL = 1.0  # seconds: a slow publisher drains at its first publish after this
_encode, _decode_pair = codec.encode, codec.decode_pair
SNDMORE, NOBLOCK = zmq.SNDMORE, zmq.NOBLOCK


class Bus:
    """Makes publishers and subscribers connected to one hub's endpoints."""

    def __init__(self, context: zmq.Context, endpoints: Endpoints, *, hwm: int = HWM,
                 send_timeout: float = SEND_TIMEOUT,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.context = context
        self.endpoints = endpoints
        self.hwm = hwm
        self.send_timeout = send_timeout
        self.connect_timeout = connect_timeout

    def publisher(self, sender: Address, *, send_timeout: float | None = None) -> Publisher:
        """A publisher for ``sender``, owned by the calling thread; ``send_timeout``:
        the bus's by default, 0 never waits on a full hub queue (an event loop)."""
        wait = self.send_timeout if send_timeout is None else send_timeout
        return Publisher(self.context, self.endpoints.publish, sender, hwm=self.hwm,
                         send_timeout=wait, connect_timeout=self.connect_timeout)

    def subscriber(self, prefixes: Iterable[str] | str, snapshot: bool = False, *,
                   stop: Latch | None = None) -> Subscriber:
        """A subscriber to ``prefixes`` (``"/"`` = all), owned by the calling thread.

        With ``snapshot=True`` it first yields the retained events under the
        prefixes, then every event the hub forwarded after that snapshot; once
        ``stop`` is set, ``recv`` no longer waits. Raises ChannelError for a bad
        prefix, TimeoutError if the hub is mute.
        """
        return Subscriber(self.context, self.endpoints, prefixes, snapshot=snapshot,
                          hwm=self.hwm, timeout=self.connect_timeout, stop=stop)


class _Owned:
    _owner: int
    _sock: zmq.Socket | None

    def _check(self) -> zmq.Socket:
        if threading.get_ident() != self._owner:
            raise RuntimeError(f"{type(self).__name__} used outside the thread that created it")
        if self._sock is None:
            raise RuntimeError(f"{type(self).__name__} used after close()")
        return self._sock

    _close_linger = 0.0

    def close(self) -> None:
        """Close the socket; idempotent; only in the owning thread."""
        if self._sock is not None:
            self._check()
            self._sock.close(linger=int(self._close_linger * 1000))
            self._sock = None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class Publisher(_Owned):
    """Publishes the events of one sender to the hub (see the module docstring).

    The socket is an XPUB (a PUB that can also read the hub's subscription,
    which is the connect handshake). The hub's proxy keeps passing every
    subscriber's subscriptions up to it. They are read and discarded every
    ``_DRAIN_EVERY + 1`` events and at the first publish after
    ``_DRAIN_INTERVAL`` seconds; meanwhile ZeroMQ queues at most the hub's
    :data:`dsmt.hub.SUBSCRIPTION_HWM` plus this socket's receive HWM (1,000).
    ``sent`` counts events handed to ZeroMQ; ``dropped`` counts events given
    up after ``send_timeout`` seconds of a full queue (each is logged;
    subscribers see the seq gap). ``close()`` lets queued events reach the
    hub (see :data:`FLUSH_LINGER`).
    """

    _close_linger = FLUSH_LINGER

    def __init__(self, context: zmq.Context, endpoint: str, sender: Address, *,
                 hwm: int = HWM, send_timeout: float = SEND_TIMEOUT,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self._owner = threading.get_ident()
        self.sender = sender
        self.sequencer = Sequencer(sender)
        self._stamp = codec.stamper(self.sequencer)
        self._next_drain = 0.0
        self.sent = 0
        self.dropped = 0
        self._valid: dict[str, bytes] = {}
        sock = context.socket(zmq.XPUB)
        self._sock = sock
        try:
            sock.linger = 0
            sock.sndhwm = hwm
            sock.setsockopt(zmq.XPUB_NODROP, 1)
            sock.sndtimeo = int(send_timeout * 1000)
            sock.connect(endpoint)
            if not sock.poll(poll_ms(connect_timeout)):
                raise TimeoutError(f"hub at {endpoint} did not answer within {connect_timeout}s")
            sock.recv()  # a subscription from the hub: it sees us
        except BaseException:
            self.close()
            raise

    def publish(self, channel: str, type: str, payload: Any, *, retain: bool = False,
                to: Address | None = None) -> Event:
        """Stamp and send one event; returns it. Raises ChannelError, CodecError."""
        if self._owner != get_ident() or self._sock is None:
            self._check()
        frame = self._valid.get(channel)
        if frame is None:
            frame = self._channel_frame(channel)
        event, body = self._stamp(channel, type, payload, retain, to)
        sock = self._sock
        try:  # _send_frames, inlined: this is every publisher's hot path
            sock.send(frame, SNDMORE)
        except zmq.Again:
            self._dropped(event)
            return event
        sock.send(body)
        self.sent += 1
        # Drain every _DRAIN_EVERY + 1 events, or at the first one after _DRAIN_INTERVAL
        # (the event's clock reading is free).
        if not self.sent & _DRAIN_EVERY or event.ts >= self._next_drain:
            self._drain(sock)
        return event

    def send(self, event: Event) -> None:
        """Forward an event made elsewhere, unchanged (its sender and seq are kept)."""
        self._check()
        if event.channel not in self._valid:
            self._channel_frame(event.channel)
        self._send_frames(event, *_encode(event))

    def _channel_frame(self, channel: str) -> bytes:
        """Validate ``channel`` (raises ChannelError) and remember its frame."""
        channels.validate(channel)
        valid = self._valid
        if len(valid) >= _CHANNEL_CACHE:
            valid.clear()
        frame = valid[channel] = channel.encode("utf-8")
        return frame

    def _send_frames(self, event: Event, channel: bytes, body: bytes) -> None:
        sock = self._sock
        try:
            sock.send(channel, SNDMORE)
        except zmq.Again:
            self._dropped(event)
            return
        sock.send(body)
        self.sent += 1
        if not self.sent & _DRAIN_EVERY:
            self._drain(sock)

    def _dropped(self, event: Event) -> None:
        self.dropped += 1
        log.warning("publisher %s: hub queue full, dropped event %s on %s",
                    self.sender, event.id, event.channel)

    def _drain(self, sock: zmq.Socket) -> None:
        """Discard the subscription messages the hub passes up (see dsmt.hub)."""
        self._next_drain = time.time() + _DRAIN_INTERVAL
        try:
            while True:
                sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            pass


class Subscriber(_Owned):
    """Receives the events under some prefixes from the hub, in hub order.

    ``recv(timeout)`` returns the next event or None after ``timeout``
    seconds (None: wait forever; 0: do not wait), or at once when no event is
    waiting and the ``stop`` latch (:mod:`dsmt.latch`) is set; iterating
    yields events until then. What does not decode is skipped and counted in
    ``undecodable`` (each frame pair that fails, each lone or stray frame);
    per-sender losses are in ``gaps`` (reports, newest last) and
    ``gap_detector``. Events on other subscribers' sync channels (seen by a
    ``/`` subscriber) are skipped.
    """

    def __init__(self, context: zmq.Context, endpoints: Endpoints,
                 prefixes: Iterable[str] | str, *, snapshot: bool = False, hwm: int = HWM,
                 timeout: float = CONNECT_TIMEOUT, stop: Latch | None = None) -> None:
        self._owner = threading.get_ident()
        if isinstance(prefixes, str):
            prefixes = [prefixes]
        self.prefixes = tuple(channels.validate_subscription(p) for p in prefixes)
        self.undecodable = 0
        self.gap_detector = GapDetector()
        self.snapshot: snapshot.Snapshot | None = None
        self._token = secrets.token_hex(8)
        self._sync = sync_channel(self._token)
        self._pending: deque[Event] = deque()
        sock = context.socket(zmq.SUB)
        self._sock = sock
        self._poller = zmq.Poller()  # one for all waits: Socket.poll() builds one per call
        self._poller.register(sock, zmq.POLLIN)
        self._stop = stop
        if stop is not None:
            self._poller.register(stop.fileno(), zmq.POLLIN)
        try:
            sock.linger = 0
            sock.rcvhwm = hwm
            sock.connect(endpoints.subscribe)
            for prefix in self.prefixes:
                sock.subscribe(prefix.encode("utf-8"))
            sock.subscribe(self._sync.encode())
            deadline = time.monotonic() + timeout
            self._await_sync("welcome", deadline)
            if snapshot:
                self._join(context, endpoints.snapshot, deadline)
        except BaseException:
            self.close()
            raise

    @property
    def gaps(self) -> list[Report]:
        return list(self.gap_detector.reports)

    def recv(self, timeout: float | None = None) -> Event | None:
        """The next event, or None once ``timeout`` seconds passed without one."""
        if self._owner != get_ident() or self._sock is None:
            self._check()
        if self._pending:
            return self._pending.popleft()
        recv = self._sock.recv
        observe = self.gap_detector.observe
        deadline = None
        while True:
            # Hand-inlined framing + decode: this is every reader's hot path.
            # Framing by content (see dsmt.codec): bytes, no RCVMORE, no Frame objects.
            try:
                head = recv(NOBLOCK)
            except zmq.Again:
                if self._stop is not None and self._stop.is_set():
                    return None
                if deadline is None:
                    if timeout is None:
                        self._poller.poll()
                        continue
                    deadline = time.monotonic() + timeout
                wait = deadline - time.monotonic()
                if wait <= 0 or not self._poller.poll(poll_ms(wait)):
                    return None
                continue
            try:
                body = recv(NOBLOCK)
            except zmq.Again:  # ZeroMQ delivers a message whole: head came alone
                self.undecodable += 1
                continue
            while body[:1] == b"/":  # head came alone; body is the next message's head
                self.undecodable += 1
                head = body
                try:
                    body = recv(NOBLOCK)
                except zmq.Again:
                    body = None
                    break
            if body is None:
                self.undecodable += 1
                continue
            try:
                event = _decode_pair(head, body)
            except CodecError:
                self.undecodable += 1
                continue
            if head.startswith(_SYNC_PREFIX_B):
                continue  # a late welcome/marker of ours, or another subscriber's
            observe(event)
            return event

    def __iter__(self) -> Iterator[Event]:
        while True:
            event = self.recv()
            if event is not None:
                yield event
            elif self._stop is not None and self._stop.is_set():
                return

    def _next(self, sock: zmq.Socket, deadline: float | None) -> Event | None:
        """The next decodable event from the socket (sync ones included), or None."""
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return None
                sock.poll(poll_ms(wait))
                continue
            try:
                event = codec.decode(frames)
            except CodecError:
                self.undecodable += 1
                continue
            if not frames[0].startswith(_SYNC_PREFIX_B):
                self.gap_detector.observe(event)
            return event

    def _await_sync(self, kind: str, deadline: float) -> Event:
        """Read until our own sync event of ``kind``; keep data events read meanwhile."""
        sock = self._check()
        while True:
            event = self._next(sock, deadline)
            if event is None:
                raise TimeoutError(f"no {kind} from the hub on {self._sync}")
            if event.channel != self._sync:
                if not event.channel.startswith(SYNC_PREFIX):
                    self._pending.append(event)
                continue
            payload = event.payload
            if isinstance(payload, dict) and payload.get("kind") == kind and (
                    kind != "snapshot" or payload.get("token") == self._token):
                return event

    def _join(self, context: zmq.Context, endpoint: str, deadline: float) -> None:
        """The late-joiner protocol of :mod:`dsmt.snapshot`, steps 2-4."""
        dealer = context.socket(zmq.DEALER)
        try:
            dealer.linger = 0
            dealer.connect(endpoint)
            dealer.send_multipart(snapshot.encode_request(self._token, self._sync,
                                                          self.prefixes))
            if not dealer.poll(poll_ms(deadline - time.monotonic())):
                raise TimeoutError(f"no snapshot reply from the hub at {endpoint}")
            snap = snapshot.parse_reply(dealer.recv_multipart(), self._token)
        finally:
            dealer.close(linger=0)
        self._await_sync("snapshot", deadline)
        # Everything read before the marker was forwarded before the snapshot.
        self._pending.clear()
        self._pending.extend(snap.events)
        self.undecodable += snap.undecodable
        self.snapshot = snap
