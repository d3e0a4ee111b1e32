"""The deployment agent: installs the plan's package versions on this sliver, then tells the app.

``DeploymentAgent.start(origin, workspace=ws, journal=j, app="/s1/app")``
(``journal`` defaults to one opened on ``ws.state_db``; ``app`` to
``/<sliver>/app``). Messages (``tell``, see :mod:`actors.messages`):

- :class:`Deploy` queues one install per service: fetch → verify → unpack →
  install → activate through :class:`actors.deploy.Installer`. On success
  the app supervisor is told :class:`Installed`; on failure the agent is
  ``failed`` with the reason (``verify: checksum mismatch: …``, ``unpack:
  unsafe archive: …``, ``install: install failed: …``, ``fetch: fetch
  failed: …``) and the app is told nothing, so the version that was active
  keeps running (activation is the last stage: ``current`` never moved).
- :class:`Rollback` (from the app) switches ``current`` back and tells the
  app the previous version (``Installed(..., rollback=why)``); the bad
  version is not installed again until the plan names another one.
- :class:`Undeploy` asks the app to stop the service and, once it has
  (:class:`Undeployed`), uninstalls every non-current version.

Threads: installs run one at a time in the agent's single worker thread,
never in the actor's loop, so the mailbox stays responsive during a long
pip install. The worker reports back only by ``tell()``: every progress step
of the installer, then the result or the error. Jobs (installs, rollbacks,
uninstalls) run in arrival order, so a rollback never races an install of
the same service.

Status, on the component lifecycle (:data:`dsmt.states.COMPONENT`): each
job takes the agent ``requested`` (job accepted; ``resumed_from`` when it
resumes a journaled install) → ``initiated`` (first stage) → ``instantiated``
(activated) → ``running`` (app told), or → ``failed``. Within ``initiated``
every stage step (started, progress, done) is re-published as a status event
with the same state and typed detail — ``service, version, stage, step,
message, attempt, stage_started, stage_elapsed, elapsed`` — so a subscriber
sees fetch → verify → unpack → install → activate in order. (Deviation: a
stage is not a state of the lifecycle table, so these are re-publications of
the current state, not transitions; observers are told each one too.)

On start the agent resumes every journaled install that was interrupted
(not the failed ones: the plan will ask again) and says at which stage.
On stop the install in progress is abandoned at its next progress step; the
journal keeps that stage ``running``, so the next agent resumes it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pykka

from dsmt.actor import Actor, Origin
from dsmt.errors import ConfigError
from dsmt.states import FAILED, INITIATED, INSTANTIATED, REQUESTED, RUNNING

from actors._agent_jobs import (INSTALL, ROLLBACK, UNINSTALL, Abandoned, Finished, Job, Step,
                                run_job, step_kind)
from actors.deploy import journal as j
from actors.deploy.errors import (ChecksumError, DeployError, FetchError, InstallError,
                                  UnsafeArchiveError)
from actors.deploy.fetch import FetchLimits
from actors.deploy.installer import Installer, InstallRequest
from actors.deploy.unpack import UnpackLimits
from actors.messages import Deploy, Installed, Rollback, Undeploy, Undeployed
from actors.plan import Plan, Service
from actors.workspace import Workspace

log = logging.getLogger(__name__)

#: error class -> the words a user reads in the reason (first match wins)
ERROR_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (ChecksumError, "checksum mismatch"),
    (UnsafeArchiveError, "unsafe archive"),
    (InstallError, "install failed"),
    (FetchError, "fetch failed"),
    (ConfigError, "bad manifest"),
    (DeployError, "deploy failed"),
)


class DeploymentAgent(Actor):
    """The sliver's deployment agent (see the module docstring)."""

    def __init__(
        self,
        origin: Origin,
        workspace: Workspace,
        journal: j.Journal | None = None,
        *,
        app: str | None = None,
        plan: Plan | None = None,
        fetch_limits: FetchLimits = FetchLimits(),
        unpack_limits: UnpackLimits = UnpackLimits(),
        pip_timeout: float | None = 600.0,
        **config: Any,
    ) -> None:
        app = app or f"/{origin.ctx.sliver}/app"
        super().__init__(origin, workspace=str(workspace.root), app=app, **config)
        self.workspace = workspace
        self.app_path = app
        self._journal = journal
        self._own_journal = journal is None
        self._plans: dict[str, Service] = dict(plan.services) if plan is not None else {}
        self._limits = dict(fetch_limits=fetch_limits, unpack_limits=unpack_limits,
                            pip_timeout=pip_timeout)
        self._queue: deque[Job] = deque()
        self._current: Job | None = None
        self._rejected: dict[tuple[str, str], str] = {}  # rolled back: (service, version) -> why
        self._closing = threading.Event()
        self._worker: ThreadPoolExecutor | None = None
        self.last_error: str | None = None

    # --- hooks (actor thread) ---------------------------------------------------------

    def on_start(self) -> None:
        self.change_state(REQUESTED)
        if self._journal is None:
            self._journal = j.Journal(self.workspace.state_db, clock=self.ctx.clock)
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"dsmt-agent{self.path}")
        self.change_state(INITIATED)
        self.change_state(INSTANTIATED)
        self.change_state(RUNNING, "idle")
        for record in self._journal.unfinished():
            if record.failed:
                continue  # it failed for a reason a plain retry will not fix; the plan asks again
            request = InstallRequest(record.service, record.version, record.source, record.sha256)
            self._queue.append(Job(INSTALL, record.service, record.version, request,
                                    self._plans.get(record.service), resumed_from=record.resume_at))
        self._next()

    def on_stop(self) -> None:
        self._close()

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._close()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Deploy):
            return self._deploy(message)
        if isinstance(message, Rollback):
            return self._enqueue(Job(ROLLBACK, message.service, message.version, why=message.why))
        if isinstance(message, Undeploy):
            return self._undeploy(message)
        if isinstance(message, Undeployed):
            return self._enqueue(Job(UNINSTALL, message.service))
        if isinstance(message, Step):
            return self._step(message)
        if isinstance(message, Finished):
            return self._finished(message)
        return super().on_receive(message)

    # --- API (through a proxy) ----------------------------------------------------------

    def inspect(self) -> dict[str, Any]:
        snapshot = super().inspect()
        current = self._current
        snapshot.update(
            job=None if current is None else {"kind": current.kind, "service": current.service,
                                              "version": current.version, "stage": current.stage},
            queued=[{"kind": q.kind, "service": q.service, "version": q.version}
                    for q in self._queue],
            rejected={f"{s} {v}": why for (s, v), why in self._rejected.items()},
            last_error=self.last_error,
        )
        return snapshot

    # --- messages ---------------------------------------------------------------------

    def _deploy(self, message: Deploy) -> None:
        names = message.services if message.services is not None else list(message.plan.services)
        for name in names:
            service = message.plan.service(name)
            self._plans[name] = service
            if (name, service.version) in self._rejected:
                log.warning("%s: not installing %s %s again: it was rolled back (%s)", self.path,
                            name, service.version, self._rejected[name, service.version])
                continue
            request = InstallRequest(name, service.version, service.package, service.sha256)
            self._enqueue(Job(INSTALL, name, service.version, request, service))

    def _undeploy(self, message: Undeploy) -> None:
        app = self.ctx.registry.get(self.app_path)
        if app is None:
            self._enqueue(Job(UNINSTALL, message.service))
            return
        try:
            app.tell(Undeploy(message.service, reply_to=self.actor_ref))
        except pykka.ActorDeadError:
            self._enqueue(Job(UNINSTALL, message.service))

    def _enqueue(self, job: Job) -> None:
        self._queue.append(job)
        self._next()

    def _next(self) -> None:
        """Start the next job if none runs (actor thread)."""
        if self._current is not None or not self._queue or self._worker is None:
            return
        job = self._current = self._queue.popleft()
        job.started = self.ctx.clock.wall()
        detail = self._detail(job)
        if job.resumed_from is not None:
            why = f"resuming {job.service} {job.version} at {job.resumed_from}"
        else:
            why = f"{job.kind} {job.service}" + (f" {job.version}" if job.version else "")
        self.change_state(REQUESTED, why, **detail)
        self._worker.submit(self._work, job)

    def _step(self, step: Step) -> None:
        job = step.job
        if job is not self._current:
            return
        kind = step_kind(step.text)
        if kind == "started":
            job.stage_started[step.stage] = step.at
        job.stage = step.stage
        began = job.stage_started.get(step.stage)
        detail = self._detail(job, stage=step.stage, step=kind, message=step.text,
                              attempt=step.attempt, stage_started=began,
                              stage_elapsed=None if began is None else round(step.at - began, 6),
                              elapsed=round(step.at - job.started, 6))
        if self.state == REQUESTED:
            self.change_state(INITIATED, f"{job.service} {job.version}: {step.stage}", **detail)
        else:
            self._republish(detail)

    def _finished(self, done: Finished) -> None:
        job = done.job
        if job is not self._current:
            return
        self._current = None
        if done.error is not None:
            self._failed(job, done.error)
        elif job.kind == INSTALL:
            self._installed(job, done.result)
        elif job.kind == ROLLBACK:
            self._rolled_back(job, done.result)
        else:
            self._to_running(f"{job.service}: removed versions {', '.join(done.result) or 'none'}",
                             **self._detail(job, removed=list(done.result)))
        self._next()

    def _installed(self, job: Job, installed: Any) -> None:
        detail = self._detail(job, stage=j.ACTIVATE, step="done",
                              elapsed=round(self.ctx.clock.wall() - job.started, 6),
                              previous=installed.previous)
        self.change_state(INSTANTIATED, f"{job.service} {job.version} is active", **detail)
        plan = job.plan or self._plans.get(job.service)
        told = self._tell_app(Installed(job.service, installed.version, installed.path,
                                        installed.manifest, plan))
        self.change_state(RUNNING, f"{job.service} {job.version} installed", app_told=told,
                          **detail)

    def _rolled_back(self, job: Job, result: Any) -> None:
        if result is None:
            self._to_running(f"{job.service}: no rollback, {job.version} is no longer active",
                             **self._detail(job))
            return
        bad, installed = result
        self._rejected[job.service, bad] = job.why or "rolled back"
        why = f"{job.service} rolled back from {bad} to {installed.version}: {job.why}"
        told = self._tell_app(Installed(job.service, installed.version, installed.path,
                                        installed.manifest, self._plans.get(job.service),
                                        rollback=job.why, rolled_back_from=bad))
        self._to_running(why, **self._detail(job, version=installed.version, rolled_back_from=bad,
                                             rollback=job.why, app_told=told))

    def _failed(self, job: Job, error: BaseException) -> None:
        words = next((w for cls, w in ERROR_KINDS if isinstance(error, cls)), None)
        stage = getattr(error, "stage", None) or job.stage or job.kind
        if words is None:
            log.error("%s: %s of %s failed", self.path, job.kind, job.service,
                      exc_info=(type(error), error, error.__traceback__))
            words = f"{type(error).__name__}"
        reason = f"{stage}: {words}: {error}"
        self.last_error = reason
        self.change_state(FAILED, reason, **self._detail(
            job, stage=stage, error=type(error).__name__,
            elapsed=round(self.ctx.clock.wall() - job.started, 6)))

    # --- the worker (worker thread) -----------------------------------------------------

    def _work(self, job: Job) -> None:
        try:
            result = self._run(job)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the actor
            if isinstance(exc, Abandoned) or self._closing.is_set():
                return
            self._report(Finished(job, error=exc))
        else:
            self._report(Finished(job, result))

    def _run(self, job: Job) -> Any:
        journal = self._journal
        assert journal is not None

        def progress(stage: str, text: str) -> None:
            # Abandon only at a stage boundary: raised inside a stage, the installer would
            # journal the stage as failed, and a failed install is not resumed.
            boundary = step_kind(text) in ("started", "resuming", "done")
            if self._closing.is_set() and boundary:
                raise Abandoned(stage)
            attempts = 0
            if job.version is not None and stage in j.STAGES:
                attempts = next((r.attempts for r in journal.stages(job.service, job.version)
                                 if r.stage == stage), 0)
            try:
                self.actor_ref.tell(Step(job, stage, text, attempts, self.ctx.clock.wall()))
            except pykka.ActorDeadError:
                if boundary:
                    raise Abandoned(stage) from None

        installer = Installer(self.workspace, journal, progress=progress, **self._limits)
        return run_job(job, installer, self.workspace)

    def _report(self, message: Any) -> None:
        try:
            self.actor_ref.tell(message)
        except pykka.ActorDeadError:
            pass  # stopped meanwhile: the journal tells the next agent where to resume

    # --- helpers (actor thread) ---------------------------------------------------------

    def _tell_app(self, message: Any) -> bool:
        app = self.ctx.registry.get(self.app_path)
        if app is None:
            log.warning("%s: no app supervisor at %s to tell %s", self.path, self.app_path,
                        type(message).__name__)
            return False
        try:
            app.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def _detail(self, job: Job, **extra: Any) -> dict[str, Any]:
        detail: dict[str, Any] = {"job": job.kind, "service": job.service, "version": job.version,
                                  "queued": len(self._queue)}
        if job.resumed_from is not None:
            detail["resumed_from"] = job.resumed_from
        detail.update(extra)
        return detail

    def _to_running(self, reason: str, **detail: Any) -> None:
        for state in (INITIATED, INSTANTIATED, RUNNING):
            if self.machine.allowed(self.state, state):
                self.change_state(state, reason, **detail)

    def _republish(self, detail: dict[str, Any]) -> None:
        """Publish a stage step in the current state (see the module docstring's deviation)."""
        self.detail = detail
        self.count("steps")
        self.publish_status()
        for observer in self.ctx.registry.observers(self.path):
            self.report_state(observer)

    def _close(self) -> None:
        self._closing.set()
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
        if self._own_journal and self._journal is not None:
            self._journal.close()

