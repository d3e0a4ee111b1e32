"""The coordinator actor: keeps the slice's plan, watches the slice, and runs this sliver's share.

Leaderless (DESIGN.md §5): every sliver's coordinator does the same thing
from the same broadcast state, so no sliver is special. This actor composes
single-purpose parts and owns the decisions that need all of them:

- the plan (:class:`~actors.coordinator.plans.PlanKeeper`): a newer plan,
  from the plan channel or a verified command, is adopted, persisted and
  applied; a bad one is counted (``bad_plans``) and shown as ``plan_error``;
  a peer announcing an older version makes us re-publish ours;
- heartbeats, sent by a :class:`~actors.coordinator.beats.Beater` thread
  that nothing else blocks, everyone's read into an
  :class:`actors.world.WorldView` (only dead slivers' shares move; see
  there for suspicion vs death); ``leaving: true`` on a graceful stop;
- scaling (:class:`~actors.coordinator.scaler.Scaler`) over the app's metric,
  sampled by a :class:`actors.metrics.MetricSampler` thread;
- quarantine (:class:`~actors.coordinator.quarantine.Quarantine`): after
  ``quarantine_after`` failed agent jobs in a row this sliver announces
  itself quarantined for ``quarantine_for`` s; placement everywhere skips it;
  and for as long as the container manager at ``container`` is
  ``deselected`` (its ``deselect()`` has stopped the app and released the
  workspace): the peers then run this sliver's share. Once it is selected
  again (and the app restarted) every share is told again and every install
  asked again;
- the hub reader thread (:func:`~actors.coordinator.reader.start_reader`).

**Placement.** From the members that are not dead, every coordinator
computes :func:`actors.placement.place` and tells the app
:class:`actors.messages.Assign` with its own share when that changes; the
agent installs a service here only for a share or a warm standby
(:func:`actors.placement.installs`). Nothing is assigned or installed for
``settle`` seconds after start, so a starting sliver hears its peers first;
then the shares go to the app before the install (so the app never runs the
plan's full ``replicas`` here, and a restarted node re-adopts exactly its
share). ``overshoot`` (instances running above the target, as the beats
report them) is in the status detail and ``inspect()``, with its maximum.

**Plan commands.** A verified :class:`actors.messages.PlanCommand` (deploy,
undeploy, scale) becomes a new plan version, adopted, broadcast, and
replied to on ``layout.reply(request)`` (``result {"plan_version": n}``).

Threads: the hub reader (a ``Batch`` of events per wake-up) and the beater
(a tick that carries how late its beat was) only ``tell()`` the actor;
everything else runs in its thread. Without a bus (unit tests), no reader.

Status: ``requested`` → ``initiated`` (plan loaded) → ``instantiated`` →
``running``, re-published when the share or the plan changes; ``failed``
if neither a persisted nor the configured plan can be read.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from dsmt.actor import Actor, Origin, StateChanged, tell
from dsmt.errors import DsmtError
from dsmt.event import RECORD, Address, Event
from dsmt.reader import HubReader
from dsmt.states import DESELECTED, FAILED, INITIATED, INSTANTIATED, REQUESTED, RUNNING

from actors import placement
from actors.coordinator import beats
from actors.coordinator.beats import Beater, Tick
from actors.coordinator.drain import Draining
from actors.coordinator.local import LocalComponents
from actors.coordinator.plans import PlanKeeper
from actors.coordinator.quarantine import Quarantine
from actors.coordinator.reader import Batch, Seen, start_reader
from actors.coordinator.scaler import Scaler
from actors.messages import Assign, Deploy, Drain, PlanCommand, Undeploy, Undrain
from actors.metrics import MetricSampler
from actors.plan import Plan, Service
from actors.world import WorldView

log = logging.getLogger(__name__)
READER_STOP = 2.0  # seconds to wait for the hub reader thread to end


class Coordinator(Draining, LocalComponents, Actor):
    def __init__(self, origin: Origin, *, plan: str | Path | None = None, agent: str,
                 app: str | None = None, workspace: str | Path | None = None,
                 labels: tuple[str, ...] = (), heartbeat: float = 1.0, suspect_after: int = 3,
                 dead_after: float = 10.0, settle: float | None = None,
                 quarantine_after: int = 3, quarantine_for: float = 60.0,
                 standby: int | None = None, bus: Any = None, container: str | None = None,
                 **config: Any) -> None:
        super().__init__(origin, plan=None if plan is None else str(plan), agent=agent,
                         app=app, workspace=None if workspace is None else str(workspace),
                         labels=list(labels), heartbeat=heartbeat, suspect_after=suspect_after,
                         dead_after=dead_after, quarantine_after=quarantine_after,
                         quarantine_for=quarantine_for, container=container, **config)
        self.agent_path = agent
        self.container_path = container
        self.app_path = app or f"/{origin.ctx.sliver}/app"
        self.labels = tuple(labels)
        self.heartbeat = heartbeat
        self.settle = 1.5 * heartbeat if settle is None else settle
        self.standby = standby
        self.bus = bus
        self.plans = PlanKeeper(None if plan is None else Path(plan),
                                None if workspace is None else Path(workspace), origin.path)
        self.world = WorldView(self.ctx.clock, heartbeat, suspect_after, dead_after,
                               own=origin.ctx.sliver)
        self.scaler = Scaler(origin.path)
        self.epoch = secrets.token_hex(4)
        self.assignment: placement.Assignment = {}
        self.share: dict[str, int] = {}
        self.sampler = MetricSampler(heartbeat, name=f"metrics-{origin.path}")
        self._ports: dict[str, list[int]] = {}
        self.running_here: dict[str, int] = {}
        self.ready_here: dict[str, int] = {}
        self.overshoot: dict[str, int] = {}
        self.max_overshoot = 0
        self.quarantine = Quarantine(self.ctx.clock, quarantine_after, quarantine_for)
        self._started = 0.0
        self._requested: dict[str, Service] = {}  # what the agent was asked to install
        self._beater: Beater | None = None
        self._reader: HubReader | None = None

    @property
    def plan(self) -> Plan:
        return self.plans.plan

    # --- hooks (actor thread) ----------------------------------------------------------------

    def on_start(self) -> None:
        self.change_state(REQUESTED)
        self._started = self.ctx.clock.monotonic()
        try:
            self.plans.load_initial()
        except DsmtError as exc:
            log.error("%s: %s", self.path, exc)
            self.change_state(FAILED, str(exc))
            return
        self.change_state(INITIATED, plan_version=self.plan.version)
        self._resume_drain()  # a drain under way when we (or the node) stopped
        self.ctx.registry.observe(self.agent_path, self.actor_ref)
        self.ctx.registry.observe(self.app_path, self.actor_ref)
        if self.container_path is not None:
            self.ctx.registry.observe(self.container_path, self.actor_ref)
            self._ask_state(self.container_path)  # deselected before we started?
        self._reader = start_reader(self.bus, self.ctx, self.actor_ref, self.path)
        self.sampler.start()
        self.change_state(INSTANTIATED, plan_version=self.plan.version)
        ref, clock = self.actor_ref, self.ctx.clock
        self._beater = Beater(
            self.heartbeat, self.ctx.layout.heartbeat(self.ctx.sliver), clock,
            publishers=self.ctx.publishers,
            sender=Address(f"{self.component}.heartbeat", self.ctx.sliver),
            on_sent=lambda late: tell(ref, Tick(late, clock.monotonic())),
            metrics=self.sampler.snapshot, name=self.path)
        self.world.beat(self.ctx.sliver, self._refresh_beat())
        self._beater.start()
        self.change_state(RUNNING, **self._detail())

    def on_stop(self) -> None:
        self._close(leaving=True)

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._close(leaving=False)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Tick):
            return self._tick(message)
        if isinstance(message, Batch):
            for seen in message:
                self._seen(seen)
            return None
        if isinstance(message, StateChanged):
            return self._observed(message)
        if isinstance(message, PlanCommand):
            return self._command(message)
        if isinstance(message, Drain):
            return self._drain(message)
        if isinstance(message, Undrain):
            return self._undrain(message)
        return super().on_receive(message)

    def inspect(self) -> dict[str, Any]:
        snapshot = super().inspect()
        snapshot.update(
            plan_version=self.plan.version, services=sorted(self.plan.services),
            plan_error=self.plans.error, world=self.world.summary(),
            view=self.world.health(), suspected=self.world.suspected(), dead=self.world.dead(),
            beats=None if self._beater is None else self._beater.stats(),
            installs={n: s.version for n, s in self._requested.items()},
            assignment={n: dict(p.counts) for n, p in self.assignment.items()},
            share=dict(self.share), replicas=dict(self.scaler.replicas),
            overshoot=dict(self.overshoot), max_overshoot=self.max_overshoot,
            quarantined=self.quarantine.reason(), scaling=self.scaler.detail(),
            draining=self._drain_detail())
        return snapshot

    # --- the plan ----------------------------------------------------------------------------

    def _adopt(self, text: str, source: str) -> bool:
        """Take ``text`` as the plan if it parses and is newer; True if adopted."""
        try:
            old = self.plans.adopt(text, source)
        except DsmtError as exc:
            self.count("bad_plans")
            log.error("%s: rejected a plan from %s: %s", self.path, source, exc)
            return False
        if old is None:
            return False
        new = self.plan
        self.count("plans_adopted")
        self.scaler.forget_changed(old, new)
        for name in old.services:
            if name not in new.services:
                self._tell(self.agent_path, Undeploy(name))
                self.share.pop(name, None)
                self._requested.pop(name, None)
        self._sample_targets()
        self._place()
        self._refresh_beat()  # the next beat already says the new version
        self.publish_status_detail()
        return True

    def _publish_plan(self) -> None:
        if self.publisher is None or not self.plan.version:
            return
        self.publisher.publish(self.ctx.layout.plan(), RECORD,
                               {**self.plans.record(), "from": self.ctx.sliver}, retain=True)
        self.count("plan_broadcasts")

    def _install(self) -> None:
        """Ask the agent for the services this sliver runs or is a warm standby of."""
        wanted = [name for name in placement.installs(self.assignment, self.ctx.sliver,
                                                      self.standby)
                  if self._requested.get(name) != self.plan.services[name]]
        for name in wanted:
            self._requested[name] = self.plan.services[name]
        if wanted:
            self.count("install_requests", len(wanted))
            self._tell(self.agent_path, Deploy(self.plan, wanted))

    def _command(self, message: PlanCommand) -> None:
        """A verified plan command: a new plan version, adopted, broadcast, and replied to."""
        args = message.args if isinstance(message.args, dict) else {}
        source = f"command {message.request}"
        try:
            text = self.plans.command_plan(message.kind, args, source)
        except DsmtError as exc:
            log.warning("%s: plan command %s refused: %s", self.path, message.kind, exc)
            self._reply(message.kind, message.request, "failed", str(exc), None)
            return
        if not self._adopt(text, source):
            self._reply(message.kind, message.request, "failed",
                        self.plans.error or "plan not adopted", None)
            return
        self._publish_plan()
        self._reply(message.kind, message.request, "done", None,
                    {"plan_version": self.plan.version})

    def _reply(self, command: str, request: str | None, outcome: str, reason: str | None,
               result: Any) -> None:
        """The outcome of a forwarded command, on its reply channel (and counted)."""
        if request is None or self.publisher is None:
            return
        self.count(f"commands.{command}.{outcome}")
        self.publisher.publish(self.ctx.layout.reply(request), RECORD, {
            "request": request, "sliver": self.ctx.sliver, "command": command,
            "outcome": outcome, "reason": reason, "result": result})

    # --- the world -------------------------------------------------------------------------

    def _seen(self, seen: Seen) -> None:
        event: Event = seen.event
        clock = self.ctx.clock
        if seen.at is not None:
            self.world.late(clock.monotonic() - seen.at)  # waited in our mailbox
        layout = self.ctx.layout
        payload = event.payload if isinstance(event.payload, dict) else {}
        if event.channel == layout.plan():
            text, version = payload.get("toml"), payload.get("version")
            if isinstance(text, str) and isinstance(version, int) and version > self.plan.version:
                self._adopt(text, f"{layout.plan()} from {event.sender}")
            return
        sliver = layout.parse_heartbeat(event.channel)
        if sliver is None or sliver == self.ctx.sliver:
            return
        age = max(0.0, clock.wall() - float(event.ts))
        transit = None if seen.wall is None else seen.wall - float(event.ts)
        change = self.world.beat(sliver, payload, age, transit)
        scaling = payload.get("scaling")
        merged = isinstance(scaling, dict) and any(
            [self.scaler.merge(self.plan, name, entry) for name, entry in scaling.items()])
        version = payload.get("plan_version")
        if (isinstance(version, int) and version < self.plan.version
                and not payload.get("leaving")):
            if self.plans.rebroadcast_due(self.ctx.clock.monotonic(), self.heartbeat):
                self._publish_plan()
        if change is not None or merged:
            if not self._place() and change is not None:
                self.publish_status_detail()  # e.g. a peer back from the dead: live again

    def _tick(self, tick: Tick) -> None:
        """A beat went out: note how late we are, age the view, place."""
        self.world.late(tick.late)
        self.world.late(self.ctx.clock.monotonic() - tick.at)
        self.world.beat(self.ctx.sliver, self._refresh_beat())
        if self.world.check():
            self.publish_status_detail()
        self._place()
        self._drain_step()

    def _refresh_beat(self) -> dict[str, Any]:
        """The content of our next beats, handed to the beater; returned too."""
        content = beats.build(
            sliver=self.ctx.sliver, epoch=self.epoch, plan_version=self.plan.version,
            labels=self.labels, services=self.running_here, ready=self.ready_here,
            assigned=self.share, metrics=self.sampler.snapshot(),
            scaling=self.scaler.beat_entries(self.plan.version),
            quarantined=self.quarantine.reason(),
            restarts=self.counters.get("assign_changes", 0))
        if self._beater is not None:
            self._beater.set_content(content)
        return content

    # --- placement -------------------------------------------------------------------------

    def _place(self) -> bool:
        """Place the plan's services; True if that re-published this actor's status."""
        if not self.plan.services or self.state == FAILED:
            return False
        live = self.world.live()
        settled = self.settled
        decided = False
        for service in self.plan.services.values():
            if service.scaling is not None:
                stepped = self.scaler.step(
                    service, [self.world.members[s].beat for s in sorted(live)], settled,
                    self.ctx.clock.wall(), self.ctx.sliver)
                if stepped:
                    self.count("scaling_decisions")
                decided = stepped or decided
        self.assignment = placement.place(self.plan.services.values(), self.world.placeable(),
                                          self.world.quarantined(), self.scaler.replicas)
        self.overshoot = placement.overshoot(self.assignment, self.world.running())
        self.max_overshoot = max([self.max_overshoot, *self.overshoot.values()])
        if not settled:
            return False  # still hearing from the peers: run nothing yet
        share = placement.share(self.assignment, self.ctx.sliver)
        changed = decided
        for name, count in share.items():
            if self.share.get(name) != count and not self._held(name, count):
                self.share[name] = count
                self.count("assign_changes")
                self._tell(self.app_path, Assign(name, count))
                changed = True
        self._install()  # after the shares: the app must know its share first
        if changed:
            self._refresh_beat()
            self.publish_status_detail()
        return changed

    @property
    def settled(self) -> bool:
        """``settle`` seconds since start: the peers heard, the view may be acted on."""
        return self.ctx.clock.monotonic() - self._started >= self.settle

    def _sample_targets(self) -> None:
        self.sampler.set_targets({
            name: (s.scaling.metric, self._ports.get(name, ()))
            for name, s in self.plan.services.items() if s.scaling is not None})

    # --- helpers ---------------------------------------------------------------------------

    def _detail(self) -> dict[str, Any]:
        return {"plan_version": self.plan.version, "share": dict(self.share),
                "live": sorted(self.world.placeable()), "suspected": self.world.suspected(),
                "dead": self.world.dead(), "overshoot": dict(self.overshoot),
                "quarantined": self.quarantine.reason(), "scaling": self.scaler.detail()}

    def publish_status_detail(self) -> None:
        """Re-publish the current state with the current share (not a transition)."""
        if self.state == RUNNING:
            self.detail = self._detail()
            self.publish_status()

    def _tell(self, path: str, message: Any) -> None:
        ref = self.ctx.registry.get(path)
        if ref is None:
            if not (path == self.app_path and self.quarantine.reason() == DESELECTED):
                log.error("%s: nobody at %s to tell %s", self.path, path,
                          type(message).__name__)  # (while deselected the app is stopped)
            return
        tell(ref, message)

    def _close(self, leaving: bool) -> None:
        if self._beater is not None:
            goodbye = self._refresh_beat() if leaving and self.state != FAILED else None
            self._beater.stop(goodbye)
        self.sampler.stop()
        if self._reader is not None:
            self._reader.close(READER_STOP)
