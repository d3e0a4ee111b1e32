"""cgroup v2 for a sliver's processes: detect whether DSMT may use it, make sub-cgroups.

DSMT never takes a cgroup it was not given. It uses the node's **own**
cgroup v2 directory (from ``/proc/self/cgroup`` under the cgroup2 mount of
``/proc/self/mountinfo``) and creates one sub-cgroup per service instance in
it, ``dsmt.<sliver>.<service>.<instance>``, where it writes ``memory.max``
and ``cpu.max``. That works when the node's cgroup is *delegated* to it
(systemd ``Delegate=yes``, a container's private cgroup namespace, or root):

- a cgroup2 hierarchy is mounted and the node is in it;
- ``memory`` and ``cpu`` are in the node cgroup's ``cgroup.controllers``;
- the directory and its ``cgroup.subtree_control`` are writable;
- ``memory`` and ``cpu`` are in ``cgroup.subtree_control``, or can be put
  there (the kernel refuses that with EBUSY while the node's cgroup itself
  holds processes and is not the root: the "no internal processes" rule;
  the unit file must then start the node in a leaf of its delegated cgroup).

:func:`probe` checks each in turn and returns a :class:`CgroupTree` whose
``status`` is ``available: <dir>`` or ``unavailable: <why>``. Nothing here
raises for an unusable cgroup: the sliver runs without one and says why.
Writes that fail later (an instance cgroup) are reported the same way.

Seam: :func:`probe` takes the node's cgroup directory (``base``) for tests,
which point it at a directory laid out like cgroupfs.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("memory", "cpu")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class CgroupTree:
    """The node's cgroup v2 directory when DSMT may create sub-cgroups in it."""

    base: Path | None
    why: str | None = None

    @property
    def available(self) -> bool:
        return self.base is not None and self.why is None

    @property
    def status(self) -> str:
        return f"available: {self.base}" if self.available else f"unavailable: {self.why}"

    def instance_dir(self, sliver: str, service: str, instance: object) -> Path:
        """The sub-cgroup of one service instance (not created)."""
        assert self.base is not None, "no cgroup tree"
        name = ".".join(_UNSAFE.sub("_", str(part)) for part in ("dsmt", sliver, service, instance))
        return self.base / name

    def create(self, path: Path, files: dict[str, str]) -> str | None:
        """Make ``path`` and write ``files`` in it; None on success, else why not."""
        try:
            path.mkdir(exist_ok=True)
        except OSError as exc:
            return f"cannot create {path}: {exc.strerror}"
        for name, value in files.items():
            try:
                (path / name).write_text(value)
            except OSError as exc:
                try:
                    self.remove(path)  # half-configured: no process may join it
                except OSError:
                    pass
                return f"cannot write {value!r} to {path / name}: {exc.strerror}"
        return None

    @staticmethod
    def remove(path: Path) -> None:
        """Remove an instance's sub-cgroup; one still holding processes stays (EBUSY)."""
        try:
            path.rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                raise


def own_cgroup(mountinfo: Path = Path("/proc/self/mountinfo"),
               cgroup: Path = Path("/proc/self/cgroup")) -> tuple[Path | None, str | None]:
    """``(directory, None)`` of this process's cgroup v2 group, or ``(None, why)``."""
    try:
        mounts = mountinfo.read_text().splitlines()
        groups = cgroup.read_text().splitlines()
    except OSError as exc:
        return None, f"cannot read {exc.filename}: {exc.strerror}"
    mount = None
    for line in mounts:
        # mountinfo: id parent major:minor root mountpoint opts [optional...] - fstype source super
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            mount = Path(left.split(" ")[4])
            break
    if mount is None:
        return None, "no cgroup v2 hierarchy is mounted"
    relative = next((line[3:] for line in groups if line.startswith("0::")), None)
    if relative is None:
        return None, f"this process is in no cgroup v2 group (hierarchy at {mount})"
    return mount / relative.lstrip("/"), None


def probe(base: Path | None = None, controllers: tuple[str, ...] = CONTROLLERS) -> CgroupTree:
    """Check whether sub-cgroups with ``controllers`` can be made under ``base`` (default: ours).

    May write ``+memory +cpu`` to ``base/cgroup.subtree_control``, the one
    change DSMT makes to its own cgroup. Never raises.
    """
    if base is None:
        base, why = own_cgroup()
        if base is None:
            return CgroupTree(None, why)
    try:
        return _check(base, controllers)
    except OSError as exc:
        return CgroupTree(base, f"cannot read {exc.filename or base}: {exc.strerror}")


def _check(base: Path, controllers: tuple[str, ...]) -> CgroupTree:
    if not base.is_dir():
        return CgroupTree(base, f"{base} is not a directory")
    offered = (base / "cgroup.controllers").read_text().split()
    missing = [c for c in controllers if c not in offered]
    if missing:
        return CgroupTree(base, f"controller(s) {', '.join(missing)} not offered to {base} "
                                f"(it has: {', '.join(offered) or 'none'})")
    subtree = base / "cgroup.subtree_control"
    if not (os.access(base, os.W_OK | os.X_OK) and os.access(subtree, os.W_OK)):
        return CgroupTree(base, f"{base} is not delegated to uid {os.geteuid()} (not writable)")
    enabled = subtree.read_text().split()
    wanted = [c for c in controllers if c not in enabled]
    if wanted:
        try:
            subtree.write_text(" ".join(f"+{c}" for c in wanted))
        except OSError as exc:
            hint = (" (its processes must move to a leaf cgroup first)"
                    if exc.errno == errno.EBUSY else "")
            return CgroupTree(base, f"cannot enable {', '.join(wanted)} for sub-cgroups of "
                                    f"{base}: {exc.strerror}{hint}")
    return CgroupTree(base)
