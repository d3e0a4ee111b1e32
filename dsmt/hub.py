"""The node's local event hub: every actor publishes to it, every reader subscribes.

A :class:`Hub` is a ZeroMQ XSUB/XPUB forwarder with a retained-state store,
run by one thread of the node process. It binds, for other processes, three
``ipc://`` sockets in a run directory it creates with mode 0700 (the socket
files are chmod-ed 0700 too), and the same three as ``inproc://`` endpoints
for actors of the same process (same ZeroMQ context)::

    publish    XSUB   publishers connect here (dsmt.bus.Publisher)
    subscribe  XPUB   subscribers connect here (dsmt.bus.Subscriber)
    snapshot   ROUTER snapshot requests (dsmt.snapshot)

Why a poll loop and not ``zmq.proxy_steerable``: the hub must drop frames it
cannot decode and keep retained events, so it looks at every message; the C
proxy cannot. ``python -m benchmarks hub`` measures the cost (the
``dsmt_over_plain_proxy`` figure is the same DSMT traffic through the C
proxy).

What the hub does with a message from a publisher
-------------------------------------------------
Exactly two frames that :func:`dsmt.codec.inspect` accepts (the same
validation as ``decode``, without building an Event): forwarded to the
subscribers unchanged, counted in ``hub_seq``, kept in the store if retained.
Anything else (one frame, three frames, garbage msgpack, a bad channel, a
body over :data:`dsmt.codec.MAX_BODY`): dropped and counted by reason in
:meth:`Hub.stats`; at most once per :data:`REPORT_INTERVAL` seconds the hub
publishes its counters, retained, on :data:`STATS_CHANNEL` and logs a warning.
A single frame larger than :data:`MAX_FRAME` makes ZeroMQ disconnect that
peer (memory protection); it reconnects by itself. Nothing a peer sends can
stop the hub; an unexpected exception in the loop is logged with its
traceback, counted as ``internal_errors``, and the loop goes on.

High-water marks and slow subscribers
-------------------------------------
Every hub socket and every bus socket has a high-water mark of :data:`HWM`
messages (100,000: a burst of that many events per connection is queued, not
dropped; at ~200 bytes an event that is ~20 MB per full queue). Policy when a
queue is full:

- publisher -> hub: the publisher blocks for up to its send timeout (the hub
  is the bottleneck, back-pressure is right), then drops the event and counts
  it in ``Publisher.dropped`` (never silent: its seq was used, so every
  subscriber sees the gap too);
- hub -> a slow subscriber: ZeroMQ drops that subscriber's events only; the
  other subscribers and the publishers are not slowed. The hub cannot see
  which subscriber lost what, so the subscriber counts it: its gap detector
  (:mod:`dsmt.gaps`) reports the missing seqs per sender.

Sync channels, welcome and snapshot markers
-------------------------------------------
A subscription to a channel under :data:`SYNC_PREFIX` (``/org/dsmt/hub/sync/<token>/``)
is answered with a *welcome* event on that channel (payload
``{"kind": "welcome", "hub_seq": n}``): when it arrives, every subscription
sent before it is live (the slow-joiner handshake; no sleeps). Snapshot
markers travel on the same channel (see :mod:`dsmt.snapshot`).

Threading: :meth:`Hub.start` and :meth:`Hub.stop` may be called from any
thread; all sockets are created, used and closed by the hub thread, except
the one-shot control socket :meth:`stop` creates in the calling thread.
:meth:`Hub.stats` may be called from any thread. The hub does not own the
ZeroMQ context; whoever made it terminates it after :meth:`stop`.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from dsmt import channels, codec, snapshot
from dsmt.errors import CodecError, ConfigError
from dsmt.event import Address, Event, Sequencer

log = logging.getLogger(__name__)

HWM = 100_000
MAX_FRAME = codec.MAX_BODY + 64 * 1024
REPORT_INTERVAL = 1.0
BATCH = 512  # messages handled per socket per loop turn, so no socket starves
HUB_SERVICE = "dsmt-hub"
HUB_TYPE = "http://dsmt.org/xs/payload/hub"
HUB_CHANNEL = channels.join("org", "dsmt", "hub")
STATS_CHANNEL = channels.join("org", "dsmt", "hub", "stats")
SYNC_PREFIX = channels.join("org", "dsmt", "hub", "sync")
_SYNC_PREFIX_B = SYNC_PREFIX.encode()
_IPC_PATH_MAX = 100  # sun_path is 108 bytes on Linux, minus "ipc://" slack


def sync_channel(token: str) -> str:
    """The private sync channel of one subscriber (``token``: letters and digits)."""
    return channels.join("org", "dsmt", "hub", "sync", token)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where a bus client connects: publishers, subscribers, snapshot requests."""

    publish: str
    subscribe: str
    snapshot: str


