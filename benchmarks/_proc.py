"""What a process costs its host: CPU and wake-ups of all its threads, from /proc."""

from __future__ import annotations

import os
import time
from pathlib import Path


def sample(pid: int) -> tuple[float, int]:
    """(CPU seconds, voluntary context switches) of every thread of ``pid`` so far.

    CPU from ``schedstat`` (nanoseconds; ``stat``'s clock ticks are 10 ms,
    too coarse for a process that idles at a fraction of a millisecond).
    """
    cpu = switches = 0
    task = Path(f"/proc/{pid}/task")
    for tid in os.listdir(task):
        try:
            status = (task / tid / "status").read_text()
            runtime = (task / tid / "schedstat").read_text().split()[0]
        except OSError:  # the thread ended meanwhile
            continue
        cpu += int(runtime)
        switches += int(status.split("voluntary_ctxt_switches:")[1].split()[0])
    return cpu / 1e9, switches


def measure(pids: list[int], seconds: float) -> list[tuple[float, float]]:
    """Per pid: (CPU ms per second, wake-ups per second) over ``seconds``."""
    before = [sample(pid) for pid in pids]
    start = time.monotonic()
    time.sleep(seconds)  # the measurement window itself: nothing to wait for
    after = [sample(pid) for pid in pids]
    wall = time.monotonic() - start
    return [(1000 * (a[0] - b[0]) / wall, (a[1] - b[1]) / wall)
            for b, a in zip(before, after)]
