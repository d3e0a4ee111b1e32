"""One connection of a PsEPR client to one router: login, then stanzas in and out.

Private to :class:`gateways.psepr.client.Client`, whose module docstring is
the contract (threads, reconnection, leases). A :class:`ClientProtocol` lives
in the client's loop thread only: it writes the stream header and the login,
resolves ``logged_in`` (or fails it with :class:`LoginRefused` or
``ConnectionError``) and ``lost``, and hands every event and every refusal the
router sends to the client (``Client._received``, ``Client._refused``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from dsmt.errors import DsmtError
from dsmt.event import Event
from dsmt.reader import Gathering

from gateways.psepr import inbound, stream

if TYPE_CHECKING:
    from gateways.psepr.client import Client

# The client's logger: moving the connection here changed no log record's name.
log = logging.getLogger("gateways.psepr.client")


class LoginRefused(DsmtError):
    """The router refused the service name or password (401)."""


class ClientProtocol(asyncio.Protocol):
    """One connection of a :class:`Client` to one router (loop thread only)."""

    def __init__(self, client: Client, host: str) -> None:
        self.client = client
        self.host = host
        loop = client._loop
        self.logged_in: asyncio.Future = loop.create_future()
        self.lost: asyncio.Future = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.registry = stream.registry_jid(host)
        self._parser = inbound.StreamParser(max_stanza=client._max_stanza)
        self._header = False
        self._gathering = Gathering(client.gather)
        self._paused: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        c = self.client
        transport.write(stream.stream_header(to=self.host))
        transport.write(stream.auth_set("auth-1", c.address.service, c._password,
                                        c.address.instance))

    def data_received(self, data: bytes) -> None:
        stanzas = 0
        try:
            for item in self._parser.feed(data):
                self._handle(item)
                stanzas += 1
        except Exception as exc:
            log.warning("psepr client %s: router %s: %s", self.client.address, self.host, exc)
            if not self.logged_in.done():
                self.logged_in.set_exception(exc)
            self.close()
            return
        if self.client.gather:
            self._gather(stanzas)

    def _gather(self, stanzas: int) -> None:
        """Stop reading for a window while busy (see the client's docstring)."""
        loop = self.client._loop
        if (self._gathering.woke(loop.time(), stanzas) and self._paused is None
                and not self.transport.is_closing()):
            self.transport.pause_reading()
            self._paused = loop.call_later(self._gathering.window, self._resume)

    def _resume(self) -> None:
        self._paused = None
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def _handle(self, item) -> None:
        if isinstance(item, stream.StreamHeader):
            self._header = True
            self.registry = stream.registry_jid(item.from_ or self.host)
        elif item is inbound.END:
            self.close()
        elif item.tag == stream.IQ and not self.logged_in.done():
            if item.get("type") == "result":
                self.logged_in.set_result(None)
            else:
                self.logged_in.set_exception(LoginRefused(
                    f"router {self.host} refused {self.client.address.service}"))
                self.close()
        elif item.tag == stream.MESSAGE and item.get("type") == "error":
            self.client._refused(item)
        elif item.tag == stream.MESSAGE:
            try:
                event = stream.message_event(item)
            except DsmtError as exc:
                self.client.stats["bad_events"] += 1
                log.info("psepr client %s: bad event dropped: %s", self.client.address, exc)
                return
            self.client._received(event)
        elif item.tag == stream.STREAM_ERROR:
            log.warning("psepr client %s: stream error from %s: %s", self.client.address,
                        self.host, stream.parse_stream_error(item))

    def send_event(self, event: Event) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        try:
            data = stream.message_stanza(event, to=self.registry)
        except DsmtError:
            log.exception("psepr client %s: cannot encode event", self.client.address)
            return
        self.client.stats["sent"] += 1
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.write(stream.STREAM_END)
            except Exception:
                pass
            self.transport.close()

    def connection_lost(self, exc) -> None:
        if self._paused is not None:
            self._paused.cancel()
        if not self.logged_in.done():
            self.logged_in.set_exception(ConnectionError("connection closed during login"))
        if not self.lost.done():
            self.lost.set_result(None)
