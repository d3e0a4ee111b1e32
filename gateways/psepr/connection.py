"""One TCP connection to a router: a client, or a peer router of the mesh.

The connection is the failure boundary of the router (STYLE.md habit 3):
whatever one connection sends — malformed XML, a DOCTYPE, an oversized
stanza, garbage, a flood — ends at most that connection, with a stream
error naming the XMPP condition, and is logged; every other connection
keeps being served.

Protocol (DESIGN.md §4, the 2005 PsEPR wire)::

    client                                   router
    <stream:stream to=HOST ...>        ->
                                       <-    <stream:stream from=HOST id=...>
    <iq type=get><query jabber:iq:auth>->    (optional)
                                       <-    <iq type=result> username/password/resource
    <iq type=set> username, password,
                  resource             ->
                                       <-    <iq type=result/>           (logged in)
                                       <-    <iq type=error> 401, stream end, close
    <message to=psepr_registry@HOST>   ->    (one event per message)
                                       <-    <message> grants and routed events

The username is the service name, the resource its instance. On the mesh
listener the only account accepted is the mesh account, and the resource
is the peer router's name.

Per-connection limits (:class:`gateways.psepr.config.Limits`): a stanza
over ``max_stanza`` bytes is a stream error; stanzas beyond the token
bucket (``rate`` per second, ``burst``) pause reading, which pushes back
on the sender through TCP; more than ``max_queue`` bytes waiting to be sent
to this connection makes it a slow consumer, disconnected with a
``policy-violation`` stream error rather than buffered without bound.

All methods run in the router's event loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING

from lxml import etree

from dsmt.errors import DsmtError
from dsmt.event import Address

from gateways.psepr import acl, inbound, stream

if TYPE_CHECKING:
    from gateways.psepr.router import Router

log = logging.getLogger(__name__)

# Connection states.
HEADER = "header"          # waiting for the peer's stream header
AUTH = "auth"              # header exchanged, not logged in
CHECKING = "checking"      # password being verified off the loop
OPEN = "open"              # logged in: messages flow
CLOSED = "closed"

_ABORT_AFTER = 2.0         # seconds a closing connection gets to flush its last words
# Bytes parsed and routed before what they routed is written out. A read can bring
# 256 KiB (about 550 events) when the router was kept off the CPU; writing only
# after all of it was handled would delay the first of them by the whole batch.
BITE = 16384


class Connection(asyncio.Protocol):
    """A stream from a client (or, on the mesh listener, a peer router)."""

    is_peer = False
    is_dialling = False  # True for the end of a peer link that dialled
    closed: asyncio.Future | None = None  # set by the dialling end of a peer link

    def __init__(self, router: "Router", *, mesh: bool = False) -> None:
        self.router = router
        self.on_mesh_listener = mesh
        self.state = HEADER
        self.address: Address | None = None
        self.acl = acl.ANY  # what this account may publish and lease, set at login
        self.peer_name: str | None = None
        self.transport: asyncio.Transport | None = None
        self.remote = "?"
        self.out: list[bytes] = []
        self.stanzas_in = 0
        limits = router.config.limits
        self._parser = inbound.StreamParser(max_stanza=limits.max_stanza, raw=True)
        self._rate = limits.rate
        self._burst = float(limits.burst)
        self._tokens = self._burst
        self._stamp = 0.0
        self._max_queue = limits.max_queue
        self._backlog: list = []
        self._paused = False
        self._abort: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        who = self.address or self.peer_name or "?"
        return f"<{type(self).__name__} {who} from {self.remote} {self.state}>"

    # ------------------------------------------------------------------ asyncio side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.remote = f"{peer[0]}:{peer[1]}" if peer else "?"
        self._stamp = self.router.now()
        self.router.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        if self.state == CLOSED:
            return
        try:
            for start in range(0, len(data), BITE):
                items = self._parser.feed(data[start:start + BITE] if len(data) > BITE else data)
                if self.state == CHECKING:
                    self._backlog.extend(items)
                    continue
                self._handle_all(items)
                self._parser.forget()  # routed: an idle connection keeps no stanza alive
                if self.state == CLOSED:
                    return
                if start + BITE < len(data):
                    self.router.flush()  # what this bite routed leaves before the next is parsed
            self._throttle()
        except stream.StreamError as exc:
            log.info("%r: stream error %s: %s", self, exc.condition, exc)
            self.fail(exc.condition, str(exc))
        except Exception as exc:
            condition = getattr(exc, "condition", None)
            if isinstance(exc, DsmtError) and condition:
                log.info("%r: %s: %s", self, condition, exc)
                self.fail(condition, str(exc))
            else:
                self.router.stats["internal_errors"] += 1
                log.exception("%r: failed; closing this connection only", self)
                self.fail("internal-server-error", "internal error")

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = CLOSED
        if self._abort is not None:
            self._abort.cancel()
        self.out.clear()
        self.router.connection_closed(self)

    # ------------------------------------------------------------------ stanzas

    def _handle_all(self, items) -> None:
        for item in items:
            if self.state in (CLOSED, CHECKING):
                if self.state == CHECKING:
                    self._backlog.append(item)
                continue
            self._handle(item)

    def _handle(self, item) -> None:
        if isinstance(item, stream.StreamHeader):
            self._on_header(item)
        elif item is inbound.END:
            self.close()
        elif self.state == OPEN:
            self.stanzas_in += 1
            self._tokens -= 1.0
            tag = item.tag
            if tag == stream.MESSAGE:
                self.router.on_message(self, item)
            elif tag == stream.IQ:
                self._on_iq(item)
            # other stanzas (presence, ...) mean nothing to PsEPR: ignored
        elif self.state == AUTH and item.tag == stream.IQ:
            self._on_iq(item)
        else:
            raise stream.StreamError("not-authorized", "log in (jabber:iq:auth) first")

    def _on_header(self, header) -> None:
        if self.state != HEADER:
            raise stream.StreamError("bad-format", "second stream header")
        self.state = AUTH
        self.write(stream.stream_header(from_=self.router.host_name,
                                        id=secrets.token_hex(8)))

    def _on_iq(self, el) -> None:
        auth = stream.parse_auth(el)
        if auth is None:
            self.write(stream.iq_error(el.get("id"), "cancel", "service-unavailable"))
            return
        if auth.type == "get":
            self.write(stream.auth_fields(auth.id))
            return
        if self.state != AUTH:
            self.write(stream.iq_error(auth.id, "cancel", "not-allowed"))
            return
        if not auth.username or auth.password is None \
                or not self.router.may_log_in(self, auth.username):
            self._refuse(auth.id)
            return
        accounts = self.router.config.accounts
        if accounts.is_remembered(auth.username, auth.password):
            self._logged_in(auth)
            return
        self.state = CHECKING
        self.transport.pause_reading()
        future = self.router.loop.run_in_executor(
            None, accounts.verify, auth.username, auth.password)
        future.add_done_callback(lambda f: self._checked(auth, f))

    def _checked(self, auth, future: asyncio.Future) -> None:
        if self.state == CLOSED:
            return
        try:
            ok = future.result()
        except Exception:
            log.exception("%r: password check failed", self)
            ok = False
        if not ok:
            self._refuse(auth.id)
            return
        self._logged_in(auth)
        self.transport.resume_reading()
        backlog, self._backlog = self._backlog, []
        try:
            self._handle_all(backlog)
        except stream.StreamError as exc:
            self.fail(exc.condition, str(exc))
        except Exception:
            log.exception("%r: failed; closing this connection only", self)
            self.fail("internal-server-error", "internal error")

    def _logged_in(self, auth) -> None:
        self.state = OPEN
        self.address = Address(auth.username, auth.resource or None)
        if not self.on_mesh_listener:
            self.acl = self.router.config.accounts.acl(auth.username)
        self.write(stream.auth_ok(auth.id))
        self.router.connection_authenticated(self, auth)

    def _refuse(self, iq_id: str | None) -> None:
        log.warning("%r: login refused", self)
        self.router.stats["refused"] += 1
        self.write(stream.auth_refused(iq_id))
        self.close()

    # ------------------------------------------------------------------ sending

    @property
    def jid(self) -> str:
        host = self.router.host_name
        if self.address is None:
            return host
        tail = "" if self.address.instance is None else f"/{self.address.instance}"
        return f"{self.address.service}@{host}{tail}"

    def received_bytes(self, el: etree._Element) -> bytes:
        """A stanza of the last read as forwarded to other connections: the bytes it came
        in (:meth:`gateways.psepr.inbound.StreamParser.raw`), or serialized again."""
        return self._parser.raw(el) or serialize(el)

    def send(self, data: bytes) -> None:
        """Queue ``data``; the router writes every queue once per loop turn."""
        if self.state == CLOSED:
            return
        if not self.out:
            self.router.dirty(self)
        self.out.append(data)

    def flush(self) -> None:
        out = self.out
        if not out or self.state == CLOSED:
            out.clear()
            return
        self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()
        queued = self.transport.get_write_buffer_size()
        if queued > self._max_queue:
            self.router.stats["slow_consumers"] += 1
            log.warning("%r: slow consumer, %d bytes queued; disconnecting", self, queued)
            self.fail("policy-violation", f"slow consumer: {queued} bytes queued")

    def write(self, data: bytes) -> None:
        """Write at once, ahead of anything queued by :meth:`send`."""
        if self.state != CLOSED and self.transport is not None:
            self.transport.write(data)

    def fail(self, condition: str, text: str) -> None:
        """Send a stream error and close this connection (only)."""
        if self.state == CLOSED:
            return
        self.out.clear()
        try:
            if self.state == HEADER and not self.is_dialling:
                # RFC 6120 §4.9.1.1: open our stream first, so the error is readable.
                self.write(stream.stream_header(from_=self.router.host_name,
                                                id=secrets.token_hex(8)))
            self.write(stream.stream_error(condition, text))
        except Exception:
            log.exception("%r: cannot write the stream error", self)
        self.close()

    def close(self) -> None:
        if self.state == CLOSED or self.transport is None:
            return
        self.flush()
        self.write(stream.STREAM_END)
        self.state = CLOSED
        transport = self.transport
        transport.close()
        # A peer that never reads would keep the transport half-closed forever.
        self._abort = self.router.loop.call_later(_ABORT_AFTER, transport.abort)

    # ------------------------------------------------------------------ limits

    def _throttle(self) -> None:
        if self.state == CLOSED:
            return
        now = self.router.now()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 0 and not self._paused:
            self._paused = True
            self.router.stats["throttled"] += 1
            self.transport.pause_reading()
            self.router.loop.call_later(-self._tokens / self._rate, self._resume)

    def _resume(self) -> None:
        self._paused = False
        if self.state not in (CLOSED, CHECKING):
            self.transport.resume_reading()


def serialize(el: etree._Element) -> bytes:
    """The bytes of a received stanza, serialized again from its tree."""
    return etree.tostring(el, encoding="utf-8", with_tail=False)
