"""What the container manager puts on an application process: rlimits and a cgroup.

:class:`Limits` is the configuration (frozen; None means "leave as
inherited", never "zero"). :func:`process_limits` turns it into the
:class:`ProcessLimits` of one service instance: the rlimits to set, clamped
to the node's own hard limits (a child can never be given more than its
parent holds, unless the node is privileged, and DSMT does not try), and
the instance's cgroup directory when cgroup v2 is usable.

A process actor applies them in the child between fork and exec::

    subprocess.Popen(argv, preexec_fn=limits.preexec, ...)

:meth:`ProcessLimits.preexec` only calls ``setrlimit`` and writes ``0`` to
the cgroup's ``cgroup.procs`` (which moves the calling process): no import,
no lock, no allocation worth naming, which is what code running after
``fork()`` in a threaded parent may safely do. If it raises, ``Popen``
raises ``subprocess.SubprocessError`` and nothing runs: a process that
would escape its limits is not started.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INFINITY = resource.RLIM_INFINITY


@dataclass(frozen=True)
class Limits:
    """Per-process limits of a sliver's application processes.

    rlimits (applied to each process): ``nofile`` open files, ``address_space``
    (RLIMIT_AS, bytes), ``data`` (RLIMIT_DATA, bytes), ``core`` (core file
    bytes; 0 = no core dumps), ``nproc`` (processes of the *user*, as the
    kernel counts them). cgroup v2 (applied to each instance's sub-cgroup, when
    available): ``memory_max`` bytes, ``cpu_max`` in CPUs (0.5 = half of one
    CPU) over ``cpu_period`` seconds. None leaves a limit as inherited (or
    ``max`` in the cgroup).
    """

    nofile: int | None = 4096
    address_space: int | None = None
    data: int | None = None
    core: int | None = 0
    nproc: int | None = None
    memory_max: int | None = None
    cpu_max: float | None = None
    cpu_period: float = 0.1

    def __post_init__(self) -> None:
        for name in ("nofile", "address_space", "data", "core", "nproc", "memory_max"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"limit {name} must be an integer >= 0 or None, not {value!r}")
        if self.cpu_max is not None and not self.cpu_max > 0:
            raise ValueError(f"limit cpu_max must be > 0 CPUs or None, not {self.cpu_max!r}")
        if not 0.001 <= self.cpu_period <= 1.0:
            raise ValueError("limit cpu_period must be within 0.001 and 1 second")

    def rlimits(self) -> dict[int, int]:
        """``{RLIMIT_*: value}`` for the limits that are set."""
        wanted = {
            resource.RLIMIT_NOFILE: self.nofile,
            resource.RLIMIT_AS: self.address_space,
            resource.RLIMIT_DATA: self.data,
            resource.RLIMIT_CORE: self.core,
            resource.RLIMIT_NPROC: self.nproc,
        }
        return {res: value for res, value in wanted.items() if value is not None}

    def cgroup_files(self) -> dict[str, str]:
        """The cgroup v2 interface files and what to write in them."""
        period = round(self.cpu_period * 1_000_000)
        quota = "max" if self.cpu_max is None else str(max(1000, round(self.cpu_max * period)))
        memory = "max" if self.memory_max is None else str(self.memory_max)
        return {"memory.max": memory, "cpu.max": f"{quota} {period}"}


@dataclass(frozen=True)
class ProcessLimits:
    """The limits of one service instance, ready to apply in its child process.

    ``rlimits`` holds ``(RLIMIT_*, soft, hard)`` triples; ``cgroup`` the
    directory the child joins, or None; ``cgroup_status`` says why not
    (``unavailable: <why>``) or where (``available: <dir>``); ``notes`` lists
    what was adjusted (a limit clamped to the node's hard limit).
    """

    rlimits: tuple[tuple[int, int, int], ...] = ()
    cgroup: Path | None = None
    cgroup_status: str = "unavailable: not configured"
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> dict[str, Any]:
        """What an operator reads: ``{"rlimits": {"nofile": [soft, hard], ...}, "cgroup":
        status, "notes": [...]}`` (``inspect()`` of a process actor shows it)."""
        return {"rlimits": {_NAMES.get(res, str(res))[len("RLIMIT_"):].lower(): [soft, hard]
                            for res, soft, hard in self.rlimits},
                "cgroup": self.cgroup_status, "notes": list(self.notes)}

    def preexec(self) -> None:
        """Apply the limits to the calling process: run it in the child, before exec."""
        setrlimit = resource.setrlimit
        for res, soft, hard in self.rlimits:
            setrlimit(res, (soft, hard))
        if self.cgroup is not None:
            fd = os.open(os.path.join(self.cgroup, "cgroup.procs"), os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)


def clamp(res: int, value: int) -> tuple[int, int, str | None]:
    """``(soft, hard, note)`` for setting ``res`` to ``value`` below the node's hard limit."""
    _, hard = resource.getrlimit(res)
    if hard == INFINITY or value <= hard:
        return value, value, None
    return hard, hard, f"{_NAMES.get(res, res)} clamped to the node's hard limit {hard}"


def process_limits(limits: Limits, cgroup: Path | None, cgroup_status: str) -> ProcessLimits:
    """The :class:`ProcessLimits` for ``limits``, joining ``cgroup`` (already configured)."""
    triples, notes = [], []
    for res, value in limits.rlimits().items():
        soft, hard, note = clamp(res, value)
        triples.append((res, soft, hard))
        if note:
            notes.append(note)
    return ProcessLimits(tuple(triples), cgroup, cgroup_status, tuple(notes))


_NAMES = {
    resource.RLIMIT_NOFILE: "RLIMIT_NOFILE",
    resource.RLIMIT_AS: "RLIMIT_AS",
    resource.RLIMIT_DATA: "RLIMIT_DATA",
    resource.RLIMIT_CORE: "RLIMIT_CORE",
    resource.RLIMIT_NPROC: "RLIMIT_NPROC",
}
