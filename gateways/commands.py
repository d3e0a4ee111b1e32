"""Send a signed slice command through a PsEPR router and wait for its reply.

What ``dsmt restart|stop|inspect|deselect|...`` use: the operator's side of
:mod:`actors.commander`. ::

    with SliceView(routers, service, password, layout) as view:
        reply = send_command(view, key, "demo", "s1", "inspect", {"path": "/s1/app"})
        # {"request": ..., "sliver": "s1", "command": "inspect",
        #  "outcome": "done", "reason": None, "result": {...}}

Order, so no reply can be missed: lease ``layout.reply(request)`` first,
wait until the router granted it, then publish the signed
:data:`dsmt.event.COMMAND` event on ``layout.command("sliver", target)``
(target ``"*"``: the channel of every sliver), then wait for a reply.
A rejection (forged, stale, ...) is a reply too, with outcome ``rejected``;
no reply at all within ``timeout`` raises TimeoutError.

:class:`CommandRequest` is the same in steps, for callers that want every
sliver's reply to a ``"*"`` command, or to re-send the very same signed
payload as a new event (how the tests replay a command).

Threads: replies arrive in the PsEPR client's thread and are queued; every
method here may be called from any other thread.
"""

from __future__ import annotations

import queue
import time
from typing import Any, Mapping

from dsmt import channels, commands
from dsmt.channels import Layout
from dsmt.event import COMMAND, Event

from gateways.psepr.client import Client

COMPONENT = "sliver"


class CommandRequest:
    """One signed command: its reply lease, its payload, and the replies received."""

    def __init__(self, client: Client, key: bytes, layout: Layout, target: str, command: str,
                 args: Mapping[str, Any] | None = None, *, now: float | None = None) -> None:
        self.client = client
        self.layout = layout
        self.body = commands.new_body(layout.slice, target, command, args,
                                      now=time.time() if now is None else now)
        self.payload = commands.seal(key, self.body)
        sliver = None if target == commands.ALL else target
        self.channel = layout.command(COMPONENT, sliver)
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self._subscription: Any = None

    @property
    def request(self) -> str:
        return self.body.request

    def lease(self, timeout: float) -> CommandRequest:
        """Lease the reply channel and wait until it is granted (TimeoutError if not)."""
        self._subscription = self.client.lease(self.layout.reply(self.request), self._received)
        if not self._subscription.wait_granted(timeout):
            raise TimeoutError(f"the router did not grant the reply lease within {timeout}s"
                               + (f" ({self._subscription.error})"
                                  if self._subscription.error else ""))
        return self

    def send(self, payload: Mapping[str, Any] | None = None) -> Event:
        """Publish the signed command (or ``payload``) as a new event; returns it."""
        event = self.client.make(self.channel, COMMAND, dict(payload or self.payload))
        self.client.publish(event)
        return event

    def reply(self, timeout: float) -> dict[str, Any]:
        """The next reply payload; TimeoutError after ``timeout`` seconds without one."""
        try:
            return self.replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no reply to {self.body.command} ({self.request}) "
                               f"within {timeout}s") from None

    def close(self) -> None:
        """Give up the reply lease; idempotent."""
        if self._subscription is not None:
            self.client.unlease(self._subscription)
            self._subscription = None

    def __enter__(self) -> CommandRequest:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _received(self, event: Event) -> None:
        if isinstance(event.payload, dict):
            self.replies.put(event.payload)


def send_command(client_or_view: Any, key: bytes, slice: str, target: str, command: str,
                 args: Mapping[str, Any] | None = None, timeout: float = 10.0, *,
                 root: str = channels.ROOT) -> dict[str, Any]:
    """Sign and send one command; return the first reply payload (see the module docstring).

    ``client_or_view`` is a started :class:`gateways.psepr.client.Client` or
    anything with one as ``.client`` (a :class:`gateways.view.SliceView`,
    whose layout is then used). Raises TimeoutError when the lease is not
    granted or no reply comes within ``timeout`` seconds (each).
    """
    client = getattr(client_or_view, "client", client_or_view)
    layout = getattr(client_or_view, "layout", None) or Layout(slice, root)
    if layout.slice != slice:
        layout = Layout(slice, layout.root)
    with CommandRequest(client, key, layout, target, command, args) as request:
        request.lease(timeout)
        request.send()
        return request.reply(timeout)
