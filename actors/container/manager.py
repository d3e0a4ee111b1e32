"""The container manager: the sliver's workspace, its processes' limits, its resource reports.

One :class:`ContainerManager` per sliver (``/<sliver>/container-mgr``). Its
state follows :data:`dsmt.states.CONTAINER`::

    selected -> installing -> installed -> deselected -> selected -> ...
                    \\-> failed (workspace unusable; select() tries again)

- **on start** it makes (or checks) the workspace with
  :meth:`actors.workspace.Workspace.create` (``run/`` is 0700) and opens the
  state database once with :class:`actors.deploy.journal.Journal`, which
  creates it in WAL mode; it probes cgroup v2 (:mod:`.cgroup`) and reports
  the outcome in its status (``cgroup``: ``available: <dir>`` or
  ``unavailable: <why>``). An unusable workspace leaves it ``failed`` with
  the reason, still answering and reporting, rather than crashing.
- :meth:`~ContainerManager.limits_for_process` gives a process actor the
  :class:`~.limits.ProcessLimits` to apply in its child before exec
  (rlimits, and the instance's own sub-cgroup with ``memory.max`` and
  ``cpu.max`` when cgroup v2 is available); the process actor asks once
  when it starts (:class:`actors.process.actor.ProcessActor`, ``container=``)
  and calls :meth:`~ContainerManager.release_process` when it ends, which
  removes that sub-cgroup.
- Every ``report_interval`` seconds it publishes a retained
  :data:`dsmt.event.RESOURCES` event on ``Layout.resources(sliver)``: cpu,
  rss, open fds and threads of the node process and of each application
  process group, and the disk used under the workspace against ``quota``.
  Which processes the sliver runs it reads from the state database's
  process journal (:meth:`actors.deploy.journal.Journal.processes`), where
  the application records every live instance's pid for re-adoption: the
  one record of them, so a restarted container manager (or node) reports
  the same processes at once, and a record whose pid is gone or was reused
  is reported ``alive: false``, never measured. Over the quota, the report's
  ``reason`` (and the status's) says ``over quota: ...``; the state stays
  ``installed``. The tick is ``ctx.clock.call_later`` telling the actor
  itself, so the mailbox never waits; a report walks the workspace on disk,
  which takes milliseconds for a few thousand files.
- :meth:`~ContainerManager.deselect` stops the application -- the actor
  at the path ``app``, which its supervisor terminates and keeps stopped
  (``terminate_child``, waited for at most :data:`APP_WAIT` seconds) --
  then releases the workspace (packages, versions, ``current`` and
  ``previous`` links; logs too unless ``keep_logs``) and moves to
  ``deselected``. While deselected no process may start
  (:meth:`~ContainerManager.limits_for_process` refuses), and the
  coordinator, which observes this actor, takes the sliver out of placement.
  :meth:`~ContainerManager.select` restarts the app (``restart_child``)
  before it moves to ``selected`` and prepares the workspace again, so the
  coordinator finds an app to tell its shares when it hears of it. The
  signed ``deselect`` and ``select`` commands (:mod:`actors.commander`,
  ``dsmt deselect|select SLIVER``) call these. A deselect lasts until
  select: the workspace's ``deselected`` file says it (when, and the
  released entries), so a container manager started on it -- a restarted
  node -- prepares the workspace and goes straight to ``deselected``; the
  app then starts empty and stays so, because the coordinator hears the
  state before it places anything.

Threads: every method runs in the actor's thread; call them through a proxy
(``ref.proxy().deselect().get(timeout=...)``). Stopping the app waits in
that thread on the app's supervisor, which never waits on this actor (process
actors ask it for their limits with a bounded ask when they start, and only
tell it when they end).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pykka

from actors.container.cgroup import CgroupTree, probe
from actors.container.limits import Limits, ProcessLimits, process_limits
from actors.container.resources import Sampler, disk_usage, journaled_usage
from actors.deploy.journal import Journal
from actors.deploy.journal import ProcessRecord as JournaledProcess
from actors.workspace import Workspace, WorkspaceError
from dsmt.actor import ERROR, Actor, Origin
from dsmt.clock import Timer
from dsmt.errors import DsmtError, SupervisorError
from dsmt.event import RESOURCES
from dsmt.states import CONTAINER, DESELECTED, FAILED, INSTALLED, INSTALLING, SELECTED

log = logging.getLogger(__name__)

_RELEASED = ("packages", "versions", "current", "previous")
# Seconds deselect/select wait for the app's supervisor to stop / start the app (its
# processes get their stop signal, then their grace, before SIGKILL).
APP_WAIT = 60.0


class ContainerError(DsmtError):
    """A request the container cannot serve in its current state (e.g. deselected)."""


@dataclass(frozen=True)
class _Report:
    """The container manager's tick: time to publish a resource report."""


