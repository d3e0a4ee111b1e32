"""The router mesh: routers lease on each other what their clients lease.

Principles (DESIGN.md §4):

1. **Links.** A router dials every peer of its static list (default port
   23341) and logs in with the shared mesh account; its name is the login
   resource, the peer's name is in the peer's stream header. A link is
   symmetric once up: both ends lease on it and forward on it. A peer that
   goes away is dialled again with exponential backoff (``retry_min`` ..
   ``retry_max``, jitter), and on return every export is leased again.

2. **Interests travel as leases with their path.** Each interest is keyed
   by ``(origin router, prefix, type)``. A router exports an interest to a
   link when it holds it from its own clients, or from another link by a
   path that does not contain the receiving router; the lease identifier
   carries the path (``origin>r2>r3|prefix|type``). A router never accepts
   an interest whose path contains itself. This is a path vector: when the
   origin withdraws, every copy loses its last loop-free path and is
   withdrawn in turn, so interests neither loop nor outlive their origin,
   in any graph, cycles included.

3. **Events cross each link at most once.** An event arriving from a link
   is dropped if its id was seen within the dedup window
   (:class:`gateways.psepr.dedup.SeenIds`); an event sent to links is
   remembered first, so its echo is dropped. Each ``<message>`` on a link
   carries ``hops`` (attribute :data:`HOPS`); one that has made
   ``hop_limit`` hops is delivered to local clients but not forwarded.
   So a subscriber receives each event exactly once, whatever the topology.

Runs in the router's event loop; every method is called from it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import ssl

from dsmt.event import LEASE, Event

from gateways.psepr import inbound, stream
from gateways.psepr.connection import AUTH, HEADER, OPEN, Connection, serialize
from gateways.psepr.dedup import SeenIds
from gateways.psepr.leases import Lease

log = logging.getLogger(__name__)
# Its own generator: the global one is the application's (and seeded by tests).
_rng = random.Random()

HOPS = "{urn:dsmt:mesh}hops"
_SEP, _PATH_SEP = "|", ">"

Key = tuple  # (origin, prefix, type)


class Mesh:
    """The peer links of one router and the interests exported on them."""

    def __init__(self, router) -> None:
        self.router = router
        self.config = router.config.mesh
        self.name = router.config.name
        self.links: set[Connection] = set()
        self.seen = SeenIds(self.config.dedup_size, self.config.dedup_window)
        self._local: collections.Counter = collections.Counter()
        self._held: dict[Key, dict[Connection, tuple[str, ...]]] = {}
        self._exported: dict[Connection, dict[Key, str]] = {}
        self._dialers: list[asyncio.Task] = []

    def peer_names(self) -> set[str]:
        return {link.peer_name for link in self.links}

    # ------------------------------------------------------------------ links

    def start(self) -> None:
        for host, port in self.config.peers:
            self._dialers.append(asyncio.create_task(self._dial_forever(host, port)))

    async def stop(self) -> None:
        for task in self._dialers:
            task.cancel()
        await asyncio.gather(*self._dialers, return_exceptions=True)

    def accepted(self, conn: Connection, name: str | None) -> None:
        """An inbound peer logged in with the mesh account as router ``name``."""
        if not name or name == self.name or _SEP in name or _PATH_SEP in name:
            conn.fail("not-authorized", f"bad peer router name {name!r}")
            return
        self.link_up(conn, name)

    def link_up(self, conn: Connection, name: str) -> None:
        conn.is_peer = True
        conn.peer_name = name
        self.links.add(conn)
        self._exported[conn] = {}
        log.info("mesh %s: link to %s up (%s)", self.name, name, conn.remote)
        for key in list(self._local) + list(self._held):
            self._refresh_link(conn, key)
        self.router.publish_discovery()

    def link_lost(self, conn: Connection) -> None:
        """Called after the router dropped the link's leases."""
        if conn in self.links:
            self.links.discard(conn)
            self._exported.pop(conn, None)
            log.info("mesh %s: link to %s lost", self.name, conn.peer_name)
            self.router.publish_discovery()
        if conn.closed is not None and not conn.closed.done():
            conn.closed.set_result(None)

    async def _dial_forever(self, host: str, port: int) -> None:
        delay = self.config.retry_min
        while True:
            conn = None
            try:
                conn = await self._dial(host, port)
                await conn.up
                delay = self.config.retry_min
                await conn.closed
            except asyncio.CancelledError:
                if conn is not None:
                    conn.close()
                raise
            except Exception as exc:
                log.info("mesh %s: peer %s:%d: %s", self.name, host, port, exc)
                if conn is not None:
                    conn.close()
            await asyncio.sleep(delay * _rng.uniform(0.8, 1.2))
            delay = min(delay * 2, self.config.retry_max)

    async def _dial(self, host: str, port: int) -> "PeerDial":
        loop = self.router.loop
        _, conn = await asyncio.wait_for(loop.create_connection(
            lambda: PeerDial(self.router), host, port,
            ssl=client_ssl_context(self.router.config)), timeout=10.0)
        return conn

    # ------------------------------------------------------------------ interests

    def local_lease_added(self, lease: Lease) -> None:
        key = (self.name, lease.prefix, lease.type)
        self._local[key] += 1
        if self._local[key] == 1:
            self._refresh(key)

    def local_lease_removed(self, lease: Lease) -> None:
        key = (self.name, lease.prefix, lease.type)
        self._local[key] -= 1
        if self._local[key] <= 0:
            del self._local[key]
            self._refresh(key)

    def peer_lease_added(self, lease: Lease) -> None:
        path = _path_of(lease.identifier)
        if not path or self.name in path:
            return  # routed (harmless: dedup) but never re-exported
        key = (path[0], lease.prefix, lease.type)
        self._held.setdefault(key, {})[lease.owner] = path
        self._refresh(key)

    def peer_lease_removed(self, lease: Lease) -> None:
        path = _path_of(lease.identifier)
        if not path:
            return
        key = (path[0], lease.prefix, lease.type)
        holders = self._held.get(key)
        if holders is not None and holders.get(lease.owner) == path:
            del holders[lease.owner]
            if not holders:
                del self._held[key]
            self._refresh(key)

    def _refresh(self, key: Key) -> None:
        for link in list(self.links):
            self._refresh_link(link, key)

    def _refresh_link(self, link: Connection, key: Key) -> None:
        exported = self._exported.get(link)
        if exported is None:
            return
        path = self._best_path(key, link)
        wanted = None if path is None else _identifier(path + (self.name,), key)
        current = exported.get(key)
        if wanted == current:
            return
        if current is not None:
            del exported[key]
            self._send_lease(link, "unregister", current, key)
        if wanted is not None:
            exported[key] = wanted
            self._send_lease(link, "register", wanted, key)

    def _best_path(self, key: Key, link: Connection) -> tuple[str, ...] | None:
        if key in self._local:
            return ()
        best = None
        for holder, path in self._held.get(key, {}).items():
            if holder is link or link.peer_name in path:
                continue
            if best is None or (len(path), path) < (len(best), best):
                best = path
        return best

    def _send_lease(self, link: Connection, op: str, identifier: str, key: Key) -> None:
        _, prefix, type_ = key
        event = self.router.sequencer.make(prefix, LEASE, {
            "op": op, "identifier": identifier, "duration": self.router.config.max_lease,
            "type": type_})
        link.send(stream.message_stanza(event, to=self.router.registry_jid))

    # ------------------------------------------------------------------ events

    def received(self, link: Connection, event: Event, el) -> None:
        """An event arrived from a peer link."""
        if not self.seen.first_time(event.id, self.router.now()):
            self.router.stats["duplicates"] += 1
            return
        try:
            hops = int(el.get(HOPS) or 1)
        except ValueError:
            hops = self.config.hop_limit
        el.attrib.pop(HOPS, None)
        self.router.route(event, lambda: serialize(el), source=link, hops=hops)

    def forward(self, event: Event, links: list[Connection], hops: int) -> int:
        """Send ``event`` (seen ``hops`` times already) on ``links``; returns how many."""
        if hops >= self.config.hop_limit:
            self.router.stats["hop_limited"] += 1
            return 0
        if hops == 0:
            self.seen.first_time(event.id, self.router.now())
        data = stream.message_stanza(event, to=self.router.registry_jid)
        data = _with_hops(data, hops + 1)
        for link in links:
            link.send(data)
        self.router.stats["forwarded"] += len(links)
        return len(links)


