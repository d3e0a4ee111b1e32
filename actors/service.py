"""One service of the application: its supervisor and the process specs of its instances.

:func:`service_spec` turns an installed version (its manifest and the plan's
entry) into the child spec of a :class:`ServiceSupervisor`, whose children
are one :class:`actors.process.actor.ProcessActor` per instance:

- instance ids ``0 .. n-1``; n is the plan's ``replicas`` (``"all"`` means
  one on this sliver);
- argv: the plan's ``command``, else the manifest's ``start.command``; run in
  the version directory with :func:`actors.deploy.launch.environment` plus
  the plan's ``[env]``, ``PORT``, ``DSMT_SLIVER`` and ``DSMT_INSTANCE``;
- ``PORT``: the plan's base port + instance, or with ``"auto"`` a free
  loopback port picked now (bind to port 0; another program could take it
  before the service binds it — the health check then reports the failure);
  the port is fixed for the life of the spec, so a restarted instance gets
  the same one, and it is shown in the actors' ``inspect()`` config and in
  the service supervisor's status detail;
- policy: ``ProcessPolicy(autorestart="never", startretries=0, ...)`` with the
  health check of the plan or else the manifest and the manifest's stop
  signal (the plan's ``stop_timeout`` wins over the manifest's). Every exit
  therefore ends the process actor, and the service supervisor restarts it
  with the plan's restart type, strategy, intensity/period and backoff —
  the OTP path, not supervisord's. (An instance that turns unhealthy while
  running is still restarted inside its actor: ``restart_unhealthy``.)
- journal (optional, the sliver's :class:`actors.deploy.journal.Journal`):
  every instance's process is recorded there (pid, start time, version,
  port, group) while it lives, so that a node restarted after a crash
  re-adopts it (:func:`journaled`) instead of starting a duplicate.

Re-adoption (:func:`journaled`, before the spec is built): the journal's
records of the service are checked with :func:`actors.process.adopt.verify`.

=====================================  ============================================
journal record                         what the new node does
=====================================  ============================================
pid gone, or reused (start time        forget it; start the instance afresh
differs, or another process group)
alive, the active version, its port    adopt it: same pid, same port (``"auto"``
(``"auto"``, or the plan's base + n)   ports come from the journal, not the kernel)
alive, another version                 adopt it, then stop it (stop signal →
                                       grace → SIGKILL of its group) and start the
                                       active version on the same port
alive, not the plan's port, or its     the same: stop it, start afresh
port unknown
alive, an instance beyond replicas     stop it (:func:`retire`), then forget it
=====================================  ============================================

:class:`ServiceSupervisor` is a plain :class:`dsmt.supervisor.Supervisor`
that adds the service's facts (service, version, ports, rollback) to every
status it publishes and tells its parent :class:`actors.messages.GaveUp`
just before it exits because it gave up.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from dsmt.actor import Error, Origin
from dsmt.childspec import SUPERVISOR, TEMPORARY, ChildSpec
from dsmt.supervisor import Supervisor

from actors.deploy import journal as j
from actors.deploy.launch import environment
from actors.deploy.manifest import HealthCheck, Manifest
from actors.messages import GaveUp
from actors.plan import ALL, AUTO, Placement, Service
from actors.process.actor import Journal, process_spec
from actors.process.adopt import adopt, verify
from actors.process.handle import ProcessRecord
from actors.process.health import CommandCheck, HealthPolicy, HttpCheck, TcpCheck
from actors.process.policy import NEVER, HealthSpec, ProcessPolicy
from actors.process.rotating import LogSpec
from actors.process.spawn import Command
from actors.process.stop import stop

log = logging.getLogger(__name__)


class ServiceSupervisor(Supervisor):
    """The supervisor of one service's instances; reports its give-up to the app."""

    def __init__(self, origin: Origin, children: Sequence[ChildSpec] = (), *, service: str,
                 version: str, incarnation: int, ports: Sequence[int] = (),
                 rollback: str | None = None, **flags: Any) -> None:
        super().__init__(origin, children, on_give_up=self._gave_up, service=service,
                         version=version, ports=list(ports), **flags)
        self.service = service
        self.version = version
        self.incarnation = incarnation
        self._facts = {"service": service, "version": version, "ports": list(ports)}
        if rollback is not None:
            self._facts["rollback"] = rollback

    def change_state(self, new: str, reason: str | None = None, **detail: Any) -> None:
        super().change_state(new, reason, **{**self._facts, **detail})

    def _gave_up(self, error: Error) -> None:
        # Runs in this supervisor's thread, after it published `failed` and before it exits,
        # so the parent sees this message before the exit report.
        message = GaveUp(self.service, self.version, self.incarnation, self.reason or str(error),
                         self.detail.get("child"), self.detail.get("child_reason"))
        if self.parent is not None:
            self.parent.tell(message)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def how_it_runs(plan: Service) -> Service:
    """A plan entry without what only placement uses (replicas, placement, scaling).

    Under a coordinator (a share was assigned) the share, not ``replicas``,
    decides the count here, so two plan versions that differ only there run
    the same local instances.
    """
    return dataclasses.replace(plan, replicas=0, placement=Placement(), scaling=None)


def instance_count(plan: Service) -> int:
    return 1 if plan.replicas == ALL else int(plan.replicas)


def ports_for(plan: Service, count: int) -> list[int]:
    if plan.port == AUTO:
        return [free_port() for _ in range(count)]
    return [int(plan.port) + i for i in range(count)]


def health_check(health: HealthCheck, port: int, cwd: Path) -> Any:
    """The probe object of a manifest/plan health table for one instance."""
    if health.kind == "tcp":
        return TcpCheck(health.port or port)
    if health.kind == "http":
        return HttpCheck(health.port or port, health.path)
    return CommandCheck(tuple(health.command), cwd=str(cwd))


