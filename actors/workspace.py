"""The sliver's workspace: where packages, versions, logs and the state database live.

Layout under one root directory::

    root/
      packages/                  downloaded archives: <name>-<version>.tar.gz|.zip (+ .part)
      versions/<name>-<version>/ one unpacked package, with its own venv in .venv/
      current/<name>  -> ../versions/<name>-<version>    the active version
      previous/<name> -> ../versions/<name>-<version>    what rollback() returns to
      logs/                      install logs and (later) service logs
      run/                       sockets and pid files, mode 0700
      state.db                   the journal (SQLite, WAL)
      deselected                 present while the sliver is deselected (when and why)

Deviation from the single ``current`` link of DESIGN.md §5: a plan may run
several services from different packages on one sliver, so ``current`` is a
directory holding one link per package name; activating one package never
touches another's link. Each link is still switched atomically (a temporary
link renamed over the old one).

:meth:`Workspace.create` is idempotent: it makes what is missing, tightens
``run/`` to 0700, and raises :class:`WorkspaceError` when the root or a
directory in it is not usable (not a directory, not ours, not writable).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from dsmt.errors import DsmtError

_DIRS = ("packages", "versions", "current", "previous", "logs", "run")
_PRIVATE = ("run",)
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
VERSION_RE = re.compile(r"^[0-9][A-Za-z0-9._+-]{0,63}$")


class WorkspaceError(DsmtError):
    """The workspace root or a directory in it cannot be used; names the path and why."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"workspace {path}: {why}")
        self.path = path
        self.why = why


def check_name(name: str, version: str) -> None:
    """Raise ValueError unless ``name`` and ``version`` are safe as one path element."""
    if not NAME_RE.match(name):
        raise ValueError(f"invalid package name {name!r} (lower-case letters, digits, . _ -)")
    if not VERSION_RE.match(version) or ".." in version:
        raise ValueError(
            f"invalid version {version!r} (starts with a digit; letters, digits, . _ + -)")


@dataclass(frozen=True)
class Workspace:
    """Paths of a sliver workspace rooted at ``root``; see the module docstring."""

    root: Path

    @classmethod
    def create(cls, root: str | Path) -> "Workspace":
        """Make (or check) the layout under ``root`` and return it. Idempotent."""
        root = Path(root).absolute()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(root, f"cannot create: {exc.strerror}") from None
        ws = cls(root)
        ws._check_dir(root)
        for name in _DIRS:
            path = root / name
            try:
                path.mkdir(mode=0o700 if name in _PRIVATE else 0o755, exist_ok=True)
            except OSError as exc:
                raise WorkspaceError(path, f"cannot create: {exc.strerror}") from None
            ws._check_dir(path)
        run = root / "run"
        if stat.S_IMODE(run.stat().st_mode) != 0o700:
            os.chmod(run, 0o700)
        return ws

    @staticmethod
    def _check_dir(path: Path) -> None:
        try:
            st = path.lstat()
        except OSError as exc:
            raise WorkspaceError(path, exc.strerror or str(exc)) from None
        if not stat.S_ISDIR(st.st_mode):
            raise WorkspaceError(path, "is not a directory")
        if st.st_uid != os.geteuid():
            raise WorkspaceError(path, f"owned by uid {st.st_uid}, not by us ({os.geteuid()})")
        if not os.access(path, os.W_OK | os.X_OK):
            raise WorkspaceError(path, "not writable")

    # --- paths -----------------------------------------------------------------
    @property
    def packages(self) -> Path:
        return self.root / "packages"

    @property
    def versions(self) -> Path:
        return self.root / "versions"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def state_db(self) -> Path:
        return self.root / "state.db"

    @property
    def deselected(self) -> Path:
        return self.root / "deselected"

    def version_dir(self, name: str, version: str) -> Path:
        check_name(name, version)
        return self.versions / f"{name}-{version}"

    def current_link(self, name: str) -> Path:
        check_name(name, "0")
        return self.root / "current" / name

    def previous_link(self, name: str) -> Path:
        check_name(name, "0")
        return self.root / "previous" / name

    def install_log(self, name: str, version: str) -> Path:
        check_name(name, version)
        return self.logs / f"install-{name}-{version}.log"

    # --- what is there ---------------------------------------------------------
    def current(self, name: str) -> str | None:
        """The active version of package ``name``, or None."""
        return self._link_version(self.current_link(name), name)

    def previous(self, name: str) -> str | None:
        """The version ``rollback()`` would return to, or None."""
        return self._link_version(self.previous_link(name), name)

    def installed(self, name: str) -> list[str]:
        """Versions of ``name`` unpacked under versions/, sorted by name."""
        prefix = f"{name}-"
        return sorted(
            p.name[len(prefix):]
            for p in self.versions.iterdir()
            if p.is_dir() and p.name.startswith(prefix) and not p.name.startswith(".")
            and VERSION_RE.match(p.name[len(prefix):])
        )

    def _link_version(self, link: Path, name: str) -> str | None:
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            return None
        base = os.path.basename(target.rstrip("/"))
        prefix = f"{name}-"
        return base[len(prefix):] if base.startswith(prefix) else None
