"""The PsEPR router: leases in, events routed out (DESIGN.md §4).

An asyncio server (default 127.0.0.1:23345) that clients log in to with a
service name and password, lease channels on, and publish events to. Every
event goes to every connection holding a matching lease
(:mod:`gateways.psepr.routes`) — back to its sender only if the sender
leased it, and not through a lease taken with ``echo`` false — and to
every peer router that leased it
(:mod:`gateways.psepr.mesh`).

Leases (:mod:`gateways.psepr.leases`): a ``LEASE`` event with op
``register`` sent *to* the channel to receive asks for a lease; the router
answers the requester alone with op ``lease``, the echoed identifier and the
granted duration (at most ``max_lease``). ``unregister`` ends a lease, and
so do expiry and disconnection. Lease requests are not routed further.

The router publishes its own events on server channels::

    /org/psepr/server/<name>/heartbeat/   every `heartbeat` seconds (HEARTBEAT)
    /org/psepr/server/<name>/discovery/   at start and when peers come and go

Hot path: a received ``<message>`` is decoded once into an
:class:`gateways.psepr.xml.Envelope` — validated exactly like a full decode
(a bad event gets a ``bad-request`` answer and is not routed), but only
channel, type, ``to``, sender, id and payload are built; the whole
:class:`dsmt.event.Event` is made only when a peer router needs it. The
received stanza is queued to every client it goes to as the bytes it
arrived in (:meth:`gateways.psepr.inbound.StreamParser.raw`; serialized
again from the tree where those are not certain); every queue is written
with one ``write`` per loop turn (:meth:`Router.dirty`), so a burst of
events costs one syscall per receiver. A large read (up to 256 KiB, when
the router was kept off the CPU) is parsed and routed in bites of
:data:`gateways.psepr.connection.BITE` bytes, each written out before the
next is parsed, so the first events of a batch do not wait for the last.

Cost (``python -m benchmarks router``, 2 CPUs, in the router process):
about 28 us of CPU per 476-byte event at full speed. Measured in process
(min of repeated runs): the stream parser about 12 us (libxml2 building the
tree about 4 us; the rest is lxml reporting start/end events for every
element and the loop reading them: asking only for stanza-level tags
brings it to about 6 us, but the depth cap then needs another pass),
raw-stanza bookkeeping about 3 us (it saves the 2-3 us of serializing the
message again, so it is about even), the envelope decode
(``gateways.psepr.xml.envelope``) about 9 us, routing and asyncio I/O the
rest. At a paced rate reads are small and the CPU per event is higher
(about 40 us, most of it in user time, not syscalls). Under contention the
latency is set by how long the router waits for a CPU, which the benchmark
reports (``router_wait_cores``) next to the latency.

Threads: a :class:`Router` lives in one event loop; every method runs in
it. :class:`RouterThread` runs one in a thread of its own (tests, benchmarks,
embedding); :func:`serve` runs one until cancelled (``dsmt router``). Both
live in :mod:`gateways.psepr._router_thread` and are imported from here.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
from typing import Callable

from lxml import etree

from dsmt.errors import DsmtError
from dsmt.event import HEARTBEAT, LEASE, RECORD, Address, Event, Sequencer

from gateways.psepr import stream, xml
from gateways.psepr.config import RouterConfig
from gateways.psepr.connection import Connection
from gateways.psepr.leases import Lease, LeaseTable, grant_duration
from gateways.psepr.mesh import Mesh
from gateways.psepr.routes import RouteIndex
from gateways.psepr._router_thread import RouterThread, serve

__all__ = ["REGISTRY", "SERVER_CHANNELS", "Router", "RouterThread", "serve", "server_ssl_context"]

log = logging.getLogger(__name__)

REGISTRY = "psepr_registry"
SERVER_CHANNELS = "/org/psepr/server/"


class Router:
    """One router: its listeners, leases, routes and mesh links."""

    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self.leases = LeaseTable()
        self.routes = RouteIndex()
        self.connections: set[Connection] = set()
        self.stats: collections.Counter = collections.Counter()
        self.sequencer = Sequencer(Address(REGISTRY, config.name))
        self.mesh = Mesh(self)
        self.address: tuple[str, int] | None = None
        self.mesh_address: tuple[str, int] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.started = 0.0
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: list[asyncio.Task] = []
        self._dirty: list[Connection] = []
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at: float | None = None

    @property
    def host_name(self) -> str:
        return self.config.name

    @property
    def registry_jid(self) -> str:
        return f"{REGISTRY}@{self.config.name}"

    def now(self) -> float:
        return self.loop.time()

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Bind the listeners and start heartbeats and peer links."""
        self.loop = asyncio.get_running_loop()
        self.started = self.now()
        context = server_ssl_context(self.config)
        host, port = self.config.listen
        server = await self.loop.create_server(
            lambda: Connection(self), host, port, ssl=context, reuse_address=True, backlog=1024)
        self._servers.append(server)
        self.address = server.sockets[0].getsockname()[:2]
        if self.config.mesh.listen is not None:
            host, port = self.config.mesh.listen
            server = await self.loop.create_server(
                lambda: Connection(self, mesh=True), host, port, ssl=context,
                reuse_address=True)
            self._servers.append(server)
            self.mesh_address = server.sockets[0].getsockname()[:2]
        if self.config.heartbeat is not None:
            self._tasks.append(asyncio.create_task(self._heartbeats()))
        self.mesh.start()
        self.publish_discovery()
        log.info("router %s listening on %s (mesh %s)", self.config.name, self.address,
                 self.mesh_address)

    async def stop(self) -> None:
        """Close the listeners and every connection."""
        for server in self._servers:
            server.close()
        await self.mesh.stop()
        for task in self._tasks:
            task.cancel()
        for conn in list(self.connections):
            conn.close()
            if conn.transport is not None:
                conn.transport.abort()
        for server in self._servers:
            await server.wait_closed()
        if self._expiry is not None:
            self._expiry.cancel()

    # ------------------------------------------------------------------ connections

    def connection_opened(self, conn: Connection) -> None:
        self.connections.add(conn)
        self.stats["connections"] += 1

    def may_log_in(self, conn: Connection, service: str) -> bool:
        """Peers log in on the mesh listener with the mesh account only, clients elsewhere."""
        return (service == self.config.mesh.service) == conn.on_mesh_listener

    def connection_authenticated(self, conn: Connection, auth) -> None:
        if conn.on_mesh_listener:
            self.mesh.accepted(conn, auth.resource)

    def connection_closed(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for lease in self.leases.drop_owner(conn):
            self._unroute(lease)
        if conn.is_peer:
            self.mesh.link_lost(conn)

    def dirty(self, conn: Connection) -> None:
        """``conn`` has queued output: write it (once) when this loop turn ends."""
        if not self._dirty:
            self.loop.call_soon(self.flush)
        self._dirty.append(conn)

    def flush(self) -> None:
        """Write every queued output now (the end of a loop turn, or of a large read's bite)."""
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            try:
                conn.flush()
            except Exception:
                log.exception("%r: write failed; closing it", conn)
                conn.fail("internal-server-error", "internal error")

    # ------------------------------------------------------------------ events in

    def on_message(self, conn: Connection, el: etree._Element) -> None:
        """A ``<message>`` arrived on ``conn`` (logged in)."""
        try:
            envelope = stream.message_envelope(el)
        except DsmtError as exc:
            self.stats["rejected"] += 1
            log.info("%r: event rejected: %s", conn, exc)
            conn.send(stream.message_error(el, "modify", "bad-request", str(exc)))
            return
        self.stats["events_in"] += 1
        if envelope.type == LEASE:
            op = envelope.payload["op"]
            if op == "register" and not conn.acl.may_lease(envelope.channel):
                self._forbidden(conn, el, f"{conn.address.service} may not lease "
                                          f"{envelope.channel}")
            elif op == "register" or op == "unregister":
                self._lease_request(conn, envelope)
            return  # grants (op=lease) are answers, never routed
        if not conn.acl.may_publish(envelope.channel):
            self._forbidden(conn, el, f"{conn.address.service} may not publish to "
                                      f"{envelope.channel}")
            return
        if conn.is_peer:
            self.mesh.received(conn, envelope, el)
        else:
            self.route(envelope, lambda: conn.received_bytes(el), source=conn)

    def _forbidden(self, conn: Connection, el: etree._Element, why: str) -> None:
        """Refuse what ``conn``'s access list does not allow (gateways.psepr.acl)."""
        self.stats["forbidden"] += 1
        log.warning("%r: %s", conn, why)
        conn.send(stream.message_error(el, "auth", "forbidden", why, echo=True))

    def route(self, event: Event | xml.Envelope, client_bytes: Callable[[], bytes], source=None,
              hops: int = 0) -> int:
        """Send ``event`` to every matching holder; returns how many got it."""
        targets = self.routes.match(event.channel, event.type, event.to, source)
        data = None
        peers = None
        for target in targets:
            if target.is_peer:
                if target is not source:
                    if peers is None:
                        peers = []
                    peers.append(target)
                continue
            if data is None:
                data = client_bytes()
            target.send(data)
        sent = len(targets) - (0 if peers is None else len(peers))
        if peers is not None:
            if isinstance(event, xml.Envelope):
                event = event.event()  # peers get it re-encoded, with the id it is known by
            sent += self.mesh.forward(event, peers, hops)
        self.stats["deliveries"] += sent
        return sent

    def publish(self, event: Event) -> int:
        """Route an event made by the router itself."""
        return self.route(event, lambda: stream.message_stanza(event, to=self.registry_jid))

    # ------------------------------------------------------------------ leases

    def _lease_request(self, conn: Connection, event: xml.Envelope) -> None:
        payload = event.payload
        identifier = payload["identifier"]
        if payload["op"] == "unregister":
            lease = self.leases.unregister(conn, identifier)
            if lease is not None:
                self._unroute(lease)
            return
        if conn.is_peer:
            duration = None  # a peer's leases last as long as its link
        else:
            duration = grant_duration(payload["duration"], self.config.default_lease,
                                      self.config.max_lease)
        lease, old = self.leases.register(conn, identifier, event.channel, payload["type"],
                                          duration, self.now(), payload.get("echo", True))
        if old is not None:
            self._unroute(old)
        self.routes.add(lease)
        if conn.is_peer:
            self.mesh.peer_lease_added(lease)
        else:
            self.mesh.local_lease_added(lease)
            self._schedule_expiry()
            grant = self.sequencer.make(event.channel, LEASE, {
                "op": "lease", "identifier": identifier, "duration": duration,
                "type": payload["type"]}, to=conn.address)
            conn.send(stream.message_stanza(grant, to=conn.jid))
        self.stats["leases_granted"] += 1

    def _unroute(self, lease: Lease) -> None:
        self.routes.remove(lease)
        if lease.owner.is_peer:
            self.mesh.peer_lease_removed(lease)
        else:
            self.mesh.local_lease_removed(lease)

    def _schedule_expiry(self) -> None:
        deadline = self.leases.next_deadline()
        if deadline is None or (self._expiry_at is not None and self._expiry_at <= deadline):
            return
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry_at = deadline
        self._expiry = self.loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._expiry = self._expiry_at = None
        for lease in self.leases.expire(self.now()):
            self.stats["leases_expired"] += 1
            self._unroute(lease)
        self._schedule_expiry()

    # ------------------------------------------------------------------ server channels

    def server_channel(self, what: str) -> str:
        return f"{SERVER_CHANNELS}{self.config.name}/{what}/"

    async def _heartbeats(self) -> None:
        while True:
            try:
                self.publish(self.sequencer.make(self.server_channel("heartbeat"), HEARTBEAT,
                                                 self.snapshot()))
            except Exception:
                log.exception("router %s: heartbeat failed", self.config.name)
            await asyncio.sleep(self.config.heartbeat)

    def publish_discovery(self) -> None:
        host, port = self.address
        mesh = None if self.mesh_address is None else "%s:%d" % self.mesh_address
        self.publish(self.sequencer.make(self.server_channel("discovery"), RECORD, {
            "name": self.config.name, "listen": f"{host}:{port}", "mesh": mesh,
            "tls": self.config.tls is not None, "peers": sorted(self.mesh.peer_names())}))

    def snapshot(self) -> dict:
        """What the router is doing, as a plain dict (heartbeat payload, tests)."""
        return {
            "name": self.config.name,
            "uptime": self.now() - self.started,
            "clients": sum(1 for c in self.connections if not c.is_peer),
            "peers": sorted(self.mesh.peer_names()),
            "leases": len(self.leases),
            "counters": dict(self.stats),
        }


def server_ssl_context(config: RouterConfig) -> ssl.SSLContext | None:
    if config.tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls.cert, config.tls.key)
    return context
