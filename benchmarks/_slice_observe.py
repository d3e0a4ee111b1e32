"""What the slice benchmark observes in a running slice (see :mod:`benchmarks.slice`).

Which instances of the demo app answer ``/health`` and on which port
(``instances``, from each instance's "listening" log line); a PsEPR
:class:`Watch` on the slice's base channel (arrival of every status and
beat, and the plan publisher); a :class:`Census` thread counting the app's
server processes slice-wide; the RSS and USS of the node, app and router
processes (``memory``); and the statistics helpers the report uses.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import psutil

from actors.localslice import SERVICE, LocalSlice, answers_health
from benchmarks._waiting import wait_until
from dsmt.event import HEARTBEAT as BEAT_TYPE, RECORD, STATUS, Address, Sequencer
from gateways.psepr.client import Client

REPLICAS = 3
APP = "demo-app"
HEALTH_TIMEOUT = 0.5  # seconds a GET /health may take to count as an answer
NODE_IMPORTS = "import dsmt.cli, dsmt.node, actors.sliver, gateways.bridge"


def summary(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {"n": len(ordered), "median": round(statistics.median(ordered), 3),
            "min": round(ordered[0], 3), "max": round(ordered[-1], 3),
            "spread": round(ordered[-1] - ordered[0], 3),
            "stdev": round(statistics.stdev(ordered), 3) if len(ordered) > 1 else 0.0,
            "samples": [round(v, 3) for v in values]}


# --- what runs where --------------------------------------------------------------------


def alive(slice_: LocalSlice, exclude: set[str]) -> list[str]:
    return [m.name for m in slice_.members if m.name not in exclude
            and m.process is not None and m.process.poll() is None]


def instances(slice_: LocalSlice, exclude: set[str]) -> dict[tuple[str, int], int]:
    """``(sliver, instance) → port`` of every instance that answers /health (not ``exclude``)."""
    found = {}
    for name in alive(slice_, exclude):
        for i in range(REPLICAS):
            port = slice_.member(name).app_port(APP, i)
            if port is not None and answers_health(port, HEALTH_TIMEOUT):
                found[(name, i)] = port
    return found


def app_processes(slice_: LocalSlice, sliver: str) -> list[psutil.Process]:
    root = str(slice_.member(sliver).workspace.resolve()) + os.sep
    return [p for p in psutil.process_iter(["cwd", "cmdline"])
            if (p.info.get("cwd") or "").startswith(root)
            and any(part.endswith("server.py") for part in p.info.get("cmdline") or ())]


class Watch:
    """A PsEPR client on the slice's base channel: arrival time of every status and beat."""

    def __init__(self, slice_: LocalSlice) -> None:
        self.layout = slice_.layout
        self.events: list[tuple[float, Any]] = []
        self.beats: list[tuple[float, float, Any]] = []  # arrival, transit, sender's "late"
        self.lock = threading.Lock()
        self.client = Client([slice_.address], SERVICE, slice_.password, instance="bench",
                             reconnect_pause=0.1).start()
        self.lease = self.client.lease(self.layout.base, self._seen)
        wait_until(lambda: self.lease.state == "granted", 30, "the lease on the slice")

    def _seen(self, event: Any) -> None:
        with self.lock:
            self.events.append((time.monotonic(), event))
            if event.type == BEAT_TYPE and isinstance(event.payload, dict):
                self.beats.append((time.monotonic(), time.time() - event.ts,
                                   event.payload.get("late")))

    def lateness(self, since: float, until: float) -> dict[str, Any]:
        """Beats arrived in ``[since, until]``: transit and sender lateness, p50/p99/max."""
        with self.lock:
            rows = [(tr, late) for t, tr, late in self.beats if since <= t <= until]
        return {"beats": len(rows),
                "transit_s": percentiles([tr for tr, _ in rows]),
                "sender_late_s": percentiles([late for _, late in rows
                                              if isinstance(late, (int, float))])}

    def beating(self, since: float) -> set[str]:
        with self.lock:
            return {s for t, e in self.events if t >= since
                    for s in [self.layout.parse_heartbeat(e.channel)] if s}

    def placed_without(self, victim: str, since: float) -> float | None:
        """Arrival of the first coordinator status after ``since`` whose ``live`` lacks ``victim``.

        ``live`` is the slivers that keep their share: the victim leaves it when declared dead.
        """
        with self.lock:
            for t, e in self.events:
                if t < since or e.type != STATUS or not isinstance(e.payload, dict):
                    continue
                live = e.payload.get("live")
                if str(e.payload.get("path", "")).endswith("/coordinator") and \
                        isinstance(live, list) and live and victim not in live:
                    return t
        return None

    def publish_plan(self, text: str, version: int = 1) -> None:
        assert self.client.wait_connected(10)
        event = Sequencer(Address("bench", "slice")).make(
            self.layout.plan(), RECORD, {"version": version, "toml": text}, retain=True)
        self.client.publish(event)

    def close(self) -> None:
        self.client.close()


