"""What the coordinator hears from its own sliver: the app, the agent, the container manager.

:class:`LocalComponents` is a part of :class:`actors.coordinator.Coordinator`
(its thread, its attributes): the coordinator observes the three paths in
the node registry and gets a :class:`dsmt.actor.StateChanged` for each of
their moves.

- the app: which services run here, how many of their instances are ready,
  on which ports (the heartbeat's ``services`` and ``ready``, the metric
  sampler's targets);
- the agent: a failed job counts towards a quarantine, a running one resets
  the count (:class:`~actors.coordinator.quarantine.Quarantine`);
- the container manager: while it is ``deselected`` (its ``deselect()``
  stopped the app, then released the workspace) the sliver is held in
  quarantine, so placement everywhere -- here too -- gives its share to the
  peers; nothing runs or is installed here and the app is told nothing.
  Once it is selected again (its ``select()`` restarted the app first) the
  hold ends and every share is told, every install asked, again. The
  coordinator asks for the container's state when it starts, so a sliver
  deselected before (a restarted node, a restarted coordinator) stays out.
"""

from __future__ import annotations

import logging
from typing import Any

import pykka

from dsmt.actor import StateChanged
from dsmt.states import DESELECTED, FAILED, RUNNING

log = logging.getLogger(__name__)

_RUNS = ("starting", "running", "upgrading")


class LocalComponents:
    """The coordinator's handling of its own sliver's app, agent and container states."""

    app_path: str
    agent_path: str
    container_path: str | None
    running_here: dict[str, int]
    ready_here: dict[str, int]
    _ports: dict[str, list[int]]
    share: dict[str, int]
    _requested: dict[str, Any]
    _draining: Any

    def _observed(self, message: StateChanged) -> None:
        if message.path == self.app_path:
            runs = {name: s for name, s in (message.detail.get("services") or {}).items()
                    if s.get("state") in _RUNS}
            self.running_here = {name: len(s.get("ports") or ()) for name, s in runs.items()}
            self.ready_here = {name: int(s.get("ready") or 0) for name, s in runs.items()}
            self._ports = {name: list(s.get("ports") or ()) for name, s in runs.items()}
            self._sample_targets()
            self._refresh_beat()
        elif message.path == self.container_path:
            self._container(message.state, message.reason)
        elif message.path == self.agent_path:
            if message.state == FAILED:
                reason = self.quarantine.failed(message.reason)
                if reason is not None:
                    log.error("%s: quarantined for %ss: %s", self.path,
                              self.quarantine.period, reason)
                    self._quarantine_changed()
            elif message.state == RUNNING:
                self.quarantine.succeeded()

    def _container(self, state: str, reason: str | None) -> None:
        self._drain_ended(state, reason)  # see actors.coordinator.drain
        if state == DESELECTED:
            if self.quarantine.reason() == DESELECTED:
                return
            self.quarantine.hold(DESELECTED)
            self.running_here, self.ready_here, self._ports = {}, {}, {}  # the app stopped
            self._requested.clear()  # the workspace is released
            self.share = {name: 0 for name in self.plan.services}  # nothing to tell the app
        elif self._draining is None and self.quarantine.release():
            self.share.clear()  # a new app: every share is news to it
        else:
            return
        log.warning("%s: %s", self.path, "deselected: out of placement" if
                    state == DESELECTED else "selected again: back in placement")
        self._quarantine_changed()
        self.publish_status_detail()

    def _ask_state(self, path: str) -> None:
        """Have the actor at ``path`` tell us its current state (not waited for)."""
        ref = self.ctx.registry.get(path)
        if ref is not None:
            try:
                ref.proxy().report_state(self.actor_ref)
            except pykka.ActorDeadError:
                pass  # gone: its next incarnation tells us as it starts

    def _quarantine_changed(self) -> None:
        """Say it in our next beat at once, and place again (our share goes or comes back)."""
        self.world.beat(self.ctx.sliver, self._refresh_beat())
        if self._beater is not None:
            self._beater.poke()
        self._place()
