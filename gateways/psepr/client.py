"""A PsEPR client: connect to a router, log in, publish events, hold leases.

Usage::

    client = Client([("127.0.0.1", 23345)], "my-service", "secret", instance="7")
    client.start()
    sub = client.lease("/org/dsmt/ns/deployment/", on_event)   # on_event(event)
    client.publish(client.make("/org/dsmt/x/", ATTRIBUTE, {"field": "a", "value": "1"}))
    ...
    client.close()

Threads: the client runs its own asyncio loop in a daemon thread. Every
public method is thread-safe and returns at once (so a pykka actor can call
it); callbacks (``on_event`` of a lease, ``on_state``) run in the client's
thread, must be quick (an actor just ``tell()``\\s itself), and an exception
they raise is logged and otherwise ignored.

Connection (DESIGN.md §4): the routers are tried in random order with a
pause (default 1 s) after each failure; a refused login is logged and the
next router is tried. With ``reconnect_max`` the pause doubles after each
failure up to that many seconds, and is back to ``reconnect_pause`` once a
login succeeds (exponential backoff; without it the pause is constant).
After every (re)connection all leases are requested again. Events
published while disconnected wait in a bounded buffer (``buffer`` events,
oldest dropped and counted).

Leases follow :mod:`gateways.psepr.lease_machine`: renewed at 80 % of the
granted time, an unanswered request retried after 20 s, at most 10 tries
(``timing`` changes these). A delivered event is passed to the callback of
each of the client's leases whose prefix (and type, if set) it matches.

Gathering (``gather`` seconds, 0 = off; the bridge uses
:data:`dsmt.reader.GATHER`), by the rule of :class:`dsmt.reader.HubReader`:
once the router's stanzas come fast enough for a window to gather
:data:`dsmt.reader.PAYS` of them, the connection stops reading for
``gather`` after each read, so the next read takes everything that came
meanwhile, and goes on so while each such read brings that many: one
wake-up of the client thread per window instead of one per event, at most
``gather`` later. Slower streams are read as they come.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import ssl as _ssl
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from dsmt import channels
from dsmt.errors import DsmtError
from dsmt.event import LEASE, Address, Event, Sequencer

from gateways.psepr._loop import new_event_loop
from gateways.psepr import lease_machine as lm
from gateways.psepr import stream
from gateways.psepr._client_protocol import ClientProtocol, LoginRefused

__all__ = [
    "Client", "Subscription", "LoginRefused", "REGISTRY",
    "CONNECTING", "CONNECTED", "DISCONNECTED", "CLOSED",
]

log = logging.getLogger(__name__)
# Its own generator: the global one is the application's (and seeded by tests).
_rng = random.Random()

REGISTRY = "psepr_registry"

# Client states reported to ``on_state``.
CONNECTING = "connecting"
CONNECTED = "connected"
DISCONNECTED = "disconnected"
CLOSED = "closed"


@dataclass
class Subscription:
    """A lease held by the client, as seen by its user."""

    identifier: str
    prefix: str
    type: str | None
    callback: Callable[[Event], Any]
    machine: lm.ClientLease
    error: str | None = None  # why the router refused it (state "refused")
    echo: bool = True  # False: the router is asked not to send our own events back
    _answered: threading.Condition = field(default_factory=threading.Condition, repr=False,
                                           compare=False)

    @property
    def state(self) -> str:
        return self.machine.state

    def wait_granted(self, timeout: float) -> bool:
        """Wait until the router grants the lease (True), or refuses it for good, or
        ``timeout`` seconds pass (False). From any thread but the client's."""
        with self._answered:
            self._answered.wait_for(lambda: self.state == lm.GRANTED or self.error is not None,
                                    timeout)
        return self.state == lm.GRANTED

    def _answer(self) -> None:
        """The router answered the lease (client thread): wake whoever waits for it."""
        with self._answered:
            self._answered.notify_all()

    @property
    def granted(self) -> float | None:
        return self.machine.granted


