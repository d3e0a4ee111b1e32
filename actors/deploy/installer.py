"""The install pipeline of one package version: fetch → verify → unpack → install → activate.

:class:`Installer` runs the stages in order, journaling each one (start,
done or failed) in :class:`actors.deploy.journal.Journal`, and reports every
step to the ``progress(stage, detail)`` callback, which the deployment agent
turns into status events. It runs in the caller's thread and blocks; the
callback runs in that thread too, and an exception from it aborts the
install like a crash would (the stage stays ``running`` in the journal).

Resuming: :meth:`Installer.install` starts at the journal's resume point.
Every stage is idempotent, so resuming a stage that was interrupted runs it
again: a ``.part`` download continues with a Range request, a half unpack is
thrown away and redone, the install step runs again (install commands must
tolerate a second run), activation is a no-op if the link already points at
the version. Before resuming, the journal's claims are checked against the
disk: a missing archive sends the install back to ``fetch``, a missing
version directory back to ``unpack``.

Any stage failing leaves ``current`` untouched, because activation is the
last stage: the previously active version stays active.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from actors.deploy import activate as _activate
from actors.deploy import journal as j
from actors.deploy import manifest as _manifest
from actors.deploy.errors import DeployError
from actors.deploy.fetch import FetchLimits, archive_suffix, check_sha256, fetch
from actors.deploy.install import run_step
from actors.deploy.launch import environment
from actors.deploy.manifest import Manifest
from actors.deploy.unpack import UnpackLimits, remove_stale, unpack
from actors.deploy.venv import create_venv, pip_install, venv_of
from actors.deploy.verify import sha256_file, verify
from actors.workspace import Workspace, check_name

Progress = Callable[[str, str], None]
_MiB = 1024 * 1024


@dataclass(frozen=True)
class InstallRequest:
    """What the plan asks for: package ``name`` at ``version``, from ``source``, with ``sha256``."""

    name: str
    version: str
    source: str
    sha256: str | None


@dataclass(frozen=True)
class Installed:
    """An installed version: where it is, its manifest, and whether it is the active one."""

    name: str
    version: str
    path: Path
    manifest: Manifest
    active: bool
    previous: str | None


class Installer:
    """Installs package versions into one workspace, journaled and resumable."""

    def __init__(
        self,
        workspace: Workspace,
        journal: j.Journal,
        *,
        progress: Progress | None = None,
        fetch_limits: FetchLimits = FetchLimits(),
        unpack_limits: UnpackLimits = UnpackLimits(),
        pip_timeout: float | None = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.workspace = workspace
        self.journal = journal
        self._progress = progress if progress is not None else (lambda stage, detail: None)
        self.fetch_limits = fetch_limits
        self.unpack_limits = unpack_limits
        self.pip_timeout = pip_timeout
        self._sleep = sleep

    def install(self, request: InstallRequest, *, activate: bool = True) -> Installed:
        """Run (or resume) the pipeline for ``request``; raise DeployError or ConfigError.

        With ``activate=False`` it stops after ``install``; :meth:`activate`
        finishes the job later.
        """
        name, version = request.name, request.version
        try:
            check_name(name, version)
        except ValueError as exc:
            raise DeployError(j.FETCH, str(exc)) from None
        sha256 = check_sha256(request.source, request.sha256)
        archive = self.workspace.packages / f"{name}-{version}{archive_suffix(request.source)}"
        resume = self.journal.begin_install(name, version, request.source, sha256)
        interrupted = {r.stage for r in self.journal.stages(name, version) if r.status == j.RUNNING}
        resume = self._check_resume(name, version, archive, resume)
        if resume is None:
            self._progress(j.ACTIVATE, f"{name} {version} is already installed")
            if activate and self.workspace.current(name) != version:
                return self.activate(name, version)
            return self.installed(name, version)
        if resume != j.FETCH or interrupted:
            self._progress(resume, f"resuming {name} {version} at {resume}")
        for stage in j.STAGES[j.STAGES.index(resume):]:
            if stage == j.ACTIVATE and not activate:
                break
            self._run(name, version, stage, stage in interrupted,
                      lambda s=stage: self._do(s, request, sha256, archive))
        return self.installed(name, version)

    def activate(self, name: str, version: str) -> Installed:
        """Make an installed ``version`` active (the journaled ``activate`` stage)."""
        self._run(name, version, j.ACTIVATE, False,
                  lambda: _activate.activate(self.workspace, name, version))
        return self.installed(name, version)

    def rollback(self, name: str) -> str:
        """Return ``name`` to its previous version; the version now active."""
        back = _activate.rollback(self.workspace, name)
        self._progress(j.ACTIVATE, f"rolled back to {back}")
        return back

    def uninstall(self, name: str, version: str) -> None:
        """Remove a non-active version, its archive and its journal records."""
        _activate.uninstall(self.workspace, name, version)
        self.journal.forget_install(name, version)
        self._progress("uninstall", f"{name} {version} removed")

    def installed(self, name: str, version: str) -> Installed:
        path = self.workspace.version_dir(name, version)
        return Installed(
            name, version, path, _manifest.load(path),
            self.workspace.current(name) == version, self.workspace.previous(name),
        )

    def unfinished(self) -> list[j.InstallRecord]:
        """Installs the journal shows as not yet active: what to resume after a restart."""
        return self.journal.unfinished()

    # --- stages ----------------------------------------------------------------
    def _check_resume(self, name: str, version: str, archive: Path,
                      resume: str | None) -> str | None:
        """Move the resume point back when the disk no longer holds what a done stage made."""
        order = j.STAGES.index
        claimed = resume
        if not self.workspace.version_dir(name, version).is_dir() and \
                (resume is None or order(resume) > order(j.UNPACK)):
            resume = j.UNPACK
        if resume in (j.VERIFY, j.UNPACK) and not archive.exists():
            resume = j.FETCH
        if resume != claimed:
            self.journal.reset(name, version, resume)
        return resume

    def _run(self, name: str, version: str, stage: str, interrupted: bool, work) -> None:
        self.journal.start(name, version, stage)
        self._progress(stage, "resuming after interruption" if interrupted else "started")
        try:
            detail = work() or ""
        except Exception as exc:
            self.journal.fail(name, version, stage, str(exc))
            self._progress(stage, f"failed: {exc}")
            raise
        self.journal.done(name, version, stage, detail)
        self._progress(stage, f"done{': ' + detail if detail else ''}")

    def _do(self, stage: str, request: InstallRequest, sha256: str, archive: Path) -> str:
        name, version = request.name, request.version
        if stage == j.FETCH:
            if archive.exists() and sha256_file(archive) != sha256:
                archive.unlink()  # left by an install of the same version from another source
            fetch(request.source, archive, sha256=sha256, limits=self.fetch_limits,
                  sleep=self._sleep, progress=self._fetch_progress())
            return f"{archive.stat().st_size} bytes"
        if stage == j.VERIFY:
            verify(archive, sha256)
            return f"sha256 {sha256}"
        if stage == j.UNPACK:
            return self._unpack(name, version, archive)
        if stage == j.INSTALL:
            return self._install(name, version)
        previous = _activate.activate(self.workspace, name, version)
        return f"previous {previous}" if previous else ""

    def _unpack(self, name: str, version: str, archive: Path) -> str:
        ws = self.workspace
        vdir = ws.version_dir(name, version)
        if version in (ws.current(name), ws.previous(name)) and vdir.exists():
            raise DeployError(j.UNPACK, f"{name} {version} is active or the rollback target; "
                                        "a new build needs a new version number")
        remove_stale(ws.versions)
        if vdir.exists():
            shutil.rmtree(vdir)
        unpack(archive, vdir, limits=self.unpack_limits)
        manifest = _manifest.load(vdir)
        _manifest.check_matches(manifest, name, version)
        return str(vdir)

    def _install(self, name: str, version: str) -> str:
        vdir = self.workspace.version_dir(name, version)
        log = self.workspace.install_log(name, version)
        manifest = _manifest.load(vdir)
        venv = create_venv(venv_of(vdir), log=log)
        env = environment(manifest, vdir)
        if manifest.requirements:
            self._progress(j.INSTALL, f"pip install {len(manifest.requirements)} requirement(s)")
            pip_install(venv, manifest.requirements, cwd=vdir, log=log,
                        timeout=self.pip_timeout, env=env)
        if manifest.install is not None:
            self._progress(j.INSTALL, "running the install command")
            run_step(manifest.install.command, cwd=vdir, log=log,
                     timeout=manifest.install.timeout, env=env)
        return f"log {log}"

    def _fetch_progress(self) -> Callable[[int, int | None], None]:
        shown = [-1]

        def report(done: int, total: int | None) -> None:
            step = done * 10 // total if total else done // _MiB
            if step != shown[0]:
                shown[0] = step
                self._progress(j.FETCH,
                               f"{_size(done)} of {_size(total)}" if total else _size(done))

        return report


def _size(n: int) -> str:
    return f"{n / _MiB:.1f} MiB" if n >= _MiB else f"{n / 1024:.1f} KiB"