class PeerDial(Connection):
    """The dialling end of a peer link: logs in to the peer's mesh listener."""

    is_dialling = True

    def __init__(self, router) -> None:
        super().__init__(router, mesh=True)
        loop = router.loop
        self.up: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        mesh = self.router.config.mesh
        self.write(stream.stream_header(to=self.remote.rsplit(":", 1)[0]))
        self.write(stream.auth_set("mesh-1", mesh.service, mesh.password, self.router.config.name))

    def _handle(self, item) -> None:
        if self.state == HEADER:
            if not isinstance(item, stream.StreamHeader):
                raise stream.StreamError("bad-format", "expected a stream header")
            self.peer_name = item.from_
            self.state = AUTH
            return
        if self.state == AUTH:
            if item is inbound.END or item.tag != stream.IQ:
                raise stream.StreamError("not-authorized", "expected the login answer")
            if item.get("type") != "result":
                self.close()
                if not self.up.done():
                    self.up.set_exception(ConnectionRefusedError("peer refused the mesh login"))
                return
            self.state = OPEN
            self.router.mesh.link_up(self, self.peer_name or self.remote)
            if not self.up.done():
                self.up.set_result(self)
            return
        super()._handle(item)

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        if not self.up.done():
            self.up.set_exception(ConnectionError(f"peer {self.remote} closed the link"))
        if not self.closed.done():
            self.closed.set_result(None)


def client_ssl_context(config) -> ssl.SSLContext | None:
    """TLS for dialled peer links: verified against ``tls.ca`` when set."""
    if config.tls is None:
        return None
    if config.tls.ca is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=str(config.tls.ca))
    context.check_hostname = False
    return context


def _identifier(path: tuple[str, ...], key: Key) -> str:
    _, prefix, type_ = key
    return _SEP.join((_PATH_SEP.join(path), prefix, type_ or ""))


def _path_of(identifier: str) -> tuple[str, ...]:
    head = identifier.split(_SEP, 1)[0]
    return tuple(p for p in head.split(_PATH_SEP) if p)


def _with_hops(stanza: bytes, hops: int) -> bytes:
    """``stanza`` (a ``<message ...>``) with the mesh hop count as an attribute."""
    head = b"<message"
    if not stanza.startswith(head):
        raise ValueError("not a message stanza")
    return b'%s xmlns:m="urn:dsmt:mesh" m:hops="%d"%s' % (head, hops, stanza[len(head):])
