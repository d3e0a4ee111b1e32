"""The deployment agent's jobs, and what its worker thread does to run one.

Private to :class:`actors.agent.DeploymentAgent`, whose module docstring is
the contract. A :class:`Job` (install, rollback or uninstall of one
service) is queued and run by the agent one at a time; the worker thread
calls :func:`run_job`, reports each installer progress line to the agent
as a :class:`Step` and the outcome as a :class:`Finished`; :class:`Abandoned`
ends a job at a stage boundary once the agent is stopping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actors.deploy.installer import Installer, InstallRequest
from actors.plan import Service
from actors.workspace import Workspace

INSTALL, ROLLBACK, UNINSTALL = "install", "rollback", "uninstall"


@dataclass
class Job:
    """One install, rollback or uninstall of one service, queued by the agent."""

    kind: str
    service: str
    version: str | None = None
    request: InstallRequest | None = None
    plan: Service | None = None
    resumed_from: str | None = None
    why: str | None = None
    started: float = 0.0
    stage: str | None = None
    stage_started: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """A progress line of the installer, for the agent to publish (actor thread)."""

    job: Job
    stage: str
    text: str
    attempt: int
    at: float


@dataclass(frozen=True)
class Finished:
    """How a job ended: its result, or the error it raised."""

    job: Job
    result: Any = None
    error: BaseException | None = None


class Abandoned(Exception):
    """Raised in the worker from the progress callback once the agent is stopping."""


def run_job(job: Job, installer: Installer, workspace: Workspace) -> Any:
    """Run ``job`` with ``installer`` (worker thread); what it returns goes in ``Finished``.

    Install: the installer's result. Rollback: ``(bad version, installed)``,
    or None when ``job.version`` is no longer the active one. Uninstall: the
    versions removed (all but the active one). Raises what the installer raises.
    """
    if job.kind == INSTALL:
        assert job.request is not None
        return installer.install(job.request)
    if job.kind == ROLLBACK:
        bad = workspace.current(job.service)
        if job.version is not None and bad != job.version:
            return None
        back = installer.rollback(job.service)
        return bad, installer.installed(job.service, back)
    current = workspace.current(job.service)
    removed = []
    for version in workspace.installed(job.service):
        if version != current:
            installer.uninstall(job.service, version)
            removed.append(version)
    return removed


def step_kind(text: str) -> str:
    """The installer's progress text as one word: started, resuming, done, failed or progress."""
    if text in ("started", "resuming after interruption"):
        return "started"
    if text.startswith("resuming "):
        return "resuming"
    if text == "done" or text.startswith("done: ") or text.endswith(" is already installed"):
        return "done"
    if text.startswith("failed: "):
        return "failed"
    return "progress"
