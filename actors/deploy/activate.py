"""Switching the active version of a package: activate, roll back, uninstall.

The active version is the symlink ``current/<name>``; the one before it is
``previous/<name>`` (see :mod:`actors.workspace`). A switch writes a new
link under a temporary name and ``os.replace``\\ s it over the old one, so at
every instant the link points at a whole version directory, old or new.
:func:`activate` records ``previous`` *before* it moves ``current``: a crash
in between leaves both pointing at the old version, never a rollback target
older than the version that was running.

Versions are side by side under ``versions/``; nothing here deletes a
version except :func:`uninstall`, which refuses the active one.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from actors.deploy.errors import DeployError
from actors.deploy.fetch import SUFFIXES
from actors.workspace import Workspace


def activate(ws: Workspace, name: str, version: str) -> str | None:
    """Make ``version`` the active one; return the version it replaced (or None)."""
    target = ws.version_dir(name, version)
    if not target.is_dir():
        raise DeployError("activate", f"{name} {version} is not installed ({target} missing)")
    old = ws.current(name)
    if old == version:
        return ws.previous(name)
    if old is not None:
        _point(ws.previous_link(name), name, old)
    _point(ws.current_link(name), name, version)
    return old


def rollback(ws: Workspace, name: str) -> str:
    """Swap ``current`` and ``previous``; return the version now active."""
    back = ws.previous(name)
    if back is None:
        raise DeployError("activate", f"{name}: no previous version to roll back to")
    if not ws.version_dir(name, back).is_dir():
        raise DeployError("activate", f"{name}: previous version {back} is no longer installed")
    now = ws.current(name)
    _point(ws.current_link(name), name, back)
    if now is not None:
        _point(ws.previous_link(name), name, now)
    return back


def uninstall(ws: Workspace, name: str, version: str) -> None:
    """Remove an installed, non-active version (its directory and archive)."""
    if ws.current(name) == version:
        raise DeployError("uninstall",
                          f"{name} {version} is the active version; activate another first")
    if ws.previous(name) == version:
        ws.previous_link(name).unlink(missing_ok=True)
    path = ws.version_dir(name, version)
    if path.exists():
        # Renamed first so a crash mid-delete never leaves a half version under its real name.
        trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
        os.rename(path, trash)
        shutil.rmtree(trash)
    for suffix in SUFFIXES:
        for end in ("", ".part"):
            (ws.packages / f"{name}-{version}{suffix}{end}").unlink(missing_ok=True)


def _point(link: Path, name: str, version: str) -> None:
    target = os.path.join("..", "versions", f"{name}-{version}")
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    fd = os.open(link.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
