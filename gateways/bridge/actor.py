"""The bridge actor: one per sliver, a child of the sliver's root supervisor.

States (the COMPONENT machine of :mod:`dsmt.states`), each published as the
bridge's retained status::

    requested     on_start began; or, later, the router in use was lost
                  (reason: "lost router HOST:PORT; reconnecting")
    initiated     the hub side is up: the reader thread owns its subscription
    instantiated  the PsEPR client runs and is connecting (reason says so)
    running       logged in to a router (detail ``router``); the buffered
                  events and the current state were handed to the client

After a loss the bridge goes ``running -> requested`` and, once a router
takes it again, walks ``initiated -> instantiated -> running`` at once:
the machine has no edge from ``requested`` straight to ``running``, and a
status reader only looks at the newest state anyway. Every status carries
the counters that matter to an operator (``router``, ``buffered``,
``dropped``, ``lost``, ``compacted``, ``reconnects``); when events are
dropped the status is re-published (at most every :data:`LOSS_REPORT`
seconds) and a warning is logged, so a loss is never silent.

Threads: the hooks and handlers run in the actor's thread. The client's
callbacks run in the client's thread and only touch the exporter (which
has its own lock), the importer (which publishes imports on the hub from
that thread, :mod:`gateways.bridge.importer`), and ``tell()`` this actor.
The hub reader thread (:class:`dsmt.reader.HubReader`) hands the
exporter every event under the export prefixes, the hub's retained
snapshot first, gathering them when busy (in a large slice it also reads
every imported beat, only to drop it: one wake-up per 20 ms instead of
one per beat; an export then waits at most that long); a fatal error in
it or in the importer (a hub socket is gone) makes the actor fail, so its
supervisor starts a new bridge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pykka

from dsmt.actor import Actor, Origin
from dsmt.bus import Bus
from dsmt.errors import DsmtError
from dsmt.event import Address
from dsmt.reader import GATHER, HubReader
from dsmt.states import INITIATED, INSTANTIATED, REQUESTED, RUNNING

from gateways.bridge.config import BridgeConfig
from gateways.bridge.exporter import RESYNC, RESYNC_CHANNEL, Exporter
from gateways.bridge.importer import Importer
from gateways.bridge.outbox import Outbox
from gateways.bridge.recent import RecentIds
from gateways.psepr.client import CLOSED, CONNECTED, Client

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
LOSS_REPORT = 1.0


class BridgeError(DsmtError):
    """The bridge cannot work: no bus to reach the hub, or a hub thread lost its socket."""


@dataclass(frozen=True, slots=True)
class _ClientState:
    state: str
    router: tuple[str, int] | None


@dataclass(frozen=True, slots=True)
class _Loss:
    pass


@dataclass(frozen=True, slots=True)
class _ThreadFailed:
    thread: str
    error: str


class Bridge(Actor):
    """Carries hub events to PsEPR and back: ``Bridge.start(origin, config=..., bus=...)``.

    ``bus`` is the node's :class:`dsmt.bus.Bus`; without it the bridge uses
    the bus whose ``publisher`` is the context's publisher factory (what
    :class:`dsmt.node.Node` sets up), and fails to start if there is none.
    """

    def __init__(self, origin: Origin, config: BridgeConfig, bus: Bus | None = None) -> None:
        super().__init__(origin, **config.describe())
        self.bridge = config
        self.bus = bus
        self.router: tuple[str, int] | None = None
        self.connections = 0
        self._client: Client | None = None
        self._reader: HubReader | None = None
        self._exporter: Exporter | None = None
        self._importer: Importer | None = None
        self._loss_reported = float("-inf")
        self._loss_timer: Any = None
        self._loss_told = False  # a _Loss is in the mailbox: do not flood it

    # -- hooks (actor thread) ---------------------------------------------------

    def on_start(self) -> None:
        self.change_state(REQUESTED, "starting")
        try:
            self._open()
        except BaseException:
            self._close()  # pykka runs neither on_stop nor on_failure after on_start raised
            raise

    def on_stop(self) -> None:
        self._close()

    def on_failure(self, *exc_info: Any) -> None:
        self._close()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _ClientState):
            self._client_state(message)
        elif isinstance(message, _Loss):
            self._report_loss()
        elif isinstance(message, _ThreadFailed):
            raise BridgeError(f"{message.thread} failed: {message.error}")
        return None

    def inspect(self) -> dict[str, Any]:
        """The actor snapshot plus ``bridge``: router, connected, client facts; and the counters."""
        snap = super().inspect()
        snap["counters"].update(self._counters())
        client = self._client
        snap["bridge"] = {
            "connected": self.state == RUNNING,
            "router": None if self.router is None else "%s:%d" % self.router,
            "client": dict(client.stats) if client is not None else {},
            "leases": [] if client is None else [
                {"prefix": s.prefix, "type": s.type, "state": s.state, "granted": s.granted}
                for s in client.subscriptions()],
            "last_problem": self._exporter.last_problem if self._exporter else "",
        }
        return snap

    # -- internals (actor thread) -----------------------------------------------

    def _open(self) -> None:
        cfg = self.bridge
        bus = self.bus or _bus_of(self.ctx)
        exported, imported = RecentIds(cfg.id_memory), RecentIds(cfg.id_memory)
        self._client = Client(
            list(cfg.routers), cfg.service, cfg.password, instance=self.ctx.sliver,
            timing=cfg.timing, reconnect_pause=cfg.reconnect_min,
            reconnect_max=cfg.reconnect_max, ssl=cfg.ssl_context(),
            buffer=cfg.buffer_max_events, on_state=self._on_client_state,
            max_stanza=cfg.max_stanza, gather=GATHER)
        self._exporter = Exporter(
            self._client, Outbox(cfg.buffer_max_events, cfg.buffer_max_bytes), exported,
            imported, self.ctx.sliver, cfg.max_stanza, on_loss=self._on_loss)
        self._reader = HubReader(bus, cfg.export_prefixes, self._exporter.export,
                                 self._on_fatal("hub reader"), name=f"bridge-reader-{self.path}",
                                 snapshot=True, gather=GATHER).start(START_TIMEOUT)
        self.change_state(INITIATED, "hub side ready")
        self._importer = Importer(bus, Address(f"{self.component}.import", self.ctx.sliver),
                                  exported, imported, self._on_fatal("hub importer"))
        for prefix in cfg.import_prefixes:
            self._client.lease(prefix, self._importer, duration=cfg.lease_duration, echo=False)
        if cfg.export_prefixes:
            self._client.lease(RESYNC_CHANNEL, self._exporter.resync, type=RESYNC,
                               duration=cfg.lease_duration)
        self._client.start()
        self.change_state(INSTANTIATED, "connecting to a router", **self._detail())
        if cfg.connect_wait and not self._client.wait_connected(cfg.connect_wait):
            log.warning("%s: no router answered within %ss; starting anyway, buffering",
                        self.path, cfg.connect_wait)

    def _close(self) -> None:
        """Stop the reader and the client; idempotent, and fine after a partial start."""
        if self._loss_timer is not None:
            self._loss_timer.cancel()
        reader, client = self._reader, self._client
        if reader is not None:
            reader.close(STOP_TIMEOUT)
        if client is not None:
            client.close(STOP_TIMEOUT)  # its thread closes the importer's publisher

    def _client_state(self, message: _ClientState) -> None:
        if message.state == CONNECTED:
            self.connections += 1
            self.router = message.router
            for state in (INITIATED, INSTANTIATED):
                if self.machine.allowed(self.state, state):
                    self.change_state(state, "connected", **self._detail())
            if self.state != RUNNING:
                self.change_state(RUNNING, None, **self._detail())
            log.info("%s: connected to router %s:%d", self.path, *message.router)
        elif self.state == RUNNING:
            lost = "%s:%d" % self.router if self.router else "?"
            self.router = None
            self.change_state(REQUESTED, f"lost router {lost}; reconnecting", **self._detail())
            log.warning("%s: lost router %s; reconnecting", self.path, lost)

    def _report_loss(self) -> None:
        self._loss_told = False
        now = self.ctx.clock.monotonic()
        wait = self._loss_reported + LOSS_REPORT - now
        if wait > 0:
            if self._loss_timer is None:
                self._loss_timer = self.ctx.clock.call_later(wait, lambda: self._tell(_Loss()))
            return
        self._loss_timer = None
        self._loss_reported = now
        self.detail = self._detail()
        self.publish_status()
        log.warning("%s: buffer full while disconnected: %d events dropped, %d retained "
                    "lost so far", self.path, self.detail["dropped"], self.detail["lost"])

    def _detail(self) -> dict[str, Any]:
        counters = self._counters()
        detail = {name: counters.get(name, 0) for name in
                  ("buffered", "dropped", "lost", "compacted", "reconnects")}
        detail["router"] = None if self.router is None else "%s:%d" % self.router
        return detail

    def _counters(self) -> dict[str, int]:
        counters: dict[str, int] = {"reconnects": max(0, self.connections - 1)}
        if self._exporter is not None:
            counters.update(self._exporter.stats())
        if self._importer is not None:
            counters.update(self._importer.stats())
        if self._reader is not None:
            counters["reader_errors"] = self._reader.errors
            counters["undecodable"] = self._reader.undecodable
        return counters

    # -- callbacks from other threads: only tell() ------------------------------

    def _on_client_state(self, state: str) -> None:
        """Client thread: update the exporter at once, then tell the actor.

        ``closed`` is the last call of the client's thread: the importer
        closes the hub publisher it opened in that thread.
        """
        exporter, client, importer = self._exporter, self._client, self._importer
        if state == CLOSED and importer is not None:
            importer.close()
        if exporter is not None:
            if state == CONNECTED:
                exporter.connected()
            else:
                exporter.disconnected()
        router = client.router if client is not None and state == CONNECTED else None
        self._tell(_ClientState(state, router))

    def _on_loss(self) -> None:
        """Hub reader thread: events were dropped; one report at a time in the mailbox."""
        if not self._loss_told:
            self._loss_told = True
            self._tell(_Loss())

    def _on_fatal(self, thread: str):
        def report(exc: BaseException) -> None:
            self._tell(_ThreadFailed(thread, f"{type(exc).__name__}: {exc}"))
        return report

    def _tell(self, message: Any) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            pass  # stopping: nothing left to report to


def _bus_of(ctx: Any) -> Bus:
    bus = getattr(ctx.publishers, "__self__", None)
    if not isinstance(bus, Bus):
        raise BridgeError("the bridge needs the node's bus: pass bus=, or a context whose "
                          "publishers is Bus.publisher")
    return bus
