"""The coordinator: keeps the slice's plan, watches the slice, and runs this sliver's share.

Leaderless (DESIGN.md §5): every sliver's coordinator does the same thing
from the same broadcast state, so no sliver is special.

**Plan distribution.** The plan travels as a record on ``layout.plan()``
(retained): ``{"version": int, "toml": text, "from": sliver}``. A plan newer
than ours is parsed (:func:`actors.plan.loads`: a bad one is counted, logged
and shown in ``inspect()`` as ``plan_error``, and changes nothing), written
to ``<workspace>/plan.toml`` (atomic rename) and applied. At start the
persisted plan wins over the configured one when its version is higher.
Anti-entropy: every heartbeat carries ``plan_version``; a coordinator that
sees a peer announce an older version re-publishes its plan (at most once
per heartbeat period), so a sliver that was away has the current plan
within about two heartbeat periods of its return, as long as one sliver
that knows it lives.

**World view.** Every ``heartbeat`` seconds the coordinator publishes, on
``layout.heartbeat(sliver)`` (retained), ``{sliver, epoch, plan_version,
labels, services (running here), assigned, load, quarantined, restarts}``,
and reads everyone's into an :class:`actors.world.WorldView` (alive →
suspected after ``suspect_after`` missed beats → dead ``dead_after`` later;
a beat re-admits). On a graceful stop it publishes ``leaving: true``.

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

**Scaling.** A service with ``[scaling]`` gets its replicas from a
:class:`actors.scaling.ThresholdPolicy` over the app's own metric: a
:class:`actors.metrics.MetricSampler` thread asks every instance running
here for ``/<metric>`` once per heartbeat period, and the beat carries the
values (``metrics: {service: {metric: [value per instance]}}``); the policy
takes the mean over every instance of the live slivers. The beat also
carries the slice's latest decision per service (``scaling: {service:
{replicas, changed}}``, ``changed`` a wall time); every coordinator merges
the peers' (the latest wins), decides from the merged one (so the cooldown
runs from the last step anyone took) and only after ``settle``. A
decision counts under the plan version it was taken with: a new plan that
changes the service (``dsmt scale``) starts again from its ``replicas``,
clamped into ``[min, max]``. The
decisions (``at``, ``from``, ``to``, ``value``) are in the status detail
and ``inspect()`` under ``scaling``.

Threads: a reader thread owns the hub subscription (plan + heartbeats) and
only ``tell()``s the actor; the tick timer only ``tell()``s too. Without a
bus (unit tests) the reader is absent and events are told as
:class:`Seen`.

Status: ``requested`` → ``initiated`` (plan loaded) → ``instantiated`` →
``running``, re-published when the share or the plan changes; ``failed``
if neither a persisted nor the configured plan can be read.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import tomllib
from pathlib import Path
from typing import Any

import pykka

from dsmt.actor import Actor, Origin, StateChanged, fail
from dsmt.errors import DsmtError
from dsmt.event import HEARTBEAT, RECORD, Event
from dsmt.states import FAILED, INITIATED, INSTANTIATED, REQUESTED, RUNNING

from actors import placement
from actors import plan as plans
from actors.messages import Assign, Deploy, PlanCommand, Undeploy
from actors.metrics import MetricSampler
from actors.scaling import ThresholdPolicy
from actors.world import WorldView

log = logging.getLogger(__name__)

PLAN_FILE = "plan.toml"
READ_POLL = 0.2
DECISIONS_KEPT = 20


class Seen:
    """An event of the plan or heartbeat channels, told by the reader thread."""

    __slots__ = ("event",)

    def __init__(self, event: Event) -> None:
        self.event = event


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
        self.plan_path = None if plan is None else Path(plan)
        self.agent_path = agent
        self.app_path = app or f"/{origin.ctx.sliver}/app"
        self.workspace = None if workspace is None else Path(workspace)
        self.labels = tuple(labels)
        self.heartbeat = heartbeat
        self.settle = 1.5 * heartbeat if settle is None else settle
        self.quarantine_after = quarantine_after
        self.quarantine_for = quarantine_for
        self.bus = bus
        self.plan: plans.Plan = plans.EMPTY
        self.plan_text = ""
        self.plan_error: str | None = None
        self.world = WorldView(self.ctx.clock, heartbeat, suspect_after, dead_after)
        self.epoch = secrets.token_hex(4)
        self.assignment: placement.Assignment = {}
        self.share: dict[str, int] = {}
        self.replicas: dict[str, int] = {}
        self.policies: dict[str, ThresholdPolicy] = {}
        self.scaled: dict[str, tuple[int, float]] = {}  # the slice's latest (replicas, wall time)
        self.decisions: dict[str, list[dict[str, Any]]] = {}
        self.sampler = MetricSampler(heartbeat, name=f"metrics-{origin.path}")
        self._ports: dict[str, list[int]] = {}
        self.running_here: dict[str, int] = {}
        self.overshoot: dict[str, int] = {}
        self.max_overshoot = 0
        self.failures = 0
        self.quarantine: tuple[float, str] | None = None
        self._started = 0.0
        self._deployed = 0
        self._last_rebroadcast = float("-inf")
        self._timer: Any = None
        self._reader: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- hooks (actor thread) ----------------------------------------------------------------

    def on_start(self) -> None:
        self.change_state(REQUESTED)
        self._started = self.ctx.clock.monotonic()
        try:
            self._load_initial()
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
            plan_error=self.plan_error, world=self.world.summary(),
            assignment={n: dict(p.counts) for n, p in self.assignment.items()},
            share=dict(self.share), replicas=dict(self.replicas),
            overshoot=dict(self.overshoot), max_overshoot=self.max_overshoot,
            quarantined=self._quarantine_reason(), scaling=self._scaling_detail())
        return snapshot

    # --- the plan ----------------------------------------------------------------------------

    def _load_initial(self) -> None:
        persisted = self._persisted()
        if self.plan_path is not None:
            try:
                text = self.plan_path.read_text()
            except OSError as exc:
                if persisted is None:
                    raise DsmtError(f"{self.plan_path}: cannot read the plan: {exc}") from None
                text = None
            if text is not None:
                try:
                    configured = plans.loads(text, str(self.plan_path))
                except DsmtError:
                    if persisted is None:
                        raise
                else:
                    if persisted is None or configured.version > persisted[0].version:
                        self.plan, self.plan_text = configured, text
                        self._persist(text)
                        return
        if persisted is not None:
            self.plan, self.plan_text = persisted

    def _persisted(self) -> tuple[plans.Plan, str] | None:
        if self.workspace is None:
            return None
        path = self.workspace / PLAN_FILE
        try:
            text = path.read_text()
            return plans.loads(text, str(path)), text
        except FileNotFoundError:
            return None
        except (OSError, DsmtError) as exc:
            log.error("%s: ignoring the persisted plan: %s", self.path, exc)
            return None

    def _persist(self, text: str) -> None:
        if self.workspace is None:
            return
        path = self.workspace / PLAN_FILE
        tmp = path.with_name(f".{PLAN_FILE}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _adopt(self, text: str, source: str) -> bool:
        """Take ``text`` as the plan if it parses and is newer; True if adopted."""
        try:
            new = plans.loads(text, source)
        except DsmtError as exc:
            self.plan_error = str(exc)
            self.count("bad_plans")
            log.error("%s: rejected a plan from %s: %s", self.path, source, exc)
            return False
        if new.version <= self.plan.version:
            return False
        old = self.plan
        self.plan, self.plan_text, self.plan_error = new, text, None
        self._persist(text)
        self.count("plans_adopted")
        for name in list(self.scaled):
            if old.services.get(name) != new.services.get(name):
                del self.scaled[name]  # a changed service starts again from the plan's replicas
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
                               {"version": self.plan.version, "toml": self.plan_text,
                                "from": self.ctx.sliver}, retain=True)
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
        """A verified plan command: a new plan version, adopted, broadcast, and replied to.

        ``deploy {"toml": text}`` replaces the plan (its version must be newer);
        ``scale {"service": name, "replicas": n | "all"}`` and ``undeploy
        {"service": name}`` derive the next version from the current plan. The
        outcome goes to ``layout.reply(request)`` in the commander's reply
        format, with ``result {"plan_version": n}`` when done.
        """
        args = message.args if isinstance(message.args, dict) else {}
        try:
            text = self._next_plan(message.kind, args)
            version = plans.loads(text, f"command {message.request}").version
            if version <= self.plan.version:
                raise DsmtError(f"plan version {version} is not newer than the slice's "
                                f"{self.plan.version}")
        except DsmtError as exc:
            log.warning("%s: plan command %s refused: %s", self.path, message.kind, exc)
            self._reply(message, "failed", str(exc), None)
            return
        if not self._adopt(text, f"command {message.request}"):
            self._reply(message, "failed", self.plan_error or "plan not adopted", None)
            return
        self._publish_plan()
        self._reply(message, "done", None, {"plan_version": self.plan.version})

    def _next_plan(self, kind: str, args: dict[str, Any]) -> str:
        if kind == "deploy":
            text = args.get("toml")
            if not isinstance(text, str):
                raise DsmtError('deploy needs {"toml": plan text}')
            return text
        service = args.get("service")
        if service not in self.plan.services:
            raise DsmtError(f"no service {service!r} in plan version {self.plan.version}")
        data = tomllib.loads(self.plan_text)
        data["version"] = self.plan.version + 1
        if kind == "undeploy":
            del data["services"][service]
        elif kind == "scale":
            replicas = args.get("replicas")
            if replicas != plans.ALL and (not isinstance(replicas, int) or isinstance(
                    replicas, bool) or replicas < 0):
                raise DsmtError(f'replicas must be a count >= 0 or "all", got {replicas!r}')
            data["services"][service]["replicas"] = replicas
        else:
            raise DsmtError(f"unknown plan command {kind!r}")
        return _toml(data)

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
            [self._merge_decision(name, entry) for name, entry in scaling.items()])
        version = payload.get("plan_version")
        if (isinstance(version, int) and version < self.plan.version
                and not payload.get("leaving")):
            self._rebroadcast()
        if change is not None or merged:
            self._place()

    def _rebroadcast(self) -> None:
        now = self.ctx.clock.monotonic()
        if now - self._last_rebroadcast >= self.heartbeat:
            self._last_rebroadcast = now
            self._publish_plan()

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
            self._timer = self.ctx.clock.call_later(self.heartbeat,
                                                    lambda: _tell_ref(ref, _Tick()))

    def _beat(self, leaving: bool = False) -> dict[str, Any]:
        beat = {"sliver": self.ctx.sliver, "epoch": self.epoch,
                "plan_version": self.plan.version, "labels": list(self.labels),
                "services": dict(self.running_here), "assigned": dict(self.share),
                "load": {"load": _load()}, "metrics": self.sampler.snapshot(),
                "scaling": {name: {"replicas": r, "changed": t, "plan": self.plan.version}
                            for name, (r, t) in self.scaled.items()},
                "quarantined": self._quarantine_reason(),
                "restarts": self.counters.get("assign_changes", 0)}
        if leaving:
            beat["leaving"] = True
        return beat

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
                decided = self._scale(service, live, settled) or decided
        self.assignment = placement.place(self.plan.services.values(), live, quarantined,
                                          self.replicas)
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

    # --- scaling ---------------------------------------------------------------------------

    def _scale(self, service: plans.Service, live: dict[str, Any], settled: bool) -> bool:
        """Set ``replicas[service]`` from the slice's decision, stepping it if due; True if stepped."""
        rule = service.scaling
        policy = self.policies.get(service.name)
        if policy is None or policy.rule != rule:
            policy = self.policies[service.name] = ThresholdPolicy(rule)
        initial = service.replicas if isinstance(service.replicas, int) else rule.min
        current, changed = self.scaled.get(service.name, (initial, None))
        values = sorted(float(v) for s in sorted(live)
                        for v in _metric(self.world.members[s].beat, service.name, rule.metric))
        if not settled:  # still hearing the peers' decisions: take none of our own
            self.replicas[service.name] = min(rule.max, max(rule.min, current))
            return False
        policy.last_change = changed
        wall = self.ctx.clock.wall()
        replicas = policy.decide(current, values, wall)
        self.replicas[service.name] = replicas
        if replicas == current:
            return False
        self.scaled[service.name] = (replicas, wall)
        record = {"at": round(wall, 3), "from": current, "to": replicas,
                  "value": None if policy.last_value is None else round(policy.last_value, 4),
                  "by": self.ctx.sliver}
        kept = self.decisions.setdefault(service.name, [])
        kept.append(record)
        del kept[:-DECISIONS_KEPT]
        self.count("scaling_decisions")
        log.info("%s: %s scaled %d -> %d (%s %s over %d instances)", self.path, service.name,
                 current, replicas, rule.metric, record["value"], len(values))
        return True

    def _merge_decision(self, name: str, entry: Any) -> bool:
        """Take a peer's scaling decision if it is later than ours; True if taken."""
        service = self.plan.services.get(name)
        if service is None or service.scaling is None or not isinstance(entry, dict):
            return False
        replicas, changed = entry.get("replicas"), entry.get("changed")
        if type(replicas) is not int or not isinstance(changed, (int, float)) \
                or entry.get("plan") != self.plan.version:
            return False  # a decision under another plan does not count
        ours = self.scaled.get(name)
        if ours is not None and (ours[1], ours[0]) >= (changed, replicas):
            return False
        if ours is not None and ours[0] != replicas:
            kept = self.decisions.setdefault(name, [])
            kept.append({"at": round(changed, 3), "from": ours[0], "to": replicas,
                         "value": None, "by": entry.get("by") or "peer"})
            del kept[:-DECISIONS_KEPT]
        self.scaled[name] = (replicas, float(changed))
        return True

    def _sample_targets(self) -> None:
        self.sampler.set_targets({
            name: (s.scaling.metric, self._ports.get(name, ()))
            for name, s in self.plan.services.items() if s.scaling is not None})

    def _scaling_detail(self) -> dict[str, Any]:
        return {name: {"replicas": r, "changed": t,
                       "value": getattr(self.policies.get(name), "last_value", None),
                       "decisions": list(self.decisions.get(name, ()))}
                for name, (r, t) in self.scaled.items()}

    # --- helpers ---------------------------------------------------------------------------

    def _detail(self) -> dict[str, Any]:
        return {"plan_version": self.plan.version, "share": dict(self.share),
                "live": sorted(self.world.live()), "overshoot": dict(self.overshoot),
                "quarantined": self._quarantine_reason(), "scaling": self._scaling_detail()}

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
        _tell_ref(ref, message)

    def _start_reader(self) -> None:
        bus = self.bus or getattr(self.ctx.publishers, "__self__", None)
        if bus is None or not hasattr(bus, "subscriber"):
            return
        layout, ref, ready = self.ctx.layout, self.actor_ref, threading.Event()
        problem: list[BaseException] = []

        def read() -> None:
            try:
                sub = bus.subscriber([layout.plan(), layout.heartbeat()], snapshot=True)
            except BaseException as exc:
                problem.append(exc)
                ready.set()
                return
            ready.set()
            try:
                while not self._stopping.is_set():
                    event = sub.recv(READ_POLL)
                    if event is not None:
                        _tell_ref(ref, Seen(event))
            except BaseException as exc:  # the socket is gone: the actor must know
                log.exception("%s: the hub reader stopped", self.path)
                fail(ref, RuntimeError(f"hub reader: {exc}"))
            finally:
                sub.close()

        self._reader = threading.Thread(target=read, name=f"coordinator-reader-{self.path}",
                                        daemon=True)
        self._reader.start()
        ready.wait(10.0)
        if problem:
            raise problem[0]

    def _close(self, leaving: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._stopping.set()
        self.sampler.stop()
        if leaving and self.publisher is not None and self.state != FAILED:
            try:
                self.publisher.publish(self.ctx.layout.heartbeat(self.ctx.sliver), HEARTBEAT,
                                       self._beat(leaving=True), retain=True)
            except Exception:
                log.exception("%s: cannot say goodbye", self.path)
        if self._reader is not None:
            self._reader.join(2 * READ_POLL + 1.0)


def _tell_ref(ref: Any, message: Any) -> bool:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        return False
    return True


def _metric(beat: dict[str, Any], service: str, metric: str) -> list[float]:
    """The values of ``metric`` a beat reports for ``service`` (one per instance)."""
    metrics = beat.get("metrics")
    values = metrics.get(service, {}) if isinstance(metrics, dict) else {}
    values = values.get(metric) if isinstance(values, dict) else None
    return [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)] \
        if isinstance(values, list) else []


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0] / (os.cpu_count() or 1), 3)
    except OSError:
        return None


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml(table: dict[str, Any], prefix: str = "") -> str:
    """``table`` (as :mod:`tomllib` reads a plan) as TOML text: scalars first, then sub-tables."""
    lines, subtables = [], []
    for key, value in table.items():
        if isinstance(value, dict):
            subtables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in subtables:
        name = f"{prefix}{_toml_key(key)}"
        text += f"\n[{name}]\n" + _toml(value, f"{name}.")
    return text


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise DsmtError(f"cannot write {value!r} back into a plan")