def resolved_health(plan: Service, manifest: Manifest) -> HealthCheck | None:
    return plan.health if plan.health is not None else manifest.health


def health_policy(health: HealthCheck) -> HealthPolicy:
    return HealthPolicy(health.interval, health.timeout, health.failure_threshold)


@dataclass(frozen=True)
class Adoption:
    """A journaled live process to re-adopt as one instance; ``replace``: why it must go."""

    record: ProcessRecord
    replace: str | None = None


def process_record(entry: j.ProcessRecord) -> ProcessRecord:
    return ProcessRecord(entry.pid, entry.started, entry.pgid)


def journaled(journal: j.Journal, plan: Service, version: str, ports: Sequence[int],
              stop_signal: int, stop_timeout: float | None,
              ) -> tuple[list[int], dict[int, Adoption]]:
    """The ports and the adoptions of the service's instances (see the module docstring).

    Forgets the dead and reused records and retires the instances beyond
    ``len(ports)``; returns ``ports`` with the journaled port of each adopted
    instance put in.
    """
    ports = list(ports)
    adoptions: dict[int, Adoption] = {}
    for entry in journal.processes(plan.name):
        record = process_record(entry)
        why = verify(record)
        if why is not None:
            log.info("%s instance %s: not re-adopting: %s", plan.name, entry.instance, why)
            journal.forget_process(plan.name, entry.instance, entry.pid)
            continue
        index = int(entry.instance) if entry.instance.isdigit() else None
        if index is None or index >= len(ports):
            retire(journal, entry, stop_signal, stop_timeout)
            continue
        replace = None
        if entry.version != version:
            replace = f"journaled version {entry.version} is not the active {version}"
        if plan.port == AUTO and entry.port is not None:
            ports[index] = entry.port
        elif entry.port != ports[index]:
            replace = replace or (f"journaled port {entry.port} is not the plan's {ports[index]}")
        adoptions[index] = Adoption(record, replace)
    return ports, adoptions


def retire(journal: j.Journal, entry: j.ProcessRecord, stop_signal: int,
           stop_timeout: float | None) -> None:
    """Stop a journaled process no instance wants any more; forget it once it is gone."""
    def forget(_: Any = None) -> None:
        journal.forget_process(entry.service, entry.instance, entry.pid)

    handle = adopt(process_record(entry))
    if handle is None:
        forget()
        return
    log.info("%s instance %s (pid %d): not in the plan any more; stopping it",
             entry.service, entry.instance, entry.pid)
    stop(handle, stop_signal, stop_timeout).add_done_callback(forget)


def journal_hook(journal: j.Journal, service: str, instance: int, version: str,
                 port: int) -> Journal:
    """The process actor's ``journal`` callback for one instance (see its docstring)."""
    def write(path: str, record: ProcessRecord | None) -> None:
        if record is None:
            journal.forget_process(service, str(instance))
        else:
            journal.record_process(service, str(instance), record.pid, record.create_time,
                                   version, port=port, pgid=record.pgid)
    return write


def stop_settings(plan: Service, manifest: Manifest) -> tuple[int, float | None]:
    """The stop signal and grace of the service's processes."""
    stopwait = plan.stop_timeout if plan.stop_timeout is not None else manifest.start.stop_timeout
    return manifest.start.stop_signal, stopwait


def service_spec(
    *,
    sliver: str,
    plan: Service,
    manifest: Manifest,
    version_dir: Path,
    ports: Sequence[int],
    incarnation: int,
    logs: Path | None = None,
    rollback: str | None = None,
    journal: j.Journal | None = None,
    adoptions: Mapping[int, Adoption] = {},
    container: str | None = None,
) -> ChildSpec:
    """The app's (temporary) child spec of the service supervisor running ``version_dir``.

    ``container``: the registry path of the sliver's container manager, whose
    limits every instance's processes start under (None: no limits).
    """
    argv = plan.command or manifest.start.command
    health = resolved_health(plan, manifest)
    stopsignal, stopwait = stop_settings(plan, manifest)
    children = []
    for index, port in enumerate(ports):
        env = environment(manifest, version_dir, extra={
            **plan.env, "PORT": str(port), "DSMT_SLIVER": sliver, "DSMT_INSTANCE": str(index)})
        check = None if health is None else HealthSpec(
            health_check(health, port, version_dir), health_policy(health), health.start_period)
        policy = ProcessPolicy(autorestart=NEVER, startretries=0, stopsignal=stopsignal,
                               stopwaitsecs=stopwait, health=check)
        command = Command(tuple(argv), env, version_dir, inherit_env=False)
        log_spec = None if logs is None else LogSpec(Path(logs), f"{plan.name}-{index}")
        adoption = adoptions.get(index)
        hook = None if journal is None else \
            journal_hook(journal, plan.name, index, manifest.version, port)
        spec = process_spec(index, command, policy, logs=log_spec, restart=plan.restart,
                            backoff=plan.backoff, journal=hook,
                            record=None if adoption is None else adoption.record,
                            replace=None if adoption is None else adoption.replace,
                            container=container)
        children.append(dataclasses.replace(spec, kwargs={
            **spec.kwargs, "service": plan.name, "version": manifest.version, "instance": index,
            "port": port}))
    kwargs = {"children": children, "strategy": plan.strategy, "intensity": plan.intensity,
              "period": plan.period, "service": plan.name, "version": manifest.version,
              "incarnation": incarnation, "ports": list(ports), "rollback": rollback}
    return ChildSpec(plan.name, ServiceSupervisor, kwargs, restart=TEMPORARY, type=SUPERVISOR)
