"""The router under benchmark in its own process, and who used the CPUs meanwhile.

:class:`RouterProcess` runs ``dsmt router`` (the real CLI) in a subprocess
with generous limits. :class:`CpuShare` samples, over one round, how many
cores each party kept busy, so a reader can tell a slow router from a
contended machine:

- ``router_cpu_cores``: CPU seconds of the router process per second;
- ``loadgen_cpu_cores``: the same for this process (publisher, subscriber);
- ``others_cpu_cores``: the rest of the machine's busy time (every CPU's
  user + nice + system + irq time, from ``psutil.cpu_times``) — other
  engineers' tests on a shared machine;
- ``stolen_cpu_cores``: time the host of this virtual machine gave to
  other guests (``steal``; 0 on bare metal);
- ``router_wait_cores`` (Linux): seconds per second the router was runnable
  but waiting for a CPU (``/proc/PID/schedstat``): time another process
  held the core the router needed, which shows up in its latency.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from gateways.psepr import accounts

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench"


class ServedProcess:
    """A server in a subprocess that prints ``… listening on HOST:PORT`` first."""

    command: tuple[str, ...] = ()

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def argv(self) -> list[str]:
        return list(self.command)

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.PIPE, cwd=ROOT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        line = self.proc.stdout.readline().decode().split()
        host, port = line[line.index("on") + 1].rsplit(":", 1)
        self.address = (host, int(port))
        self.ps = psutil.Process(self.proc.pid)
        return self

    def cpu(self) -> float:
        """CPU seconds the process has used so far."""
        times = self.ps.cpu_times()
        return times.user + times.system

    def waited(self) -> float | None:
        """Seconds the process has spent runnable, waiting for a CPU (Linux), else None."""
        try:
            with open(f"/proc/{self.proc.pid}/schedstat") as f:
                return int(f.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return None

    def __exit__(self, *exc) -> None:
        stop(self.proc)


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM ``proc``; SIGKILL it if it has not exited after ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RouterProcess(ServedProcess):
    """``dsmt router`` in a subprocess; accounts ``pub``, ``sub`` and ``c``."""

    def argv(self) -> list[str]:
        hashed = accounts.hash_password(PASSWORD)
        (self.tmp / "router.toml").write_text(
            '[router]\nname = "bench"\nlisten = "127.0.0.1:0"\nheartbeat = "infinity"\n'
            '[limits]\nrate = 10000000.0\nburst = 1000000\nmax_queue = 268435456\n'
            f'[accounts]\npub = "{hashed}"\nsub = "{hashed}"\nc = "{hashed}"\n')
        return [sys.executable, "-c", "from dsmt.cli import main; main()", "router",
                "--config", str(self.tmp / "router.toml")]


class CpuShare:
    """Cores kept busy by the router, this process and everything else, between
    :meth:`start` and :meth:`stop` (which returns the dict of figures)."""

    def __init__(self, router: ServedProcess) -> None:
        self.router = router
        self.me = psutil.Process()

    def _sample(self) -> tuple:
        own = self.me.cpu_times()
        return (time.perf_counter(), self.router.cpu(), own.user + own.system, _busy(),
                _stolen(), self.router.waited())

    def start(self) -> "CpuShare":
        self._start = self._sample()
        return self

    def stop(self) -> dict:
        end = self._sample()
        wall, router, mine, busy, stolen, waited = (
            b - a if a is not None and b is not None else None for a, b in zip(self._start, end))
        return {
            "router_cpu_cores": round(router / wall, 3),
            "loadgen_cpu_cores": round(mine / wall, 3),
            "others_cpu_cores": round(max(0.0, busy - router - mine) / wall, 3),
            "stolen_cpu_cores": round(stolen / wall, 3),
            "router_wait_cores": None if waited is None else round(waited / wall, 3),
        }


def _busy() -> float:
    """Busy CPU seconds of this machine so far (all CPUs; not idle, not stolen by a host)."""
    t = psutil.cpu_times()
    return sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


def _stolen() -> float:
    """CPU seconds a virtual machine's host gave to others (0 on bare metal)."""
    return getattr(psutil.cpu_times(), "steal", 0.0)
