"""The node's local event hub: every actor publishes to it, every reader subscribes.

A :class:`Hub` is ZeroMQ's C XSUB/XPUB proxy plus a *keeper* thread that
holds the retained state, run by two threads of the node process. It binds,
for other processes, three ``ipc://`` sockets in a run directory it creates
with mode 0700 (the socket files are chmod-ed 0700 too), and the same three
as ``inproc://`` endpoints for actors of the same process (same ZeroMQ
context)::

    publish    XSUB   publishers connect here (dsmt.bus.Publisher)
    subscribe  XPUB   subscribers connect here (dsmt.bus.Subscriber)
    snapshot   ROUTER snapshot requests (dsmt.snapshot), served by the keeper

Why forwarding is in C
----------------------
Every event crosses the hub, and a Python loop that receives, inspects and
resends each one cost more than the whole publish -> subscribe pipeline may
spend (``python -m benchmarks hub``: the Python hub held DSMT to 0.25x of
raw ZeroMQ). So the forwarding thread runs ``zmq.proxy_steerable`` and never
runs Python per message. The keeper (:mod:`dsmt._keeper`) subscribes to
everything on the XPUB like any subscriber (the zguide "clone server as a
subscriber" arrangement) and does, behind the stream, what the hub loop did
in it: the retained store, drop accounting, welcomes, snapshot answers.

Where validation happens
------------------------
The proxy forwards what publishers send without looking. Every reader
validates with :mod:`dsmt.codec`: a :class:`dsmt.bus.Subscriber` drops and
counts (``undecodable``) what does not decode; the keeper does the same for
the hub, counting by reason (a stray or lone frame, garbage msgpack, a bad
channel, a body over :data:`dsmt.codec.MAX_BODY`) in :meth:`Hub.stats`, and
never serves such a message in a snapshot (retained events are checked in
batches, see :mod:`dsmt._keeper`). At most once per ``REPORT_INTERVAL`` seconds
the keeper publishes its counters, retained, on :data:`STATS_CHANNEL` and
logs a warning. A single frame larger than :data:`MAX_FRAME` makes ZeroMQ
disconnect that peer (memory protection); it reconnects by itself. Nothing a
peer sends can stop the hub: the proxy does not parse, and the keeper logs
and counts (``internal_errors``) any unexpected exception and goes on.

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
  (:mod:`dsmt.gaps`) reports the missing seqs per sender. The keeper is such
  a subscriber with a ten times deeper queue, but without a gap detector
  (it does not decode most events, see :mod:`dsmt._keeper`): should it ever
  fall that far behind, its store may hold an older value for a key.

Sync channels, welcome and snapshot markers
-------------------------------------------
A subscription to a channel under :data:`SYNC_PREFIX` (``/org/dsmt/hub/sync/<token>/``)
is answered with a *welcome* event on that channel (payload
``{"kind": "welcome", "hub_seq": n}``). The proxy passes subscriptions up
to the publishers, the keeper's own publishing socket among them, so the
welcome starts only after the hub's XPUB has registered the subscription
and every one sent before it on the same connection: when it arrives, they
are all live (the slow-joiner handshake; no sleeps). Publishers also receive
those subscription messages; :class:`dsmt.bus.Publisher` discards them, and
the XSUB's send queue holds at most :data:`SUBSCRIPTION_HWM` of them per
publisher (beyond that ZeroMQ drops them for that publisher, which needs
none but the first: subscribe to everything).
Snapshot markers travel on the same channel (see :mod:`dsmt.snapshot`).

Threading: :meth:`Hub.start` and :meth:`Hub.stop` may be called from any
thread; each socket is created, used and closed by its thread (forwarder or
keeper), except the one-shot control socket :meth:`stop` creates in the
calling thread. :meth:`Hub.stats` may be called from any thread. The hub
does not own the ZeroMQ context; whoever made it terminates it after
:meth:`stop`.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import zmq

from dsmt import codec, snapshot
from dsmt._keeper import (HUB_CHANNEL, HUB_SERVICE, HUB_TYPE, STATS_CHANNEL, STREAM_HWM,
                          SYNC_PREFIX, Keeper, sync_channel)
from dsmt.errors import ConfigError

__all__ = ["HUB_CHANNEL", "HUB_SERVICE", "HUB_TYPE", "HWM", "MAX_FRAME", "STATS_CHANNEL",
           "SUBSCRIPTION_HWM", "SYNC_PREFIX", "Endpoints", "Hub", "sync_channel"]

log = logging.getLogger(__name__)

HWM = 100_000
# The XSUB sends publishers nothing but subscriptions, which they only discard
# (dsmt.bus.Publisher): a small queue bounds what an idle publisher holds.
SUBSCRIPTION_HWM = 1000
MAX_FRAME = codec.MAX_BODY + 64 * 1024
_IPC_PATH_MAX = 100  # sun_path is 108 bytes on Linux, minus "ipc://" slack


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where a bus client connects: publishers, subscribers, snapshot requests."""

    publish: str
    subscribe: str
    snapshot: str

    @classmethod
    def ipc(cls, run_dir: str | os.PathLike[str]) -> Endpoints:
        """The ipc:// endpoints of the hub whose run dir is ``run_dir`` (what Hub binds)."""
        return cls(*(f"ipc://{Path(run_dir) / part}.sock"
                     for part in ("publish", "subscribe", "snapshot")))


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
        self.endpoints = Endpoints.ipc(self.run_dir)
        for endpoint in (self.endpoints.publish, self.endpoints.subscribe,
                         self.endpoints.snapshot):
            if len(endpoint) > _IPC_PATH_MAX:
                raise ConfigError(self.run_dir, "run_dir",
                                  f"too long for an ipc socket path ({endpoint})")
        unique = f"dsmt-hub.{name}.{uuid.uuid4().hex[:12]}"
        self.inproc_endpoints = Endpoints(*(f"inproc://{unique}.{part}" for part in
                                            ("publish", "subscribe", "snapshot")))
        self._proxy_control = f"inproc://{unique}.proxy-control"
        self._keeper_control = f"inproc://{unique}.keeper-control"
        self._keeper = Keeper(name, stats_interval=stats_interval,
                              max_snapshot=(max_snapshot_keys, max_snapshot_bytes),
                              max_retained_keys=max_retained_keys)
        self._threads: list[threading.Thread] = []

    # -- lifecycle (any thread) ------------------------------------------------

    def start(self, timeout: float = 5.0) -> Hub:
        """Create the run dir, bind every endpoint and start forwarding.

        Returns once the sockets are bound and the keeper sees the stream;
        raises what binding raised (e.g. ``zmq.ZMQError`` if another hub
        holds the run dir's sockets) or TimeoutError.
        """
        if self._threads:
            raise RuntimeError("hub already started")
        _make_private_dir(self.run_dir)
        for name, target in (("forwarder", self._forwarder), ("keeper", self._keep)):
            started, failure = threading.Event(), []
            thread = threading.Thread(target=target, args=(started, failure, timeout),
                                      name=f"dsmt-hub-{self.name}-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()
            if not started.wait(timeout) and not failure:
                failure.append(TimeoutError(f"hub {self.name}: {name} not up within {timeout}s"))
            if failure:
                self._halt(timeout)
                raise failure[0]
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop forwarding and close the hub's sockets; idempotent."""
        if not any(thread.is_alive() for thread in self._threads):
            return
        self._halt(timeout)
        if any(thread.is_alive() for thread in self._threads):
            raise TimeoutError(f"hub {self.name} did not stop within {timeout}s")

    def __enter__(self) -> Hub:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return bool(self._threads) and all(thread.is_alive() for thread in self._threads)

    def stats(self) -> dict[str, Any]:
        """The keeper's counters (see :mod:`dsmt._keeper`), hub_seq and retained key count."""
        return self._keeper.stats()

    def _halt(self, timeout: float) -> None:
        """Stop the proxy, then the keeper."""
        for endpoint, command, thread in zip(
                (self._proxy_control, self._keeper_control), (b"TERMINATE", b"STOP"),
                self._threads):
            if not thread.is_alive():
                continue
            control = self.context.socket(zmq.PAIR)
            control.linger = 0
            try:
                control.connect(endpoint)
                control.send(command)
                thread.join(timeout)
            finally:
                control.close()

    # -- the two hub threads -----------------------------------------------------

    def _socket(self, sockets: list[zmq.Socket], kind: int) -> zmq.Socket:
        sock = self.context.socket(kind)
        sockets.append(sock)
        sock.linger = 0
        sock.sndhwm = sock.rcvhwm = self._hwm
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)
        return sock

    def _bind(self, sock: zmq.Socket, *endpoints: str) -> None:
        for endpoint in endpoints:
            sock.bind(endpoint)
            if endpoint.startswith("ipc://"):
                os.chmod(endpoint[len("ipc://"):], stat.S_IRWXU)

    def _forwarder(self, started: threading.Event, failure: list, timeout: float) -> None:
        def setup(sockets: list[zmq.Socket]) -> None:
            xsub = self._socket(sockets, zmq.XSUB)
            xsub.sndhwm = SUBSCRIPTION_HWM
            self._bind(xsub, self.endpoints.publish, self.inproc_endpoints.publish)
            xpub = self._socket(sockets, zmq.XPUB)
            self._bind(xpub, self.endpoints.subscribe, self.inproc_endpoints.subscribe)
            self._bind(self._socket(sockets, zmq.PAIR), self._proxy_control)

        def serve(sockets: list[zmq.Socket]) -> None:
            xsub, xpub, control = sockets
            started.set()
            zmq.proxy_steerable(xsub, xpub, None, control)  # returns on TERMINATE

        self._own_sockets(setup, serve, started, failure)

    def _keep(self, started: threading.Event, failure: list, timeout: float) -> None:
        def setup(sockets: list[zmq.Socket]) -> None:
            stream = self._socket(sockets, zmq.SUB)
            stream.rcvhwm = STREAM_HWM
            stream.connect(self.inproc_endpoints.subscribe)
            stream.subscribe(b"")
            pub = self._socket(sockets, zmq.XPUB)
            pub.setsockopt(zmq.XPUB_VERBOSE, 1)
            pub.connect(self.inproc_endpoints.publish)
            router = self._socket(sockets, zmq.ROUTER)
            self._bind(router, self.endpoints.snapshot, self.inproc_endpoints.snapshot)
            self._bind(self._socket(sockets, zmq.PAIR), self._keeper_control)

        def serve(sockets: list[zmq.Socket]) -> None:
            self._keeper.run(tuple(sockets), started, timeout)

        self._own_sockets(setup, serve, started, failure)

    def _own_sockets(self, setup: Callable[[list], None], serve: Callable[[list], None],
                     started: threading.Event, failure: list) -> None:
        """Create sockets, serve, close them: all in this thread; startup errors to start()."""
        sockets: list[zmq.Socket] = []
        try:
            setup(sockets)
            serve(sockets)
        except zmq.ContextTerminated:
            log.warning("hub %s: context terminated before stop()", self.name)
        except BaseException as exc:
            if started.is_set():
                log.exception("hub %s: %s failed", self.name, threading.current_thread().name)
            else:
                failure.append(exc)  # raised by start(), in the caller's thread
                started.set()
        finally:
            for sock in sockets:
                sock.close(linger=0)


def _make_private_dir(path: Path) -> None:
    """Create ``path`` as a directory only its owner can enter (0700)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise ConfigError(path, "run_dir", "owned by another user")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