class Census:
    """A thread counting the app's server processes slice-wide every ``interval`` seconds."""

    def __init__(self, slice_: LocalSlice, interval: float = 0.2) -> None:
        self.root = str(slice_.root.resolve()) + os.sep
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Census:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)

    def count(self) -> int:
        n = 0
        for p in psutil.process_iter(["cwd", "cmdline"]):
            if (p.info.get("cwd") or "").startswith(self.root) and \
                    any(part.endswith("server.py") for part in p.info.get("cmdline") or ()):
                n += 1
        return n

    def _run(self) -> None:
        while not self.stopping.is_set():
            n = self.count()
            with self.lock:
                self.samples.append((time.monotonic(), n))
            self.stopping.wait(self.interval)

    def phase(self, since: float, until: float, target: int = REPLICAS) -> dict[str, Any]:
        """Most instances seen in ``[since, until]``, overshoot, and when it settled at target."""
        with self.lock:
            rows = [(t, n) for t, n in self.samples if since <= t <= until]
        if not rows:
            return {"samples": 0}
        settled = None
        for t, n in rows:
            if n != target:
                settled = None
            elif settled is None:
                settled = t
        most = max(n for _, n in rows)
        return {"samples": len(rows), "max_instances": most,
                "overshoot": max(0, most - target),
                "settled_at_target_s": None if settled is None else round(settled - since, 3),
                "final_instances": rows[-1][1]}


def percentiles(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)  # noqa: E731
    return {"n": len(ordered), "p50": pick(0.5), "p99": pick(0.99), "max": round(ordered[-1], 3)}


# --- memory -----------------------------------------------------------------------------


def memory(slice_: LocalSlice, exclude: set[str]) -> dict[str, Any]:
    def mem(p: psutil.Process) -> tuple[float, float, int]:
        info = p.memory_full_info()
        return info.rss / 2**20, info.uss / 2**20, p.num_threads()

    nodes = [mem(psutil.Process(slice_.member(n).process.pid)) for n in alive(slice_, exclude)]
    apps = [mem(p) for n in alive(slice_, exclude) for p in app_processes(slice_, n)]
    router = mem(psutil.Process(slice_.router.pid))
    bare = bare_interpreter()
    node_uss = statistics.median(u for _, u, _ in nodes)
    threads = statistics.median(t for _, _, t in nodes)
    return {
        "node_rss_mib": summary([r for r, _, _ in nodes]),
        "node_uss_mib": summary([u for _, u, _ in nodes]),
        "node_threads": summary([float(t) for _, _, t in nodes]),
        "app_instance_rss_mib": summary([r for r, _, _ in apps]),
        "router_rss_mib": round(router[0], 1),
        "bare_interpreter_with_node_imports_uss_mib": round(bare, 1),
        "node_above_imports_uss_mib": round(node_uss - bare, 1),
        "per_thread_above_imports_kib": round((node_uss - bare) * 1024 / max(threads, 1), 1),
        "slice_total_rss_mib": round(sum(r for r, _, _ in nodes + apps) + router[0], 1),
    }


def bare_interpreter() -> float:
    code = (f"{NODE_IMPORTS}\nimport psutil\n"
            "print(psutil.Process().memory_full_info().uss / 2**20)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    return float(out.stdout.strip())
