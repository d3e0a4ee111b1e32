"""A known background load: one process keeping a fixed share of one core busy.

The router benchmark measures latency once more with this running
(``--background``), so a reader sees how the router's tail latency holds
when something else on the machine wants a CPU now and then, instead of
learning it from a run that happened to be contended.

:class:`BackgroundLoad` runs ``python -m benchmarks._load SHARE`` in a
subprocess: in every period of :data:`PERIOD` seconds it spins for
``SHARE`` of the period and sleeps the rest (a duty cycle, the shape of a
busy neighbour: bursts of work, not a steady fraction of a core). The
benchmark's :class:`benchmarks._router_process.CpuShare` counts it under
``others_cpu_cores``, so the load actually applied is measured, not assumed.
"""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks._router_process import ROOT, stop

PERIOD = 0.01  # seconds: a burst of SHARE * 10 ms every 10 ms


class BackgroundLoad:
    """``with BackgroundLoad(0.5):`` half a core busy in bursts while the block runs."""

    def __init__(self, share: float) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share of a core must be in (0, 1], not {share}")
        self.share = share

    def __enter__(self) -> "BackgroundLoad":
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks._load", str(self.share)],
                                     cwd=ROOT, stdout=subprocess.PIPE)
        self.proc.stdout.readline()  # "busy": spinning from now on
        return self

    def __exit__(self, *exc) -> None:
        stop(self.proc)


def _spin(share: float) -> None:
    busy, idle = PERIOD * share, PERIOD * (1.0 - share)
    print("busy", flush=True)
    clock = time.perf_counter
    while True:
        start = clock()
        while clock() - start < busy:
            pass
        if idle > 0:
            time.sleep(idle)  # the duty cycle's idle part: this is the load, not a test wait


if __name__ == "__main__":
    _spin(float(sys.argv[1]))
