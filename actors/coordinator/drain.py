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
whose beats say nothing of readiness, counts what it runs.

A drain survives a restart of the coordinator (or of the node): it is kept
in ``<workspace>/drain.json`` (request, start and deadline as wall times,
whether the container manager was asked) from the ``Drain`` until it ends,
and a coordinator that starts with one resumes it before its first beat --
still out of placement, the same deadline, the reply to the same request,
the peers judged only once its view has settled (a view of nobody would
count the share as moved); a container manager found deselected meanwhile
ends it. A file that cannot
be read is logged and ignored (the sliver is back in placement).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dsmt.states import DESELECTED, FAILED

from actors.messages import Drain, Undrain

log = logging.getLogger(__name__)

DRAINING = "draining"
DRAIN_FILE = "drain.json"


@dataclass
class _Drain:
    request: str | None
    started: float  # wall times: they must mean the same after a restart
    deadline: float
    stopping: bool = False  # the container manager was asked to deselect
    drained: bool = False  # ... after the peers ran the share

    @classmethod
    def loads(cls, text: str) -> _Drain:
        """The drain a file holds; ValueError naming what is wrong (json.loads' too)."""
        fields = json.loads(text)
        if not isinstance(fields, dict) or set(fields) != set(cls.__dataclass_fields__):
            raise ValueError(f"expected the fields {sorted(cls.__dataclass_fields__)}")
        drain = cls(**fields)
        if not (drain.request is None or isinstance(drain.request, str)) \
                or not all(type(t) in (int, float) for t in (drain.started, drain.deadline)) \
                or not all(type(b) is bool for b in (drain.stopping, drain.drained)):
            raise ValueError(f"a field of the wrong type in {fields}")
        return drain


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
        now = self.ctx.clock.wall()
        self._draining = _Drain(message.request, now, now + max(0.0, message.timeout))
        self._keep_drain()
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
        self._end_drain()
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
        # Not before the view settled: a coordinator just (re)started has heard no peer
        # yet, and an assignment to nobody would count as moved.
        moved = self.settled and all(ready.get(sliver, {}).get(name, 0) >= count
                                for name, placed in self.assignment.items()
                                for sliver, count in placed.counts.items()
                                if sliver != self.ctx.sliver)
        if not moved and self.ctx.clock.wall() < drain.deadline:
            return
        drain.stopping, drain.drained = True, moved
        self._keep_drain()
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
        """The container manager moved to ``state``: a drain that asked it ends (replied).

        ``deselected`` ends any drain: also one resumed after a restart whose
        container manager had finished deselecting meanwhile.
        """
        drain = self._draining
        if drain is None or state not in (DESELECTED, FAILED) \
                or (state == FAILED and not drain.stopping):
            return
        self._end_drain()
        if state == FAILED:
            self._reply("deselect", drain.request, "failed", reason, None)
            return
        seconds = round(self.ctx.clock.wall() - drain.started, 2)
        self._reply("deselect", drain.request, "done", None,
                    {"state": DESELECTED, "drained": drain.drained, "seconds": seconds})

    def _drain_detail(self) -> dict[str, Any] | None:
        drain = self._draining
        if drain is None:
            return None
        now = self.ctx.clock.wall()
        return {"for": round(now - drain.started, 1), "stopping": drain.stopping,
                "timeout_in": round(max(0.0, drain.deadline - now), 1)}

    # --- kept in the workspace (see the module docstring) -----------------------------

    def _resume_drain(self) -> None:
        """At start: take up the drain a previous incarnation left (before the first beat)."""
        path = self._drain_path()
        if path is None or not path.exists():
            return
        try:
            self._draining = _Drain.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.error("%s: ignoring %s: %s", self.path, path, exc)
            self._end_drain()
            return
        self.quarantine.hold(DRAINING)
        log.warning("%s: resuming the drain begun %.1fs ago (request %s)", self.path,
                    self.ctx.clock.wall() - self._draining.started, self._draining.request)

    def _keep_drain(self) -> None:
        path = self._drain_path()
        if path is None or self._draining is None:
            return
        part = path.with_name(path.name + ".part")
        try:
            part.write_text(json.dumps(asdict(self._draining)))
            os.replace(part, path)
        except OSError as exc:  # the drain goes on; only a restart would forget it
            log.error("%s: cannot keep the drain in %s: %s", self.path, path, exc)

    def _end_drain(self) -> None:
        self._draining = None
        path = self._drain_path()
        try:
            if path is not None:
                path.unlink(missing_ok=True)
        except OSError as exc:  # a later start would resume an ended drain: say so
            log.error("%s: cannot remove %s: %s", self.path, path, exc)

    def _drain_path(self) -> Path | None:
        workspace = self.plans.workspace
        return None if workspace is None else Path(workspace) / DRAIN_FILE