_COUNTERS = (
    "received", "forwarded", "dropped", "bad_frame_count", "bad_channel", "bad_body",
    "bad_subscriber_messages", "subscribe_messages", "unsubscribe_messages", "welcomes",
    "snapshots", "bad_snapshot_requests", "snapshot_replies_dropped", "internal_errors",
)


class Hub:
    """The node's hub; ``with Hub(ctx, run_dir) as hub:`` runs it for the block."""

    def __init__(self, context: zmq.Context, run_dir: str | os.PathLike[str], *,
                 name: str = "hub", hwm: int = HWM, stats_interval: float | None = 10.0,
                 max_snapshot_keys: int = snapshot.MAX_KEYS,
                 max_snapshot_bytes: int = snapshot.MAX_BYTES,
                 max_retained_keys: int = snapshot.MAX_STORE_KEYS) -> None:
        self.context = context
        self.run_dir = Path(run_dir)
        self.name = name
        self._hwm = hwm
        self._stats_interval = stats_interval
        self._max_snapshot = (max_snapshot_keys, max_snapshot_bytes)
        ipc = {part: f"ipc://{self.run_dir / (part + '.sock')}" for part in
               ("publish", "subscribe", "snapshot")}
        for endpoint in ipc.values():
            if len(endpoint) > _IPC_PATH_MAX:
                raise ConfigError(self.run_dir, "run_dir",
                                  f"too long for an ipc socket path ({endpoint})")
        self.endpoints = Endpoints(**ipc)
        unique = f"dsmt-hub.{name}.{uuid.uuid4().hex[:12]}"
        self.inproc_endpoints = Endpoints(*(f"inproc://{unique}.{part}" for part in
                                            ("publish", "subscribe", "snapshot")))
        self._control = f"inproc://{unique}.control"
        self._store = snapshot.RetainedStore(max_retained_keys)
        self._sequencer = Sequencer(Address(HUB_SERVICE, name))
        self._counters: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self._hub_seq = 0
        self._last_problem = ""
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # -- lifecycle (any thread) ------------------------------------------------

    def start(self, timeout: float = 5.0) -> Hub:
        """Create the run dir, bind every endpoint and start forwarding.

        Returns once the sockets are bound; raises what binding raised (e.g.
        ``zmq.ZMQError`` if another hub holds the run dir's sockets) or
        TimeoutError.
        """
        if self._thread is not None:
            raise RuntimeError("hub already started")
        _make_private_dir(self.run_dir)
        self._thread = threading.Thread(target=self._run, name=f"dsmt-hub-{self.name}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"hub {self.name} did not bind within {timeout}s")
        if self._startup_error is not None:
            self._thread.join(timeout)
            raise self._startup_error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop forwarding and close the hub's sockets; idempotent."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        control = self.context.socket(zmq.PAIR)
        control.linger = 0
        try:
            control.connect(self._control)
            control.send(b"STOP")
            thread.join(timeout)
        finally:
            control.close()
        if thread.is_alive():
            raise TimeoutError(f"hub {self.name} did not stop within {timeout}s")

    def __enter__(self) -> Hub:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict[str, Any]:
        """Counters (see the module docstring) plus hub_seq and retained key count."""
        result: dict[str, Any] = dict(self._counters)
        result.update(hub_seq=self._hub_seq, retained_keys=len(self._store),
                      retained_evicted=self._store.evicted, last_problem=self._last_problem)
        return result

    # -- the hub thread --------------------------------------------------------

    def _run(self) -> None:
        sockets: list[zmq.Socket] = []
        try:
            self._bind(sockets)
        except BaseException as exc:  # reported to start(), in the caller's thread
            self._startup_error = exc
            for sock in sockets:
                sock.close(linger=0)
            self._ready.set()
            return
        self._ready.set()
        try:
            self._serve(*sockets)
        except zmq.ContextTerminated:
            log.warning("hub %s: context terminated before stop()", self.name)
        finally:
            for sock in sockets:
                sock.close(linger=0)

    def _bind(self, sockets: list[zmq.Socket]) -> None:
        def make(kind: int, *endpoints: str) -> zmq.Socket:
            sock = self.context.socket(kind)
            sockets.append(sock)
            sock.linger = 0
            sock.sndhwm = sock.rcvhwm = self._hwm
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)
            for endpoint in endpoints:
                sock.bind(endpoint)
                if endpoint.startswith("ipc://"):
                    os.chmod(endpoint[len("ipc://"):], stat.S_IRWXU)
            return sock

        ipc, inproc = self.endpoints, self.inproc_endpoints
        xsub = make(zmq.XSUB, ipc.publish, inproc.publish)
        xpub = make(zmq.XPUB, ipc.subscribe, inproc.subscribe)
        xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
        router = make(zmq.ROUTER, ipc.snapshot, inproc.snapshot)
        control = make(zmq.PAIR, self._control)
        xsub.send(b"\x01")  # subscribe to everything: the hub sees every event

    def _serve(self, xsub: zmq.Socket, xpub: zmq.Socket, router: zmq.Socket,
               control: zmq.Socket) -> None:
        self._xpub = xpub
        poller = zmq.Poller()
        for sock in (xsub, xpub, router, control):
            poller.register(sock, zmq.POLLIN)
        handlers = ((xsub, self._forward), (xpub, self._subscriptions),
                    (router, self._snapshots))
        now = time.monotonic()
        next_stats = None if self._stats_interval is None else now + self._stats_interval
        reported = dict(self._counters)
        next_report = now
        pending = False  # problems seen but not yet reported
        while True:
            wake = [t for t in (next_stats, next_report if pending else None) if t is not None]
            timeout = None if not wake else max(0.0, min(wake) - time.monotonic()) * 1000
            ready = dict(poller.poll(timeout))
            if control in ready:
                return
            for sock, handler in handlers:
                if sock in ready:
                    try:
                        handler(sock)
                    except zmq.ContextTerminated:
                        raise
                    except Exception:  # the hub boundary: log, count, keep serving
                        log.exception("hub %s: unexpected error", self.name)
                        self._counters["internal_errors"] += 1
                        self._last_problem = "internal error (see log)"
            now = time.monotonic()
            problems = self._problems_since(reported)
            pending = bool(problems)
            if pending and now >= next_report:
                log.warning("hub %s dropped input: %s (last: %s)", self.name, problems,
                            self._last_problem)
                self._publish_stats()
                reported = dict(self._counters)
                next_report = now + REPORT_INTERVAL
                pending = False
            elif next_stats is not None and now >= next_stats:
                self._publish_stats()
                next_stats = now + self._stats_interval

    def _forward(self, xsub: zmq.Socket) -> None:
        counters, xpub, inspect, store = self._counters, self._xpub, codec.inspect, self._store
        more, noblock, sndmore = zmq.RCVMORE, zmq.NOBLOCK, zmq.SNDMORE
        for _ in range(BATCH):
            try:
                channel = xsub.recv(noblock)
            except zmq.Again:
                return
            counters["received"] += 1
            if not xsub.getsockopt(more):
                self._bad("bad_frame_count", "a 1-frame message")
                continue
            body = xsub.recv()
            if xsub.getsockopt(more):
                frames = 2
                while xsub.getsockopt(more):
                    xsub.recv()
                    frames += 1
                self._bad("bad_frame_count", f"a {frames}-frame message")
                continue
            try:
                key, retain, clears = inspect((channel, body))
            except CodecError as exc:
                self._bad("bad_channel" if exc.why.startswith("bad channel") else "bad_body",
                          str(exc))
                continue
            # Count and store first, so whoever sees the event also sees it counted.
            self._hub_seq += 1
            counters["forwarded"] += 1
            if retain:
                store.put(key, clears, self._hub_seq, (channel, body))
            xpub.send(channel, sndmore)
            xpub.send(body)

    def _bad(self, counter: str, why: str) -> None:
        self._counters[counter] += 1
        self._counters["dropped"] += 1
        self._last_problem = why[:200]

    def _emit(self, event: Event) -> None:
        """Publish the hub's own event, in stream order, like a forwarded one."""
        frames = codec.encode(event)
        self._hub_seq += 1
        if event.retain:
            self._store.put(event.key, event.payload is None, self._hub_seq, frames)
        self._xpub.send_multipart(frames)

    def _subscriptions(self, xpub: zmq.Socket) -> None:
        counters = self._counters
        for _ in range(BATCH):
            try:
                message = xpub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            extra = False
            while xpub.getsockopt(zmq.RCVMORE):
                xpub.recv()
                extra = True
            kind, topic = message[:1], message[1:]
            if extra or kind not in (b"\x00", b"\x01"):
                counters["bad_subscriber_messages"] += 1
                continue
            if kind == b"\x00":
                counters["unsubscribe_messages"] += 1
                continue
            counters["subscribe_messages"] += 1
            if topic.startswith(_SYNC_PREFIX_B):
                try:
                    channel = codec.decode_channel(topic)
                except CodecError:
                    counters["bad_subscriber_messages"] += 1
                    continue
                counters["welcomes"] += 1
                self._emit(self._sequencer.make(
                    channel, HUB_TYPE, {"kind": "welcome", "hub": self.name,
                                        "hub_seq": self._hub_seq}))

    def _snapshots(self, router: zmq.Socket) -> None:
        for _ in range(BATCH):
            try:
                identity = router.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            frames = []  # at most MAX_REQUEST_FRAMES + 1 kept: enough to refuse the rest
            while router.getsockopt(zmq.RCVMORE):
                frame = router.recv()
                if len(frames) <= snapshot.MAX_REQUEST_FRAMES:
                    frames.append(frame)
            try:
                request = snapshot.parse_request(frames)
            except CodecError as exc:
                self._counters["bad_snapshot_requests"] += 1
                self._last_problem = f"snapshot request: {exc}"[:200]
                reply = snapshot.reply_error(frames[1] if len(frames) > 1 else b"", str(exc))
            else:
                reply = self._answer(request)
            try:
                router.send_multipart([identity, *reply], zmq.NOBLOCK)
            except zmq.Again:
                self._counters["snapshot_replies_dropped"] += 1

    def _answer(self, request: snapshot.Request) -> list[bytes]:
        # One step of the hub thread: the marker goes into the stream at the
        # very point the store is read, which is what makes the join exact.
        self._counters["snapshots"] += 1
        picked, truncated = self._store.select(request.prefixes, *self._max_snapshot)
        hub_seq = self._hub_seq
        if request.sync_channel is not None:
            self._emit(self._sequencer.make(
                request.sync_channel, HUB_TYPE,
                {"kind": "snapshot", "token": request.token, "hub_seq": hub_seq}))
        return snapshot.reply_ok(request, hub_seq, picked, truncated)

    def _problems_since(self, reported: dict[str, int]) -> dict[str, int]:
        return {key: self._counters[key] - reported[key] for key in
                ("dropped", "bad_subscriber_messages", "bad_snapshot_requests",
                 "internal_errors", "snapshot_replies_dropped")
                if self._counters[key] != reported[key]}

    def _publish_stats(self) -> None:
        payload = {key: value for key, value in self.stats().items()}
        payload["hub"] = self.name
        self._emit(self._sequencer.make(STATS_CHANNEL, HUB_TYPE, payload, retain=True))


def _make_private_dir(path: Path) -> None:
    """Create ``path`` as a directory only its owner can enter (0700)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise ConfigError(path, "run_dir", "owned by another user")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
