"""The hub's keeper: retained state, counters, welcomes and snapshots, beside the forwarder.

The keeper is one thread of the hub process (see :mod:`dsmt.hub` for why
forwarding itself is left to ZeroMQ's C proxy). It owns four sockets:

    stream    SUB, connected to the hub's XPUB, subscribed to everything: it
              sees every message the proxy forwards, in the order every
              subscriber sees them
    publish   XPUB, connected to the hub's XSUB like any publisher: the
              hub's own events (welcomes, snapshot markers, stats) go out
              through the proxy; and since the proxy passes the
              subscribers' subscriptions up to every publisher, this is
              where the keeper sees them
    snapshot  ROUTER, bound: snapshot requests (dsmt.snapshot), answered by the
              mixin dsmt._keeper_snapshots.SnapshotService
    control   PAIR, bound: the stop signal from Hub.stop

From the stream it keeps retained events in a
:class:`dsmt.snapshot.RetainedStore` and counts what does not decode, by
reason. Under traffic it reads the stream in bursts every
:data:`STREAM_PERIOD` seconds (one wake-up per burst, not per event): the
first event after a quiet spell is read at once, the ones after it within
the period wait for the next burst. Nothing needs the store sooner: a
snapshot request reads the stream at once (its marker must come back), and
only ``stats()`` lags, by at most the period. What a longer period costs is
queue depth -- at most period x rate messages (the stream's queue holds
:data:`STREAM_HWM`) -- and what it saves is wake-ups: a node of an idle
10-sliver slice sees a trickle of ~17 events/s (heartbeats, monitors); at
0.02 s the keeper woke ~32 times a second for them (4.4 ms/s of CPU), at
0.25 s 6 times (1.1 ms/s), measured over every node of ``dsmt up --slivers
10`` in one session.

Why the keeper does not decode every event
------------------------------------------
The keeper reads every message the proxy forwards, in Python, on the same
cores as the publishers and subscribers; what it spends per event comes
straight off the hub's throughput. Decoding and gap-checking each event
made the hub process cost 12.5k instructions per event (callgrind, the hub
alone under valgrind; the bare C proxy costs 4.2k); reading raw frames
instead, 8.4k. So the keeper frames the stream by content (see
:mod:`dsmt.codec`) and looks at each body's first bytes: a retained event
(:data:`dsmt.codec.RETAINED`) on a channel it has seen before is stored as
raw frames, unchecked; everything else -- events that are not retained,
retained events whose payload may be nil (they may clear a key), the hub's
own channel, anything odd -- is decoded and validated at once, as before.
Unchecked entries are decoded by :meth:`dsmt.snapshot.RetainedStore.check`
before every snapshot answer and at least every :data:`REPORT_INTERVAL`
seconds: a key rewritten many times in between is decoded once, and a
retained-looking body that does not decode is counted (``bad_body``, moved
from ``forwarded`` to ``dropped``) and reported, just later, and the key
falls back to its last checked value. The store therefore never serves a
body that failed to decode, and never loses a key to one. The price, stated
where it bites: valid updates of that key which arrived between the last
check and the bad body are lost from the store (live subscribers have them);
and the keeper no longer runs a gap detector on the stream, since it does
not read the seq of most events.

The keeper must not miss an event (its store would keep an older value), so
its stream queue holds :data:`STREAM_HWM` messages, ten times a subscriber's:
a burst the C proxy forwards faster than the keeper reads (~1 us per
retained event) is queued, not lost. Beyond that ZeroMQ drops silently: the
keeper cannot see that, which is why the queue is that deep. Why not the
proxy's *capture* socket, which would block the proxy instead of dropping:
it carries both directions, and a subscription message cannot be told from
a publisher's one-frame garbage. Errors in a handler are logged with the
traceback and counted as ``internal_errors``; the loop goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import zmq

from dsmt import channels, codec, snapshot
from dsmt._keeper_snapshots import BATCH, SnapshotService, waiting
from dsmt.clock import poll_ms
from dsmt.errors import CodecError
from dsmt.event import Address, Event, Sequencer

log = logging.getLogger("dsmt.hub")

REPORT_INTERVAL = 1.0
STREAM_HWM = 1_000_000  # messages queued for the keeper (~200 MB at most)
STREAM_BATCH = 8 * BATCH  # the stream is read in bursts (see STREAM_PERIOD)
STREAM_PERIOD = 0.25  # seconds between two bursts while events flow (not when a join waits)
HUB_SERVICE = "dsmt-hub"
HUB_TYPE = "http://dsmt.org/xs/payload/hub"
HUB_CHANNEL = channels.join("org", "dsmt", "hub")
STATS_CHANNEL = channels.join("org", "dsmt", "hub", "stats")
SYNC_PREFIX = channels.join("org", "dsmt", "hub", "sync")
_SYNC_PREFIX_B = SYNC_PREFIX.encode()
_KEYS_CACHE = 4096
_HUB_PREFIX_B = HUB_CHANNEL.encode()

COUNTERS = (
    "received", "forwarded", "dropped", "bad_frame_count", "bad_channel", "bad_body",
    "bad_subscriber_messages", "subscribe_messages", "unsubscribe_messages", "welcomes",
    "snapshots", "bad_snapshot_requests", "snapshot_replies_dropped", "snapshot_markers_lost",
    "internal_errors",
)
_PROBLEMS = ("dropped", "bad_subscriber_messages", "bad_snapshot_requests", "internal_errors",
             "snapshot_replies_dropped", "snapshot_markers_lost")


def sync_channel(token: str) -> str:
    """The private sync channel of one subscriber (``token``: letters and digits)."""
    return channels.join("org", "dsmt", "hub", "sync", token)


class Keeper(SnapshotService):
    """The keeper thread's state and loop; built by the Hub, run by :meth:`run`."""

    def __init__(self, hub_name: str, *, stats_interval: float | None,
                 max_snapshot: tuple[int, int], max_retained_keys: int) -> None:
        self.name = hub_name
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.store = snapshot.RetainedStore(max_retained_keys)
        self.stream_seq = 0  # valid events seen on the stream: the hub_seq of replies
        self.last_problem = ""
        self._sequencer = Sequencer(Address(HUB_SERVICE, hub_name))
        self._stats_interval = stats_interval
        self._max_snapshot = max_snapshot
        # token -> (ROUTER identity, request, deadline): waiting for the marker
        self._pending: dict[str, tuple[bytes, snapshot.Request, float]] = {}
        # channel frame -> key, for the retained fast path (not the hub's own channels)
        self._keys: dict[bytes, str] = {}
        self._pub: zmq.Socket | None = None
        self._router: zmq.Socket | None = None

    def stats(self) -> dict[str, Any]:
        """Counters (see :mod:`dsmt.hub`) plus hub_seq and retained key count; any thread."""
        result: dict[str, Any] = dict(self.counters)
        result.update(hub_seq=self.stream_seq, retained_keys=len(self.store),
                      retained_evicted=self.store.evicted, last_problem=self.last_problem)
        return result

    # -- the keeper thread ---------------------------------------------------------

    def run(self, sockets: tuple[zmq.Socket, zmq.Socket, zmq.Socket, zmq.Socket],
            started: threading.Event, timeout: float) -> None:
        """Serve until the control socket speaks; ``started`` is set once the stream is live.

        Live means the stream's subscribe-to-everything came back up through
        the proxy to the publish socket: the XPUB has registered it (so the
        keeper sees every event from now on), and the XSUB holds it (so every
        publisher that connects from now on sends everything).
        """
        stream, pub, router, control = sockets
        self._pub, self._router = pub, router
        deadline = time.monotonic() + timeout
        while True:  # until our own subscribe-to-everything comes back up
            if not pub.poll(poll_ms(deadline - time.monotonic())):
                raise TimeoutError(f"hub {self.name}: the keeper's stream did not come up")
            message = pub.recv()
            self._subscription(message, pub.getsockopt(zmq.RCVMORE))
            if message == b"\x01":
                break
        started.set()
        poller = zmq.Poller()
        for sock in sockets:
            poller.register(sock, zmq.POLLIN)
        watching = True  # the stream is in the poller (else read again at stream_due)
        stream_due = 0.0
        now = time.monotonic()
        next_stats = None if self._stats_interval is None else now + self._stats_interval
        reported = dict(self.counters)
        next_report = now
        pending = False  # problems seen but not yet reported
        next_check = now + REPORT_INTERVAL  # unchecked store entries are decoded by then
        while True:
            # A snapshot waiting for its marker does not wait for the next burst.
            due = None if watching else (0.0 if self._pending else stream_due)
            wake = [t for t in (next_stats, next_report if pending else None, due,
                                next_check if self.store.unchecked else None) if t is not None]
            if self._pending:
                wake.append(min(deadline for _, _, deadline in self._pending.values()))
            ready = dict(poller.poll(poll_ms(min(wake) - time.monotonic() if wake else None)))
            if control in ready:
                return
            now = time.monotonic()
            if stream in ready or (not watching and (now >= stream_due or self._pending)):
                # Under traffic, read the stream every STREAM_PERIOD, not per
                # message: one wake-up then serves thousands of events, and a
                # queue that stays non-empty costs the proxy no wake-up either
                # (measured, keeper thread: ~1.9 us per event at a 2 ms period,
                # ~1.05 us at 20 ms, most of the difference system time).
                read = self._guard(self._absorb, stream)
                if read:
                    if watching:
                        poller.unregister(stream)
                        watching = False
                    # A full burst means a backlog: go on right after the other sockets.
                    stream_due = now if read == STREAM_BATCH else now + STREAM_PERIOD
                elif not watching:
                    poller.register(stream, zmq.POLLIN)
                    watching = True
            if pub in ready:
                self._guard(self._subscriptions, pub)
            if router in ready:
                self._guard(self._requests, router)
            if self._pending:
                self._expire(router, now)
            if now >= next_check:
                if self.store.unchecked:
                    self._guard(self._check_store)
                next_check = now + REPORT_INTERVAL
            problems = {key: self.counters[key] - reported[key] for key in _PROBLEMS
                        if self.counters[key] != reported[key]}
            pending = bool(problems)
            if pending and now >= next_report:
                log.warning("hub %s: %s (last: %s)", self.name, problems, self.last_problem)
                self._publish_stats()
                reported = dict(self.counters)
                next_report = now + REPORT_INTERVAL
                pending = False
            elif next_stats is not None and now >= next_stats:
                self._publish_stats()
                next_stats = now + self._stats_interval

    def _guard(self, handler: Callable[..., int | None], *args: Any) -> int:
        """Run one handler at the hub boundary: log and count what it raises."""
        try:
            return handler(*args) or 0
        except zmq.ContextTerminated:
            raise
        except Exception:  # the hub boundary: log, count, keep serving
            log.exception("hub %s: unexpected error", self.name)
            self.counters["internal_errors"] += 1
            self.last_problem = "internal error (see log)"
            return 0

    def _absorb(self, stream: zmq.Socket) -> int:
        """Every message the proxy forwarded: count, keep retained, spot markers.

        Returns how many frames or frame pairs it read (at most STREAM_BATCH).
        Framing is by content (see :mod:`dsmt.codec`): no RCVMORE, no Frame
        objects, two ``recv`` calls per event.
        """
        keys, put = self._keys, self.store.put_unchecked
        recv, noblock, again = stream.recv, zmq.NOBLOCK, zmq.Again
        retained = codec.RETAINED
        counters = self.counters
        # Fast-path events are counted (received and forwarded alike) once per burst;
        # every other message is counted as received before it is handled, so that
        # stats() read from another thread never sees it forwarded, dropped or taken
        # back (the hub's own events) before it was received.
        fast = 0
        head = None
        try:
            for read in range(1, STREAM_BATCH + 1):
                if head is None:
                    try:
                        head = recv(noblock)
                    except again:
                        return read - 1
                try:
                    body = recv(noblock)
                except again:  # ZeroMQ delivers a message whole: this one had one frame
                    counters["received"] += 1
                    self._bad("bad_frame_count", "a 1-frame message")
                    return read
                if body[:1] == b"/":  # head had no body after it: a 1-frame message
                    counters["received"] += 1
                    self._bad("bad_frame_count", "a 1-frame message")
                    head = body
                    continue
                key = keys.get(head)
                if key is not None and body.startswith(retained) and body[-1] != 0xc0:
                    # The hot path: a retained event on a known channel, payload not nil.
                    fast += 1
                    self.stream_seq += 1
                    put(key, self.stream_seq, head, body)
                else:
                    counters["received"] += 1
                    self._event(head, body)
                head = None
            return STREAM_BATCH
        finally:
            counters["received"] += fast
            counters["forwarded"] += fast

    def _event(self, channel: bytes, body: bytes) -> None:
        """Decode and handle one event the fast path does not take."""
        try:
            event = codec.decode((channel, body))
        except CodecError as exc:
            self._bad("bad_channel" if exc.why.startswith("bad channel") else "bad_body",
                      str(exc))
            return
        store = self.store
        if channel.startswith(_HUB_PREFIX_B):
            if event.sender == self._sequencer.sender:
                self.counters["received"] -= 1  # the hub's own events are not input
                if event.retain:
                    store.put(event.channel, event.payload is None, self.stream_seq,
                              (channel, body))
                elif self._pending:
                    self._marker(event)
                return
        else:
            if len(self._keys) >= _KEYS_CACHE:
                self._keys.clear()
            self._keys[channel] = event.channel
        self.stream_seq += 1
        self.counters["forwarded"] += 1
        if event.retain:
            store.put(event.channel, event.payload is None, self.stream_seq, (channel, body))

    def _check_store(self) -> None:
        """Decode the store's unchecked entries; count and report those that fail."""
        for exc in self.store.check():
            self.counters["forwarded"] -= 1
            self._bad("bad_body", f"retained: {exc}")

    def _bad(self, counter: str, why: str) -> None:
        self.counters[counter] += 1
        self.counters["dropped"] += 1
        self.last_problem = why[:200]

    def _emit(self, event: Event) -> None:
        """Publish the hub's own event through the proxy, like any publisher."""
        assert self._pub is not None
        self._pub.send_multipart(codec.encode(event))

    def _say(self, channel: str, payload: dict[str, Any], retain: bool = False) -> None:
        """Publish one of the hub's own events (type HUB_TYPE) on ``channel``."""
        self._emit(self._sequencer.make(channel, HUB_TYPE, payload, retain=retain))

    def _subscriptions(self, pub: zmq.Socket) -> None:
        """Subscriptions the proxy passed up: answer sync subscriptions with a welcome."""
        for message in waiting(pub):
            self._subscription(message, pub.getsockopt(zmq.RCVMORE))

    def _subscription(self, message: bytes, more: int) -> None:
        counters = self.counters
        if more:
            while self._pub.getsockopt(zmq.RCVMORE):
                self._pub.recv()
        kind, topic = message[:1], message[1:]
        if more or kind not in (b"\x00", b"\x01"):
            counters["bad_subscriber_messages"] += 1
            return
        if kind == b"\x00":
            counters["unsubscribe_messages"] += 1
            return
        counters["subscribe_messages"] += 1
        if topic.startswith(_SYNC_PREFIX_B):
            try:
                channel = codec.decode_channel(topic)
            except CodecError:
                counters["bad_subscriber_messages"] += 1
                return
            counters["welcomes"] += 1
            self._say(channel, {"kind": "welcome", "hub": self.name,
                                "hub_seq": self.stream_seq})

    def _publish_stats(self) -> None:
        payload = self.stats()
        payload["hub"] = self.name
        self._say(STATS_CHANNEL, payload, retain=True)