class Client:
    """A thread-safe PsEPR client with its own event loop thread."""

    def __init__(
        self,
        routers: list[tuple[str, int]],
        service: str,
        password: str,
        *,
        instance: str | None = None,
        timing: lm.Timing = lm.Timing(),
        reconnect_pause: float = 1.0,
        reconnect_max: float | None = None,
        ssl: _ssl.SSLContext | None = None,
        buffer: int = 10000,
        on_state: Callable[[str], Any] | None = None,
        max_stanza: int = 65536,
        gather: float = 0.0,
    ) -> None:
        if not routers:
            raise ValueError("no router to connect to")
        self.routers = list(routers)
        self.address = Address(service, instance)
        self.sequencer = Sequencer(self.address)
        self.state = DISCONNECTED
        self.router: tuple[str, int] | None = None
        self.stats: collections.Counter = collections.Counter()
        self._password = password
        self._timing = timing
        self._pause = reconnect_pause
        self._pause_max = max(reconnect_pause, reconnect_max or reconnect_pause)
        self._ssl = ssl
        self._max_stanza = max_stanza
        self.gather = gather
        self._on_state = on_state
        self._subs: dict[str, Subscription] = {}
        self._pending: collections.deque[Event] = collections.deque(maxlen=buffer)
        self._proto: ClientProtocol | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._connected = threading.Event()
        self._loop = new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"psepr-{service}", daemon=True)
        self._main: asyncio.Task | None = None

    # ------------------------------------------------------------------ public, thread-safe

    def start(self) -> "Client":
        """Start the client thread; it connects in the background."""
        self._thread.start()
        return self

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until logged in to a router (True) or ``timeout`` passed (False)."""
        return self._connected.wait(timeout)

    def make(self, channel: str, type: str, payload: Any, **kw) -> Event:
        """A new event from this client (id, seq, epoch stamped)."""
        return self.sequencer.make(channel, type, payload, **kw)

    def publish(self, event: Event) -> None:
        """Send ``event`` (buffered while disconnected)."""
        self._call(self._publish, event)

    def lease(self, prefix: str, callback: Callable[[Event], Any], *, type: str | None = None,
              duration: float = 60.0, identifier: str | None = None,
              echo: bool = True) -> Subscription:
        """Hold a lease on ``prefix``; ``callback(event)`` gets every matching event.

        ``echo=False`` asks the router not to deliver this client's own events
        through this lease (a DSMT addition, see :mod:`gateways.psepr.routes`;
        a router that does not know it sends them anyway).

        Raises ChannelError for an invalid prefix, and for ``/``: a lease is
        an event sent to its channel, and the PsEPR XML codec accepts no
        event on ``/`` (see the report of the issue).
        """
        channels.validate(prefix)
        identifier = identifier or uuid.uuid4().hex
        machine = lm.ClientLease(identifier, prefix, type, duration, self._timing)
        sub = Subscription(identifier, prefix, type, callback, machine, echo=echo)
        self._call(self._add_lease, sub)
        return sub

    def unlease(self, sub: Subscription | str) -> None:
        """Give a lease up (tells the router if connected)."""
        identifier = sub if isinstance(sub, str) else sub.identifier
        self._call(self._remove_lease, identifier)

    def subscriptions(self) -> list[Subscription]:
        return list(self._subs.values())

    def close(self, timeout: float = 5.0) -> None:
        """Disconnect and stop the client thread. Idempotent."""
        if self._thread.is_alive() and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._shutdown)
            except RuntimeError:
                pass
            self._thread.join(timeout)

    def __enter__(self) -> "Client":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ loop side

    def _call(self, fn: Callable, *args) -> None:
        if self._loop.is_closed():
            raise RuntimeError("client is closed")
        self._loop.call_soon_threadsafe(fn, *args)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._main = self._loop.create_task(self._connect_forever())
        try:
            self._loop.run_until_complete(self._main)
        except asyncio.CancelledError:
            pass
        finally:
            self._set_state(CLOSED)
            self._loop.close()

    def _shutdown(self) -> None:
        if self._proto is not None:
            self._proto.close()
        if self._main is not None:
            self._main.cancel()

    async def _connect_forever(self) -> None:
        loop = asyncio.get_running_loop()
        pause = self._pause
        while True:
            for host, port in _rng.sample(self.routers, len(self.routers)):
                self._set_state(CONNECTING)
                self._proto = None
                try:
                    _, proto = await asyncio.wait_for(loop.create_connection(
                        lambda: ClientProtocol(self, host), host, port, ssl=self._ssl), 10.0)
                    self._proto = proto
                    await asyncio.wait_for(proto.logged_in, 10.0)
                except (OSError, asyncio.TimeoutError, DsmtError, ConnectionError) as exc:
                    self.stats["connect_failures"] += 1
                    log.info("psepr client %s: %s:%d: %s", self.address, host, port, exc)
                    if self._proto is not None:
                        self._proto.close()
                        self._proto = None
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, self._pause_max)
                    continue
                pause = self._pause
                self.router = (host, port)
                self._on_connected()
                await proto.lost
                self._on_disconnected()
                await asyncio.sleep(self._pause)

    def _on_connected(self) -> None:
        now = self._loop.time()
        self._set_state(CONNECTED)
        self._connected.set()
        for sub in self._subs.values():
            self._act(sub, sub.machine.connected(now))
        while self._pending and self._proto is not None:
            self._proto.send_event(self._pending.popleft())
        self._schedule()

    def _on_disconnected(self) -> None:
        self._proto = None
        self._connected.clear()
        for sub in self._subs.values():
            sub.machine.disconnected()
        self._set_state(DISCONNECTED)

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                log.exception("psepr client %s: on_state callback failed", self.address)

    def _publish(self, event: Event) -> None:
        if self._proto is not None and self.state == CONNECTED:
            self._proto.send_event(event)
        else:
            if len(self._pending) == self._pending.maxlen:
                self.stats["dropped"] += 1
            self._pending.append(event)

    def _add_lease(self, sub: Subscription) -> None:
        old = self._subs.get(sub.identifier)
        self._subs[sub.identifier] = sub
        if old is not None:
            sub.machine = old.machine  # a new callback for the same lease
        if self.state == CONNECTED and old is None:
            self._act(sub, sub.machine.connected(self._loop.time()))
            self._schedule()

    def _remove_lease(self, identifier: str) -> None:
        sub = self._subs.pop(identifier, None)
        if sub is not None and self.state == CONNECTED and self._proto is not None:
            self._proto.send_event(self._lease_event(sub, "unregister"))

    def _lease_event(self, sub: Subscription, op: str) -> Event:
        payload = {"op": op, "identifier": sub.identifier,
                   "duration": 0.0 if op == "unregister" else sub.machine.duration,
                   "type": sub.type}
        if not sub.echo and op == "register":
            payload["echo"] = False  # only when asked: the 2005 payload otherwise
        return self.sequencer.make(sub.prefix, LEASE, payload)

    def _act(self, sub: Subscription, action: str) -> None:
        if action == lm.SEND and self._proto is not None:
            self.stats["lease_requests"] += 1
            self._proto.send_event(self._lease_event(sub, "register"))
        elif action == lm.GIVE_UP:
            log.error("psepr client %s: lease %s on %s: no answer after %d tries; given up",
                      self.address, sub.identifier, sub.prefix, self._timing.max_tries)

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        dues = [s.machine.due for s in self._subs.values() if s.machine.due is not None]
        if dues:
            self._timer = self._loop.call_at(min(dues), self._tick)

    def _tick(self) -> None:
        self._timer = None
        now = self._loop.time()
        for sub in list(self._subs.values()):
            self._act(sub, sub.machine.tick(now))
        self._schedule()

    def _refused(self, el) -> None:
        """The router answered an event with an error (e.g. its access list forbids it)."""
        condition, text = stream.message_error_reason(el)
        self.stats["refused"] += 1
        try:
            event = stream.message_event(el)
        except DsmtError:
            event = None
        if event is not None and event.type == LEASE and isinstance(event.payload, dict):
            sub = self._subs.get(event.payload.get("identifier"))
            if sub is not None and sub.machine.refuse() == lm.GIVE_UP:
                sub.error = f"{condition}: {text}" if text else condition
                sub._answer()
                # Not an error log: the owner sees the state (the bridge in its status,
                # `dsmt events` as its one-line failure); the router logs it as a warning.
                log.info("psepr client %s: lease on %s refused: %s", self.address,
                         sub.prefix, sub.error)
                self._schedule()
                return
        what = "an event" if event is None else f"an event on {event.channel}"
        log.warning("psepr client %s: router refused %s: %s %s", self.address, what,
                    condition, text)

    def _received(self, event: Event) -> None:
        self.stats["received"] += 1
        if event.type == LEASE and isinstance(event.payload, dict) \
                and event.payload.get("op") == "lease":
            sub = self._subs.get(event.payload.get("identifier"))
            if sub is not None:
                sub.machine.grant(event.payload["duration"], self._loop.time())
                sub._answer()
                self._schedule()
            return
        for sub in list(self._subs.values()):
            if channels.is_under(event.channel, sub.prefix) \
                    and (sub.type is None or sub.type == event.type):
                try:
                    sub.callback(event)
                except Exception:
                    log.exception("psepr client %s: callback of lease %s failed",
                                  self.address, sub.identifier)
