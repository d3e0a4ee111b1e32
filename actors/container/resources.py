"""Resource facts for the container manager's reports: processes (psutil) and disk use.

- :class:`Sampler` measures the node process and each application
  process *group*: the leading pid, its descendants and, when it leads its
  process group (process actors start services with ``setsid``), every
  process in that group, so a daemon that double-forked is still counted.
  It keeps its ``psutil.Process`` objects between samples, so
  ``cpu_percent`` is the CPU used since the previous sample (0.0 the first
  time), and ``cpu_seconds`` (user + system) is cumulative.
- :func:`journaled_usage` turns the process journal's records into report
  rows, measuring only the pids that are still the journaled processes.
- :func:`disk_usage` is the apparent size of the files under a directory,
  symlinks not followed and hard links counted once.

Processes that vanish while being measured are skipped, never an error.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import psutil

from actors.deploy.journal import ProcessRecord as JournaledProcess
from actors.process.adopt import verify
from actors.process.handle import ProcessRecord

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


@dataclass(frozen=True)
class Usage:
    """What a process or process group uses right now."""

    pid: int
    processes: int
    cpu_percent: float
    cpu_seconds: float
    rss: int
    fds: int
    threads: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Sampler:
    """Measures processes with psutil; one per container manager (its thread only)."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def node(self) -> Usage:
        """The node's own process (all its threads: every actor of the sliver)."""
        pid = os.getpid()
        return self._measure(pid, [pid])

    def groups(self, leaders: Iterable[int]) -> dict[int, Usage | None]:
        """Usage of each group led by a pid in ``leaders``; None for a group that is gone."""
        leaders = list(leaders)
        by_group = _pids_by_group() if leaders else {}
        found: dict[int, Usage | None] = {}
        measured = {os.getpid()}
        for pid in leaders:
            members = self._members(pid, by_group.get(pid, ()))
            measured.update(members)
            found[pid] = self._measure(pid, members) if members else None
        self._forget(measured)
        return found

    def _members(self, pid: int, group: Iterable[int]) -> list[int]:
        leader = self._process(pid)
        if leader is None:
            return []
        members = {pid, *group}
        try:
            members.update(child.pid for child in leader.children(recursive=True))
        except _GONE:
            pass
        return sorted(members)

    def _measure(self, pid: int, pids: list[int]) -> Usage:
        count = fds = threads = rss = 0
        cpu_percent = cpu_seconds = 0.0
        for member in pids:
            proc = self._process(member)
            if proc is None:
                continue
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    sample = (proc.cpu_percent(None), times.user + times.system,
                              proc.memory_info().rss, proc.num_fds(), proc.num_threads())
            except _GONE:
                self._procs.pop(member, None)
                continue
            count += 1
            cpu_percent += sample[0]
            cpu_seconds += sample[1]
            rss += sample[2]
            fds += sample[3]
            threads += sample[4]
        return Usage(pid, count, round(cpu_percent, 1), round(cpu_seconds, 3), rss, fds, threads)

    def _process(self, pid: int) -> psutil.Process | None:
        proc = self._procs.get(pid)
        if proc is not None and proc.is_running():  # is_running also detects a reused pid
            return proc
        try:
            proc = psutil.Process(pid)
        except _GONE:
            self._procs.pop(pid, None)
            return None
        self._procs[pid] = proc
        return proc

    def _forget(self, keep: set[int]) -> None:
        for pid in [p for p in self._procs if p not in keep]:
            del self._procs[pid]


def journaled_usage(sampler: Sampler, records: Iterable[JournaledProcess]) -> list[dict[str, Any]]:
    """A report row per journaled application process: ``service, instance, pid, version,
    alive`` and, while the pid is still the journaled process (same start time and group),
    its group's :class:`Usage`; a pid that is gone or reused is ``alive: false``."""
    records = list(records)
    live = [r.pid for r in records if verify(ProcessRecord(r.pid, r.started, r.pgid)) is None]
    groups = sampler.groups(live)
    rows = []
    for r in records:
        usage = groups.get(r.pid)
        row: dict[str, Any] = {"service": r.service, "instance": r.instance, "pid": r.pid,
                               "version": r.version, "alive": usage is not None}
        if usage is not None:
            row.update(usage.as_dict())
        rows.append(row)
    return rows


def _pids_by_group() -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for pid in psutil.pids():
        try:
            groups.setdefault(os.getpgid(pid), []).append(pid)
        except OSError:
            continue  # gone meanwhile
    return groups


def disk_usage(root: Path) -> int:
    """Bytes in the files under ``root`` (apparent size; links not followed; hard links once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue  # removed or unreadable meanwhile
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif (st.st_dev, st.st_ino) not in seen:
                if st.st_nlink > 1:
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total
