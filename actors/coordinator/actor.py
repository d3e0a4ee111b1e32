"""The coordinator actor: keeps the slice's plan, watches the slice, and runs this sliver's share.

Leaderless (DESIGN.md §5): every sliver's coordinator does the same thing
from the same broadcast state, so no sliver is special. This actor composes
single-purpose parts and owns the decisions that need all of them:

- the plan (:class:`actors.coordinator.plans.PlanKeeper`): a plan newer
  than ours, from the plan channel or a verified command, is adopted,
  persisted and applied; a bad one is counted (``bad_plans``), logged and
  shown in ``inspect()`` as ``plan_error``, and changes nothing; a peer
  announcing an older version makes us re-publish ours;
- heartbeats (:mod:`actors.coordinator.beats`) published every
  ``heartbeat`` seconds, and everyone's read into an
  :class:`actors.world.WorldView` (alive → suspected after
  ``suspect_after`` missed beats → dead ``dead_after`` later; a beat
  re-admits). On a graceful stop it publishes ``leaving: true``;
- scaling (:class:`actors.coordinator.scaler.Scaler`) over the app's own
  metric, sampled here by a :class:`actors.metrics.MetricSampler` thread;
- the hub reader thread (:class:`actors.coordinator.reader.HubReader`).

**Placement.** From the alive members (labels, quarantine) every
coordinator computes :func:`actors.placement.place` and tells the app
:class:`actors.messages.Assign` with its own share when that changes. The
deployment agent installs every service this sliver is eligible for (so a
sliver that inherits an instance only has to start it); the share decides
what runs. Nothing is assigned or installed for ``settle`` seconds after
start, so a starting sliver hears its peers first; then the shares go to the
app before the install (so the app never runs the plan's full ``replicas``
here, and a restarted node re-adopts exactly its share). ``overshoot``
(instances running above the target, as the beats report them) is in the
status detail and ``inspect()``, with its maximum.

**Quarantine.** After ``quarantine_after`` failed jobs of the deployment
agent in a row, this sliver announces itself quarantined for
``quarantine_for`` seconds with the reason; placement everywhere skips it.

**Plan commands.** A verified :class:`actors.messages.PlanCommand` (deploy,
undeploy, scale) becomes a new plan version, adopted, broadcast, and
replied to on ``layout.reply(request)`` in the commander's reply format,
with ``result {"plan_version": n}`` when done.

Threads: the hub reader and the tick timer only ``tell()`` the actor;
everything else runs in the actor's thread. Without a bus (unit tests) the
reader is absent and events are told as :class:`Seen`.

Status: ``requested`` → ``initiated`` (plan loaded) → ``instantiated`` →
``running``, re-published when the share or the plan changes; ``failed``
if neither a persisted nor the configured plan can be read.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from dsmt.actor import Actor, Origin, StateChanged
from dsmt.errors import DsmtError
from dsmt.event import HEARTBEAT, RECORD, Event
from dsmt.states import FAILED, INITIATED, INSTANTIATED, REQUESTED, RUNNING

from actors import placement
from actors.coordinator import beats
from actors.coordinator.plans import PlanKeeper
from actors.coordinator.reader import HubReader, Seen, tell
from actors.coordinator.scaler import Scaler
from actors.messages import Assign, Deploy, PlanCommand, Undeploy
from actors.metrics import MetricSampler
from actors.plan import Plan
from actors.world import WorldView

log = logging.getLogger(__name__)


class _Tick:
    pass


class Coordinator(Actor):
    def __init__(self, origin: Origin, *, plan: str | Path | None = None, agent: str,
                 app: str | None = None, workspace: str | Path | None = None,
                 labels: tuple[str, ...] = (), heartbeat: float = 1.0, suspect_after: int = 3,
                 dead_after: float = 10.0, settle: float | None = None,
                 quarantine_after: int = 3, quarantine_for: float = 60.0, bus: Any = None,
                 **config: Any) -> None:
        super().__init__(origin, plan=None if plan is None else str(plan), agent=agent,
                         app=app, workspace=None if workspace is None else str(workspace),
                         labels=list(labels), heartbeat=heartbeat, suspect_after=suspect_after,
                         dead_after=dead_after, quarantine_after=quarantine_after,
                         quarantine_for=quarantine_for, **config)
        self.agent_path = agent
        self.app_path = app or f"/{origin.ctx.sliver}/app"
        self.labels = tuple(labels)
        self.heartbeat = heartbeat
        self.settle = 1.5 * heartbeat if settle is None else settle
        self.quarantine_after = quarantine_after
        self.quarantine_for = quarantine_for
        self.bus = bus
        self.plans = PlanKeeper(None if plan is None else Path(plan),
                                None if workspace is None else Path(workspace), origin.path)
        self.world = WorldView(self.ctx.clock, heartbeat, suspect_after, dead_after)
        self.scaler = Scaler(origin.path)
        self.epoch = secrets.token_hex(4)
        self.assignment: placement.Assignment = {}
        self.share: dict[str, int] = {}
        self.sampler = MetricSampler(heartbeat, name=f"metrics-{origin.path}")
        self._ports: dict[str, list[int]] = {}
        self.running_here: dict[str, int] = {}
        self.overshoot: dict[str, int] = {}
        self.max_overshoot = 0
        self.failures = 0
        self.quarantine: tuple[float, str] | None = None
        self._started = 0.0
        self._deployed = 0
        self._timer: Any = None
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
        self.ctx.registry.observe(self.agent_path, self.actor_ref)
        self.ctx.registry.observe(self.app_path, self.actor_ref)
        self._start_reader()
        self.sampler.start()
        self.change_state(INSTANTIATED, plan_version=self.plan.version)
        self._tick()
        self.change_state(RUNNING, **self._detail())

    def on_stop(self) -> None:
        self._close(leaving=True)

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._close(leaving=False)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Tick):
            return self._tick()
        if isinstance(message, Seen):
            return self._seen(message.event)
        if isinstance(message, StateChanged):
            return self._observed(message)
        if isinstance(message, PlanCommand):
            return self._command(message)
        return super().on_receive(message)

    def inspect(self) -> dict[str, Any]:
        snapshot = super().inspect()
        snapshot.update(
            plan_version=self.plan.version, services=sorted(self.plan.services),
            plan_error=self.plans.error, world=self.world.summary(),
            assignment={n: dict(p.counts) for n, p in self.assignment.items()},
            share=dict(self.share), replicas=dict(self.scaler.replicas),
            overshoot=dict(self.overshoot), max_overshoot=self.max_overshoot,
            quarantined=self._quarantine_reason(), scaling=self.scaler.detail())
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
        self._sample_targets()
        self._place()
        self.publish_status_detail()
        return True

    def _publish_plan(self) -> None:
        if self.publisher is None or not self.plan.version:
            return
        self.publisher.publish(self.ctx.layout.plan(), RECORD,
                               {**self.plans.record(), "from": self.ctx.sliver}, retain=True)
        self.count("plan_broadcasts")

    def _apply_plan(self) -> None:
        """Install every service this sliver may run (its share decides what runs)."""
        mine = {self.ctx.sliver: self.labels}
        wanted = [s.name for s in self.plan.services.values()
                  if s.replicas != 0 and placement.eligible(s, mine)]
        self._deployed = self.plan.version
        if wanted:
            self._tell(self.agent_path, Deploy(self.plan, wanted))

    def _command(self, message: PlanCommand) -> None:
        """A verified plan command: a new plan version, adopted, broadcast, and replied to."""
        args = message.args if isinstance(message.args, dict) else {}
        source = f"command {message.request}"
        try:
            text = self.plans.command_plan(message.kind, args, source)
        except DsmtError as exc:
            log.warning("%s: plan command %s refused: %s", self.path, message.kind, exc)
            self._reply(message, "failed", str(exc), None)
            return
        if not self._adopt(text, source):
            self._reply(message, "failed", self.plans.error or "plan not adopted", None)
            return
        self._publish_plan()
        self._reply(message, "done", None, {"plan_version": self.plan.version})

    def _reply(self, message: PlanCommand, outcome: str, reason: str | None,
               result: Any) -> None:
        if message.request is None or self.publisher is None:
            return
        self.count(f"plan_commands.{outcome}")
        self.publisher.publish(self.ctx.layout.reply(message.request), RECORD, {
            "request": message.request, "sliver": self.ctx.sliver, "command": message.kind,
            "outcome": outcome, "reason": reason, "result": result})

    # --- the world -------------------------------------------------------------------------

    def _seen(self, event: Event) -> None:
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
        age = max(0.0, self.ctx.clock.wall() - float(event.ts))
        change = self.world.beat(sliver, payload, age)
        scaling = payload.get("scaling")
        merged = isinstance(scaling, dict) and any(
            [self.scaler.merge(self.plan, name, entry) for name, entry in scaling.items()])
        version = payload.get("plan_version")
        if (isinstance(version, int) and version < self.plan.version
                and not payload.get("leaving")):
            if self.plans.rebroadcast_due(self.ctx.clock.monotonic(), self.heartbeat):
                self._publish_plan()
        if change is not None or merged:
            self._place()

    def _observed(self, message: StateChanged) -> None:
        if message.path == self.app_path:
            services = message.detail.get("services") or {}
            self.running_here = {
                name: len(s.get("ports") or ()) for name, s in services.items()
                if s.get("state") in ("starting", "running", "upgrading")}
            self._ports = {name: list(s.get("ports") or ()) for name, s in services.items()
                           if s.get("state") in ("starting", "running", "upgrading")}
            self._sample_targets()
            return
        if message.path != self.agent_path:
            return
        if message.state == FAILED:
            self.failures += 1
            if self.failures >= self.quarantine_after and self.quarantine is None:
                until = self.ctx.clock.monotonic() + self.quarantine_for
                self.quarantine = (until, f"{self.failures} failed deployment jobs in a row, "
                                          f"last: {message.reason}")
                log.error("%s: quarantined for %ss: %s", self.path, self.quarantine_for,
                          self.quarantine[1])
                self._tick(reschedule=False)
        elif message.state == RUNNING:
            self.failures = 0

    def _quarantine_reason(self) -> str | None:
        if self.quarantine is None:
            return None
        if self.ctx.clock.monotonic() >= self.quarantine[0]:
            self.quarantine, self.failures = None, 0
            return None
        return self.quarantine[1]

    def _tick(self, reschedule: bool = True) -> None:
        beat = self._beat()
        if self.publisher is not None:
            self.publisher.publish(self.ctx.layout.heartbeat(self.ctx.sliver), HEARTBEAT, beat,
                                   retain=True)
        self.world.beat(self.ctx.sliver, beat)
        self.world.check()
        self._place()
        if reschedule:
            ref = self.actor_ref
            self._timer = self.ctx.clock.call_later(self.heartbeat, lambda: tell(ref, _Tick()))

    def _beat(self, leaving: bool = False) -> dict[str, Any]:
        return beats.build(
            sliver=self.ctx.sliver, epoch=self.epoch, plan_version=self.plan.version,
            labels=self.labels, services=self.running_here, assigned=self.share,
            metrics=self.sampler.snapshot(),
            scaling=self.scaler.beat_entries(self.plan.version),
            quarantined=self._quarantine_reason(),
            restarts=self.counters.get("assign_changes", 0), leaving=leaving)

    # --- placement -------------------------------------------------------------------------

    def _place(self) -> None:
        if not self.plan.services or self.state == FAILED:
            return
        live = self.world.live()
        quarantined = self.world.quarantined()
        now = self.ctx.clock.monotonic()
        settled = now - self._started >= self.settle
        decided = False
        for service in self.plan.services.values():
            if service.scaling is not None:
                stepped = self.scaler.step(
                    service, [self.world.members[s].beat for s in sorted(live)], settled,
                    self.ctx.clock.wall(), self.ctx.sliver)
                if stepped:
                    self.count("scaling_decisions")
                decided = stepped or decided
        self.assignment = placement.place(self.plan.services.values(), live, quarantined,
                                          self.scaler.replicas)
        running = {name: dict(m.beat.get("services") or {})
                   for name, m in self.world.members.items() if m.state == "alive"}
        self.overshoot = placement.overshoot(self.assignment, running)
        self.max_overshoot = max([self.max_overshoot, *self.overshoot.values()])
        if not settled:
            return  # still hearing from the peers: run nothing yet
        share = placement.share(self.assignment, self.ctx.sliver)
        changed = decided
        for name, count in share.items():
            if self.share.get(name) != count:
                self.share[name] = count
                self.count("assign_changes")
                self._tell(self.app_path, Assign(name, count))
                changed = True
        if self._deployed != self.plan.version:
            self._apply_plan()  # after the shares: the app must know its share first
        if changed:
            self.publish_status_detail()

    def _sample_targets(self) -> None:
        self.sampler.set_targets({
            name: (s.scaling.metric, self._ports.get(name, ()))
            for name, s in self.plan.services.items() if s.scaling is not None})

    # --- helpers ---------------------------------------------------------------------------

    def _detail(self) -> dict[str, Any]:
        return {"plan_version": self.plan.version, "share": dict(self.share),
                "live": sorted(self.world.live()), "overshoot": dict(self.overshoot),
                "quarantined": self._quarantine_reason(), "scaling": self.scaler.detail()}

    def publish_status_detail(self) -> None:
        """Re-publish the current state with the current share (not a transition)."""
        if self.state == RUNNING:
            self.detail = self._detail()
            self.publish_status()

    def _tell(self, path: str, message: Any) -> None:
        ref = self.ctx.registry.get(path)
        if ref is None:
            log.error("%s: nobody at %s to tell %s", self.path, path, type(message).__name__)
            return
        tell(ref, message)

    def _start_reader(self) -> None:
        bus = self.bus or getattr(self.ctx.publishers, "__self__", None)
        if bus is None or not hasattr(bus, "subscriber"):
            return
        self._reader = HubReader(bus, self.ctx.layout, self.actor_ref, self.path).start()

    def _close(self, leaving: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.sampler.stop()
        if leaving and self.publisher is not None and self.state != FAILED:
            try:
                self.publisher.publish(self.ctx.layout.heartbeat(self.ctx.sliver), HEARTBEAT,
                                       self._beat(leaving=True), retain=True)
            except Exception:
                log.exception("%s: cannot say goodbye", self.path)
        if self._reader is not None:
            self._reader.stop()
