"""The application supervisor: runs the installed version of every service of the sliver.

``AppSupervisor.start(origin, logs=ws.logs, agent="/s1/deployment-agent",
health_window=10.0)`` is a :class:`dsmt.supervisor.Supervisor`
(``one_for_one``) whose children are one
:class:`actors.service.ServiceSupervisor` per service, built by
:func:`actors.service.service_spec`; that one supervises a process actor per
instance with the plan's strategy, restart type, intensity/period and backoff.

Re-adoption: the app records every instance's process in the sliver's
journal (``journal=``: a :class:`actors.deploy.journal.Journal` or the path
of its database; by default the state database of the workspace whose
``logs`` directory it was given; none otherwise). A node killed with
-9 leaves its services running in their own sessions; when the new node's
agent reports the active version (``Installed``, as after any start), the
app re-adopts each instance the journal names — same pid, same port —
instead of starting a duplicate, replaces a journaled process of another
version, and starts afresh an instance whose process is gone or whose pid
was reused (the table in :mod:`actors.service`). Re-adopted instances are
listed as ``adopted`` in the service's summary, and their process actors
say ``adopted: true`` in their status. Deviation, and why: the default
journal is found from ``logs`` because the sliver tree hands the app only
its workspace's ``logs`` directory.

Limits: with ``container=`` (the registry path of the sliver's
:class:`actors.container.ContainerManager`, as the sliver tree gives it),
every instance's processes start under the container's limits (see
:class:`actors.process.actor.ProcessActor`).

Messages (``tell``, see :mod:`actors.messages`):

- :class:`Installed` — run this version: stop the service's old supervisor
  (if any) and start a new one. The same version already running is a no-op.
  When it replaces a running version (an *upgrade*), the new instances are
  watched for ``health_window`` seconds with the service's health check
  (plan, else manifest): every instance must pass once. An instance that
  passed and then turns unhealthy, an instance with no pass within the window
  (failures before the first pass only mean "not up yet"), or the service
  giving up makes the app tell the agent :class:`Rollback`, which re-activates the old version and
  sends it back as ``Installed(..., rollback=why)`` (never judged again).
  Without a health check only a give-up within the window fails an upgrade.
  Old and new never run side by side: ports may be fixed by the plan, so the
  old version is stopped first (a rollback restarts it, with new pids).
- :class:`Undeploy` — stop the service; tell ``reply_to`` :class:`Undeployed`.
- :class:`GaveUp` — a service supervisor reached its intensity.
- :class:`Assign` — run this many instances of the service here (the
  coordinator's share; overrides the plan's ``replicas``). A different count
  restarts the service's local instances ``0 .. count-1`` on the same
  version; 0 stops them and keeps the service ``stopped``, ready to start.
  Once a share is assigned, an ``Installed`` of the running version whose
  plan entry differs only in ``replicas``, ``placement`` or ``scaling`` (a
  new plan version, e.g. ``dsmt scale``) keeps the processes: only a change
  of how an instance runs (command, env, ports, health, restart policy…)
  restarts them.

Giving up, the OTP way: service supervisors are **temporary** children of
the app. A service supervisor that reaches its intensity stops its
instances, publishes ``failed`` and exits with an error, exactly as OTP's;
the app, as OTP does for a temporary child, neither restarts it nor counts
it against its own intensity, so neither the app nor the rest of the sliver
goes down with one broken service. The give-up is never silent: the app
publishes the service as ``fatal`` (with the reason and the last exit of the
failing instance) on the service's status channel, as a supervisor does for
a child that has no actor left to speak for it. A new ``Installed`` (a new
plan, a rollback) starts the service again.

Status: the app's own status detail carries ``services`` (version, state,
reason, ports, ``ready``, rollback) and is re-published whenever one changes
(a re-publication of the current state, not a transition). ``ready`` counts
the instances whose process runs and passes its health check (or runs, for a
service without one): the app observes every instance's process actor, which
says so at each move and each change of readiness (see
:mod:`actors._app_instances`). :meth:`inspect`
adds the same plus the live instances; :meth:`instances` lists a service's
instances (instance, pid, port, state, restarts), asking its supervisor and
process actors (bounded waits; none of them ever waits on the app).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka

from dsmt.actor import Origin, StateChanged, status_payload, tell
from dsmt.errors import SupervisorError
from dsmt.event import STATUS
from dsmt.supervisor import Supervisor

from actors._app_instances import instance_rows, observe_instances, readiness
from actors._app_watch import Probe, UpgradeWatch, WindowEnd
from actors.deploy import journal as j
from actors.deploy.manifest import Manifest
from actors.messages import Assign, GaveUp, Installed, Rollback, Undeploy, Undeployed
from actors.plan import Service
from actors.service import (how_it_runs, instance_count, journaled, ports_for, resolved_health,
                            service_spec, stop_settings)
from actors.workspace import Workspace

log = logging.getLogger(__name__)

# Service states as the app reports them (the per-service view, not an actor's state).
STARTING, RUNNING, UPGRADING, ROLLING_BACK, FATAL, STOPPED = (
    "starting", "running", "upgrading", "rolling-back", "fatal", "stopped")
ASK_TIMEOUT = 2.0


@dataclass
class _Service:
    name: str
    version: str
    version_dir: Path
    manifest: Manifest
    plan: Service
    ports: list[int]
    incarnation: int
    state: str = STARTING
    reason: str | None = None
    rollback: str | None = None
    watch: UpgradeWatch | None = None
    adopted: list[int] = field(default_factory=list)
    ready: frozenset[int] = frozenset()  # instances whose process actor says it is ready

    def summary(self) -> dict[str, Any]:
        return {"version": self.version, "state": self.state, "reason": self.reason,
                "ports": list(self.ports), "ready": len(self.ready), "rollback": self.rollback,
                "version_dir": str(self.version_dir), "adopted": list(self.adopted)}


class AppSupervisor(Supervisor):
    """The sliver's application supervisor (see the module docstring)."""

    def __init__(self, origin: Origin, *, logs: str | Path | None = None,
                 agent: str | None = None, health_window: float = 10.0,
                 intensity: int = 10, period: float = 10.0,
                 journal: j.Journal | str | Path | None = None, container: str | None = None,
                 **config: Any) -> None:
        agent = agent or f"/{origin.ctx.sliver}/deployment-agent"
        if journal is None and logs is not None and Path(logs).name == "logs":
            journal = Workspace(Path(logs).parent).state_db
        super().__init__(origin, (), intensity=intensity, period=period, agent=agent,
                         health_window=health_window, logs=None if logs is None else str(logs),
                         journal=None if journal is None
                         else str(getattr(journal, "path", journal)),
                         container=container, **config)
        self.logs = None if logs is None else Path(logs)
        self.agent_path = agent
        self.container_path = container
        self.health_window = health_window
        self._services: dict[str, _Service] = {}
        self._counter = 0
        self._assigned: dict[str, int] = {}
        self._own_journal = isinstance(journal, (str, Path))
        self._journal = j.Journal(journal, clock=self.ctx.clock) if self._own_journal else journal

    # --- hooks (app thread) ---------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Installed):
            return self._installed(message)
        if isinstance(message, Undeploy):
            return self._undeploy(message)
        if isinstance(message, GaveUp):
            return self._gave_up(message)
        if isinstance(message, Assign):
            return self._assign(message)
        if isinstance(message, Probe):
            return self._probe(message)
        if isinstance(message, WindowEnd):
            return self._window_end(message)
        if isinstance(message, StateChanged):
            return self._instance_changed(message)
        return super().on_receive(message)

    def on_stop(self) -> None:
        for service in self._services.values():
            self._end_watch(service)
        super().on_stop()
        self._close_journal()

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        for service in self._services.values():
            self._end_watch(service)
        super().on_failure(exc_type, exc, tb)
        self._close_journal()

    # --- API (through a proxy) --------------------------------------------------------------

    def services(self) -> dict[str, dict[str, Any]]:
        """Per service: version, state, reason, ports, ready, rollback, version_dir."""
        return {name: s.summary() for name, s in self._services.items()}

    def instances(self, service: str) -> list[dict[str, Any]]:
        """The instances of ``service``: instance, pid, port, state, restarts (empty if none)."""
        record = self._services.get(service)
        ref = self._service_ref(service)
        if record is None:
            return []
        return instance_rows(record.ports, ref, ASK_TIMEOUT)

    def inspect(self) -> dict[str, Any]:
        snapshot = super().inspect()
        snapshot["services"] = {name: {**s.summary(), "instances": self.instances(name)}
                                for name, s in self._services.items()}
        return snapshot

    # --- messages -------------------------------------------------------------------------

    def _installed(self, message: Installed) -> None:
        name = message.service
        old = self._services.get(name)
        plan = message.plan or (old.plan if old is not None else None) \
            or Service(name, package="", sha256="", version=message.version)
        count = self._assigned.get(name, instance_count(plan))
        if (old is not None and old.version == message.version
                and (old.plan == plan or (name in self._assigned
                                          and how_it_runs(old.plan) == how_it_runs(plan)))
                and old.state in (STARTING, RUNNING, UPGRADING) and message.rollback is None
                and len(old.ports) == count):
            old.plan = plan  # a new plan version that changes nothing here: keep the processes
            return  # already running this version
        upgrade = (old is not None and old.state == RUNNING and old.version != message.version
                   and message.rollback is None)
        if old is not None:
            self._end_watch(old)
        self._stop_service(name)
        self._counter += 1
        ports = ports_for(plan, count)
        adoptions = {}
        if self._journal is not None:
            ports, adoptions = journaled(self._journal, plan, message.version, ports,
                                         *stop_settings(plan, message.manifest))
        rollback = None if message.rollback is None else \
            f"rolled back from {message.rolled_back_from}: {message.rollback}"
        record = _Service(name, message.version, message.version_dir, message.manifest, plan,
                          ports, self._counter, rollback=rollback,
                          adopted=sorted(i for i, a in adoptions.items() if a.replace is None))
        self._services[name] = record
        if not ports:  # this sliver's share is 0: installed, nothing runs
            record.state = STOPPED
            self._report()
            return
        spec = service_spec(sliver=self.ctx.sliver, plan=plan, manifest=message.manifest,
                            version_dir=message.version_dir, ports=ports,
                            incarnation=record.incarnation, logs=self.logs, rollback=rollback,
                            journal=self._journal, adoptions=adoptions,
                            container=self.container_path)
        observe_instances(self.ctx.registry, self.path, self.actor_ref, name, len(ports))
        try:
            self.start_child(spec)
        except SupervisorError as exc:
            self._fatal(record, f"failed to start: {exc.detail}")
            if upgrade:
                self._roll_back(record, old.version, record.reason or "failed to start")
            return
        if upgrade:
            record.state = UPGRADING
            self._watch(record, old.version)
        else:
            record.state = RUNNING
            record.reason = rollback
        self._report()

    def _assign(self, message: Assign) -> None:
        self._assigned[message.service] = message.count
        record = self._services.get(message.service)
        if record is None or len(record.ports) == message.count:
            return
        self._installed(Installed(record.name, record.version, record.version_dir,
                                  record.manifest, record.plan))

    def _undeploy(self, message: Undeploy) -> None:
        record = self._services.pop(message.service, None)
        if record is not None:
            self._end_watch(record)
        self._stop_service(message.service)
        self._report()
        if message.reply_to is not None:
            try:
                message.reply_to.tell(Undeployed(message.service))
            except pykka.ActorDeadError:
                pass

    def _gave_up(self, message: GaveUp) -> None:
        record = self._services.get(message.service)
        if record is None or record.incarnation != message.incarnation or record.state == FATAL:
            return
        cause = f"{message.reason}" + (f": instance {message.child}: {message.child_reason}"
                                       if message.child is not None else "")
        watch = record.watch
        self._fatal(record, f"gave up: {cause}")
        if watch is not None:
            self._roll_back(record, watch.previous, f"gave up: {cause}")

    def _probe(self, message: Probe) -> None:
        record = self._services.get(message.service)
        watch = None if record is None else record.watch
        if watch is None or watch.token != message.token:
            return
        result = message.result
        watch.last = f"instance {message.instance}: {result.detail}"
        if result.ok:
            watch.passed.add(message.instance)
            if len(watch.passed) == len(record.ports):
                self._confirm(record)
        elif not result.healthy and message.instance in watch.passed:
            # Failures before the first pass only mean "not up yet": the window decides those.
            self._roll_back(record, watch.previous, f"unhealthy: {watch.last}")

    def _instance_changed(self, message: StateChanged) -> None:
        said = readiness(self.path, message)
        record = None if said is None else self._services.get(said[0])
        if record is None or said[1] >= len(record.ports):
            return  # not an instance of ours, or of a share since lowered
        _, index, ready = said
        now = record.ready | {index} if ready else record.ready - {index}
        if now != record.ready:
            record.ready = now
            self._report()

    def _window_end(self, message: WindowEnd) -> None:
        record = self._services.get(message.service)
        watch = None if record is None else record.watch
        if watch is None or watch.token != message.token:
            return
        if watch.monitors:
            self._roll_back(record, watch.previous, f"unhealthy: no passing health check "
                                                    f"within {self.health_window}s "
                                                    f"(last: {watch.last})")
        else:
            self._confirm(record)

    # --- upgrade watch (app thread) -----------------------------------------------------

    def _watch(self, record: _Service, previous: str) -> None:
        record.watch = UpgradeWatch(record.incarnation, previous)
        health = resolved_health(record.plan, record.manifest)
        record.watch.start(self.actor_ref, record.name, health, record.ports, record.version_dir,
                           self.health_window, self.ctx.clock)

    def _confirm(self, record: _Service) -> None:
        previous = record.watch.previous if record.watch else None
        self._end_watch(record)
        record.state, record.reason = RUNNING, f"upgraded from {previous}"
        self._report()

    def _roll_back(self, record: _Service, previous: str, why: str) -> None:
        self._end_watch(record)
        if record.state != FATAL:
            record.state = ROLLING_BACK
        record.reason = f"rolling back to {previous}: {why}"
        agent = self.ctx.registry.get(self.agent_path)
        told = agent is not None and tell(agent, Rollback(record.name, why, record.version))
        if not told:
            log.error("%s: cannot ask %s to roll %s back: no agent", self.path, self.agent_path,
                      record.name)
            record.reason += f" (no deployment agent at {self.agent_path})"
        self._report()

    def _end_watch(self, record: _Service) -> None:
        watch, record.watch = record.watch, None
        if watch is not None:
            watch.stop()

    # --- helpers (app thread) -------------------------------------------------------------

    def _service_ref(self, name: str) -> Any:
        return next((c.ref for c in self.which_children() if c.id == name), None)

    def _stop_service(self, name: str) -> None:
        if any(c.id == name for c in self.which_children()):
            self.terminate_child(name)  # temporary: the spec goes with it

    def _close_journal(self) -> None:
        if self._own_journal and self._journal is not None:
            self._journal.close()
            self._journal = None

    def _fatal(self, record: _Service, reason: str) -> None:
        """The service gave up: say so on its own status channel and in the app's status."""
        record.state, record.reason = FATAL, reason
        if self.publisher is not None:
            path = f"{self.path}/{record.name}"
            component = Origin(self.ctx, path).component
            detail = {"service": record.name, "version": record.version,
                      "ports": list(record.ports), "supervisor": self.path}
            self.publisher.publish(
                self.ctx.layout.status(component, self.ctx.sliver), STATUS,
                status_payload(self.ctx, component, FATAL, reason, detail, path=path),
                retain=True)
        self._report()

    def _report(self) -> None:
        """Re-publish the app's status with the services' summary (not a transition)."""
        self.update_detail(services=self.services())

