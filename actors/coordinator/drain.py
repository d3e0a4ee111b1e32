"""Draining: a sliver deselected without a moment when the slice runs fewer instances.

A ``deselect`` (``dsmt deselect SLIVER``) reaches the coordinator as an
:class:`actors.messages.Drain` (from :mod:`actors.commander`). What
:class:`Draining` then does, in the coordinator's thread:

1. it holds the sliver in quarantine as ``draining``: its next beat, sent at
   once, says so, and placement everywhere -- here too -- gives its share to
   the peers, which install and start it;
2. meanwhile its own instances keep running: a share that placement lowers
   is not told to the app while draining (:meth:`Draining._held`);
3. at every beat it checks whether the peers serve what placement now gives
   them: each peer assigned instances of a service reports at least that
   many *ready* in its heartbeat -- processes running and passing the
   service's health check, as ``kubectl drain`` counts ready pods and Nomad
   healthy allocations (a service without a health check: running). A
   replacement that starts but never passes keeps the drain waiting, and the
   old instances serving. Once they do -- or once the drain's timeout has
   passed, or at once for a timeout of 0 -- it has the container manager
   deselect (stop the app, release the workspace: see
   :mod:`actors.container.manager`), without waiting on it;
4. the container manager's ``deselected`` ends the drain: the coordinator
   replies ``done`` with ``drained`` (the peers ran the share before the app
   stopped) and ``seconds``, and the quarantine's reason becomes
   ``deselected`` (:mod:`actors.coordinator.local`). A container manager
   that fails to deselect (``failed``) ends it too: the reply is ``failed``
   with its reason, and the sliver is back in placement.

An :class:`actors.messages.Undrain` (a ``select``) ends a drain that has not
yet asked the container manager: back in placement, nothing stopped, and the
pending deselect is replied ``failed`` (cancelled). A peer of an older DSMT,
whose beats say nothing of readiness, counts what it runs. A coordinator that
restarts forgets a drain: its sliver comes back into placement and the
deselect gets no reply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from dsmt.states import DESELECTED, FAILED

from actors.messages import Drain, Undrain

log = logging.getLogger(__name__)

DRAINING = "draining"


@dataclass
class _Drain:
    request: str | None
    started: float
    deadline: float
    stopping: bool = False  # the container manager was asked to deselect
    drained: bool = False  # ... after the peers ran the share


class Draining:
    """The coordinator's part that drains its sliver (see the module docstring)."""

    _draining: _Drain | None = None

    def _drain(self, message: Drain) -> None:
        if self.container_path is None:
            return self._reply("deselect", message.request, "failed",
                               "this sliver has no container manager", None)
        if self.quarantine.reason() == DESELECTED:
            return self._reply("deselect", message.request, "done", None,
                               {"state": DESELECTED, "already": True})
        if self._draining is not None:
            return self._reply("deselect", message.request, "failed",
                               "a deselect of this sliver is already under way", None)
        now = self.ctx.clock.monotonic()
        self._draining = _Drain(message.request, now, now + max(0.0, message.timeout))
        self.quarantine.hold(DRAINING)
        log.warning("%s: draining: out of placement, stopping once the peers run its share "
                    "(at most %ss)", self.path, message.timeout)
        self._quarantine_changed()
        self.publish_status_detail()
        self._drain_step()

    def _undrain(self, message: Undrain) -> None:
        drain = self._draining
        if drain is None or drain.stopping:
            return  # nothing to cancel, or too late: the container manager's select decides
        self._draining = None
        self.quarantine.release()
        self._reply("deselect", drain.request, "failed", "cancelled by select", None)
        log.warning("%s: drain cancelled by select: back in placement", self.path)
        self._quarantine_changed()
        self.publish_status_detail()

    def _held(self, service: str, count: int) -> bool:
        """While draining, a share placement lowers is kept: the app runs it until the end."""
        drain = self._draining
        return drain is not None and not drain.stopping and count < self.share.get(service, 0)

    def _drain_step(self) -> None:
        """Deselect once the peers serve the share, or once the timeout has passed."""
        drain = self._draining
        if drain is None or drain.stopping:
            return
        ready = self.world.ready()
        moved = all(ready.get(sliver, {}).get(name, 0) >= count
                    for name, placed in self.assignment.items()
                    for sliver, count in placed.counts.items() if sliver != self.ctx.sliver)
        if not moved and self.ctx.clock.monotonic() < drain.deadline:
            return
        drain.stopping, drain.drained = True, moved
        ref = self.ctx.registry.get(self.container_path)
        if ref is None:
            self._drain_ended(FAILED, f"no container manager at {self.container_path}")
            self.quarantine.release()
            self._quarantine_changed()
            return
        log.warning("%s: %s: deselecting", self.path, "the peers serve its share" if moved
                    else "drain timed out")
        ref.proxy().deselect()  # not waited for: its state change ends the drain

    def _drain_ended(self, state: str, reason: str | None) -> None:
        """The container manager moved to ``state``: a drain that asked it ends (replied)."""
        drain = self._draining
        if drain is None or not drain.stopping or state not in (DESELECTED, FAILED):
            return
        self._draining = None
        if state == FAILED:
            self._reply("deselect", drain.request, "failed", reason, None)
            return
        seconds = round(self.ctx.clock.monotonic() - drain.started, 2)
        self._reply("deselect", drain.request, "done", None,
                    {"state": DESELECTED, "drained": drain.drained, "seconds": seconds})

    def _drain_detail(self) -> dict[str, Any] | None:
        drain = self._draining
        if drain is None:
            return None
        now = self.ctx.clock.monotonic()
        return {"for": round(now - drain.started, 1), "stopping": drain.stopping,
                "timeout_in": round(max(0.0, drain.deadline - now), 1)}