def _tell(ref: Any, message: Any) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        pass  # stopped meanwhile: the tick dies with it


class ContainerManager(Actor):
    """Keeps the sliver's workspace, limits its processes and reports their resource use."""

    machine = CONTAINER
    exit_states = {ERROR: FAILED}

    def __init__(
        self,
        origin: Origin,
        workspace: str | Path,
        *,
        limits: Limits = Limits(),
        quota: int | None = None,
        report_interval: float | None = 30.0,
        app: str | None = None,
        cgroups: bool = True,
        cgroup_base: str | Path | None = None,
    ) -> None:
        """``quota``: bytes the workspace may use (None: no quota). ``report_interval``:
        seconds between reports (None: only :meth:`report_now`). ``cgroups=False``
        never touches cgroups; ``cgroup_base`` is the node's cgroup v2 directory
        (default: found from /proc/self), a seam for tests. ``app``: the registry path of
        the application (a supervisor's child) that deselect stops; None: none runs.
        """
        if report_interval is not None and not report_interval > 0:
            raise ValueError("report_interval must be > 0 seconds or None")
        super().__init__(origin, workspace=str(workspace), limits=asdict(limits), quota=quota,
                         report_interval=report_interval, cgroups=cgroups, app=app,
                         cgroup_base=None if cgroup_base is None else str(cgroup_base))
        self.root = Path(workspace)
        self.limits = limits
        self.quota = quota
        self.report_interval = report_interval
        self.app_path = app
        self._use_cgroups = cgroups
        self._cgroup_base = None if cgroup_base is None else Path(cgroup_base)
        self.workspace: Workspace | None = None
        self.cgroups = CgroupTree(None, "not probed yet")
        self._journal: Journal | None = None
        self._cgroup_dirs: dict[tuple[str, str], Path] = {}
        self._sampler = Sampler()
        self._over_quota = False
        self._next_report: float | None = None
        self._timer: Timer | None = None
        self.last_report: dict[str, Any] | None = None

    # --- life cycle (actor thread) ---------------------------------------------

    def on_start(self) -> None:
        self._sampler.node()  # the first cpu_percent of a process is always 0.0
        self._install()
        self._schedule_report()

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._close_journal()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Report):
            self.report_now()
            self._schedule_report()
            return None
        return super().on_receive(message)

    # --- commands (actor thread, through a proxy) --------------------------------

    def select(self) -> str:
        """Take the sliver back after a deselect (or retry a failed install); returns the state.

        Raises :class:`ContainerError` if the app cannot be started again (the
        state stays ``deselected``; select again to retry).
        """
        if self.state == DESELECTED:
            try:
                self._app_child("restart_child")
            except Exception as exc:  # a command boundary: say why, stay deselected
                log.exception("%s: restarting the application for select failed", self.path)
                raise ContainerError(f"select: restarting the application failed: {exc}") \
                    from None
            if self.workspace is not None:
                self.workspace.deselected.unlink(missing_ok=True)
            self.change_state(SELECTED, "selected")
        if self.state in (SELECTED, FAILED):
            self._install()
        return self.state

    def deselect(self, keep_logs: bool = True) -> str:
        """Stop the application, release the workspace and move to ``deselected``.

        If the app cannot be stopped, the workspace is left alone (the
        application may still run) and the state is ``failed`` with the
        reason; deselect again to retry. Returns the new state.
        """
        if self.state == DESELECTED:
            return self.state
        if self.app_path is not None:
            try:
                self._app_child("terminate_child")
            except Exception as exc:  # a command boundary: report, do not die
                log.exception("%s: stopping the application for deselect failed", self.path)
                self.change_state(FAILED, f"deselect: stopping the application failed: {exc}")
                return self.state
        for key in list(self._cgroup_dirs):
            self.release_process(*key)
        released: list[str] = []
        if self.workspace is not None:
            try:
                released = _release(self.workspace, keep_logs)
            except OSError as exc:
                log.exception("%s: releasing the workspace failed", self.path)
                self.change_state(FAILED, f"deselect: releasing the workspace failed: {exc}")
                return self.state
        if self.workspace is not None:
            try:
                self.workspace.deselected.write_text(
                    f"deselected at {self.ctx.clock.wall():.3f}; released: "
                    f"{', '.join(released) or 'nothing'}\n")
            except OSError as exc:
                log.warning("%s: cannot record the deselect (a restart would forget it): %s",
                            self.path, exc)
        self.change_state(DESELECTED, "deselected", released=released, kept_logs=keep_logs)
        return self.state

    # --- what process actors use ------------------------------------------------

    def limits_for_process(self, service: str, instance: Any) -> ProcessLimits:
        """The limits to apply in the child of ``service``/``instance`` before exec.

        Creates the instance's sub-cgroup when cgroup v2 is available; if that
        fails, the limits say ``unavailable: <why>`` and carry rlimits only.
        Raises :class:`ContainerError` while the sliver is deselected.
        """
        if self.state == DESELECTED:
            raise ContainerError(f"{self.path} is deselected: no process may start")
        status, directory = self.cgroups.status, None
        if self.cgroups.available:
            candidate = self.cgroups.instance_dir(self.ctx.sliver, service, instance)
            why = self.cgroups.create(candidate, self.limits.cgroup_files())
            if why is None:
                directory = candidate
                self._cgroup_dirs[(service, str(instance))] = candidate
                status = f"available: {candidate}"
            else:
                self.count("cgroup_errors")
                status = f"unavailable: {why}"
        return process_limits(self.limits, directory, status)

    def release_process(self, service: str, instance: Any) -> None:
        """The actor of ``service``/``instance`` has ended: remove its sub-cgroup (once empty)."""
        directory = self._cgroup_dirs.pop((service, str(instance)), None)
        if directory is not None:
            try:
                CgroupTree.remove(directory)
            except OSError:
                log.warning("%s: cannot remove %s", self.path, directory, exc_info=True)

    # --- reports ------------------------------------------------------------------

    def report_now(self) -> dict[str, Any]:
        """Measure, publish the retained resource report and return its payload."""
        processes = journaled_usage(self._sampler, self.processes())
        used = disk_usage(self.root) if self.workspace is not None else None
        over = self.quota is not None and used is not None and used > self.quota
        reason = (f"over quota: the workspace uses {used} bytes, its quota is {self.quota} bytes"
                  if over else None)
        payload = {
            "hostname": self.ctx.hostname,
            "slice": self.ctx.layout.slice,
            "sliver": self.ctx.sliver,
            "component": self.component,
            "state": self.state,
            "reason": reason,
            "interval": self.report_interval,
            "node": self._sampler.node().as_dict(),
            "processes": processes,
            "disk": {"root": str(self.root), "used": used, "quota": self.quota,
                     "over_quota": over},
            "cgroup": self.cgroups.status,
        }
        if self.publisher is not None:
            self.publisher.publish(self.ctx.layout.resources(self.ctx.sliver), RESOURCES,
                                   payload, retain=True)
        self.count("reports")
        self.last_report = payload
        if over != self._over_quota:
            self._over_quota = over
            self._restate_quota(reason)
        return payload

    def _restate_quota(self, reason: str | None) -> None:
        """Say (or unsay) ``over quota`` in the status without a transition."""
        if self.state != INSTALLED:
            return
        self.reason = reason
        self.detail = {**self.detail, "over_quota": self._over_quota}
        self.publish_status()
        for observer in self.ctx.registry.observers(self.path):
            self.report_state(observer)

    def _schedule_report(self) -> None:
        """Arm the next tick on the clock (deadline-based: no drift; a late tick is skipped)."""
        if self.report_interval is None:
            return
        now = self.ctx.clock.monotonic()
        due = (self._next_report or now) + self.report_interval
        if due <= now:
            due = now + self.report_interval
        self._next_report = due
        ref = self.actor_ref
        self._timer = self.ctx.clock.call_later(due - now, lambda: _tell(ref, _Report()))

    # --- inspect ------------------------------------------------------------------

    def inspect(self) -> dict[str, Any]:
        snapshot = super().inspect()
        snapshot.update({
            "workspace": None if self.workspace is None else str(self.workspace.root),
            "cgroup": self.cgroups.status,
            "processes": {f"{r.service}/{r.instance}": r.pid for r in self.processes()},
            "over_quota": self._over_quota,
            "last_report": self.last_report,
        })
        return snapshot

    def processes(self) -> list[JournaledProcess]:
        """The application's processes as journaled (see the module docstring)."""
        if self._journal is None:
            return []
        try:
            return self._journal.processes()
        except sqlite3.Error as exc:  # reported without the processes, tried again next time
            log.warning("%s: cannot read the process journal: %s", self.path, exc)
            return []

    # --- internals ----------------------------------------------------------------

    def _install(self) -> None:
        self.change_state(INSTALLING, "preparing the workspace")
        self._close_journal()
        try:
            workspace = Workspace.create(self.root)
            self._journal = Journal(workspace.state_db, clock=self.ctx.clock)  # WAL mode
        except (WorkspaceError, sqlite3.Error, OSError) as exc:
            self.change_state(FAILED, str(exc))
            return
        self.workspace = workspace
        self.cgroups = (probe(self._cgroup_base) if self._use_cgroups
                        else CgroupTree(None, "disabled by configuration"))
        self._over_quota = False
        if workspace.deselected.exists():
            self.change_state(DESELECTED, "deselected before this container manager started",
                              workspace=str(workspace.root), cgroup=self.cgroups.status)
            return
        self.change_state(INSTALLED, None, workspace=str(workspace.root),
                          cgroup=self.cgroups.status, quota=self.quota)

    def _app_child(self, call: str) -> None:
        """``terminate_child`` or ``restart_child`` of the app on its supervisor, waited for."""
        if self.app_path is None:
            return
        parent_path, child, parent = self.ctx.registry.supervisor_of(self.app_path)
        if parent is None:
            raise ContainerError(f"no supervisor at {parent_path}")
        try:
            getattr(parent.proxy(), call)(child).get(timeout=APP_WAIT)
        except SupervisorError as exc:
            if not (call == "restart_child" and exc.reason == "running"):
                raise

    def _close_journal(self) -> None:
        journal, self._journal = self._journal, None
        if journal is not None:
            journal.close()


def _release(workspace: Workspace, keep_logs: bool) -> list[str]:
    """Empty the workspace's package, version and link directories (and logs); what was removed."""
    names = _RELEASED if keep_logs else (*_RELEASED, "logs")
    removed = []
    for name in names:
        directory = workspace.root / name
        for entry in sorted(directory.iterdir()) if directory.is_dir() else ():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(f"{name}/{entry.name}")
    return removed
