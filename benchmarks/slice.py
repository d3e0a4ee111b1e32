"""Slice deploy and fail-over time for N slivers on this machine, and the memory they take.

``python -m benchmarks slice [--slivers 10,30] [--kills 3] [--restarts 3]``

For each N a :class:`actors.localslice.LocalSlice` (one PsEPR router, N
``dsmt node`` processes, heartbeat 1 s, a peer suspected after k = 3 missed
beats) is started with no plan. Then:

- **deploy**: a plan with one 3-instance demo-app service is published on
  the plan channel (retained, as ``dsmt deploy`` does); measured from the
  publish to all 3 instances answering ``GET /health`` (the 3 slivers
  placed and 3 warm standbys install the package, the 3 placed start it;
  see :mod:`actors.coordinator.actor`);
- **fail-over**, ``--kills`` times, each time on another sliver that runs
  an instance: kill -9 of the sliver's node process and of its app
  processes; measured from the kill to (1) the first coordinator status
  whose ``live`` list no longer names the victim (detection + placement, as
  the replacing sliver publishes its new share), (2) the replacement
  printing "listening" (start), (3) 3 instances answering ``/health``;
- **baselines, same run**: the detection floor, heartbeat × k (no sliver
  can tell a silent peer from a slow one earlier; measured from the kill it
  is between (k − 1) and k heartbeats, as the victim's last beat went out up
  to one period before the kill), and the bare restart of
  a local instance (kill -9 of one app process → ``/health`` answers again
  on the same sliver and port: the app supervisor's path, no placement);
- **overshoot**: a sampler thread counts the demo app's server processes
  slice-wide (the process table, every 0.2 s) the whole time; per phase
  (deploy, each fail-over) the report has the most instances seen, the
  overshoot above 3, and when the count settled at exactly 3 (and stayed
  there for two heartbeat periods);
- **heartbeat lateness**: every beat the watcher reads carries ``late``
  (its sender's lateness against its schedule) and arrives some time after
  its ``ts`` (transit, sender → router → watcher); per phase, their p50,
  p99 and max;
- **memory**: RSS and USS of every node process (and threads: pykka actors
  are one thread each), of the app instances and of the router; the USS of
  a bare interpreter that imports what a node imports, so the part the
  running actors add shows (per node and per thread).

Progress goes to stderr, the JSON report to stdout: per N the figures as
median/min/max/spread, then how they grow from the smallest to the largest
N (ratio). Everything runs under ``/tmp/dsmt-bench-*``; every process it
started is killed at the end, even on failure or Ctrl-C. A 30-sliver run
takes a few minutes.

This module drives the phases and builds the report; what it observes in the
running slice (instances answering, the bus Watch, the process Census,
memory) is in :mod:`benchmarks._slice_observe`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from actors.deploy.package import build_demo
from actors.localslice import LocalSlice, answers_health
from benchmarks._slice_observe import (
    APP, HEALTH_TIMEOUT, REPLICAS, Census, Watch, alive, app_processes, instances, memory,
    summary,
)
from benchmarks._waiting import wait_until

HEARTBEAT = 1.0        # the node default (nodeconf)
SUSPECT_AFTER = 3      # the node default: k missed beats


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- one N --------------------------------------------------------------------------------


def plan_text(archive: Path, sha256: str) -> str:
    return (f'version = 1\n\n[services.{APP}]\npackage = "file://{archive}"\n'
            f'sha256 = "{sha256}"\nversion = "1.0.0"\nreplicas = {REPLICAS}\n')


def kill_sliver(slice_: LocalSlice, name: str) -> float:
    """kill -9 of the sliver's node and its app processes; returns the kill time."""
    member = slice_.member(name)
    doomed = app_processes(slice_, name)
    killed = time.monotonic()
    os.kill(member.process.pid, signal.SIGKILL)
    for p in doomed:
        try:
            p.kill()
        except psutil.Error:
            pass
    member.process.wait()
    psutil.wait_procs(doomed, timeout=5)
    return killed


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def bare_restart(slice_: LocalSlice, sliver: str, port: int) -> float:
    """kill -9 of one app process → /health answers again on the same port (seconds)."""
    mine = app_processes(slice_, sliver)
    if len(mine) != 1:  # 3 replicas on >= 3 slivers: one instance per sliver
        raise RuntimeError(f"{sliver}: expected one app process, found {len(mine)}")
    process = mine[0]
    killed = time.monotonic()
    process.kill()
    wait_until(lambda: gone(process.pid), 10, "the killed app process to go")
    wait_until(lambda: answers_health(port, HEALTH_TIMEOUT), 30,
               f"{sliver}'s instance back on {port}")
    return time.monotonic() - killed


def stable(slice_: LocalSlice, exclude: set[str], timeout: float) -> dict[tuple[str, int], int]:
    """Wait for exactly REPLICAS healthy instances for two heartbeat periods."""
    since: list[float] = []

    def check() -> Any:
        now = instances(slice_, exclude)
        if len(now) != REPLICAS:
            since.clear()
            return None
        if not since:
            since.append(time.monotonic())
        return now if time.monotonic() - since[0] >= 2 * HEARTBEAT else None

    return wait_until(check, timeout, f"{REPLICAS} healthy instances")


def run_one(n: int, kills: int, restarts: int, archive: Path, sha256: str) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="dsmt-bench-", dir="/tmp"))
    slice_ = LocalSlice(root, slivers=n)
    watch = None
    census = Census(slice_).start()
    try:
        log(f"[{n}] starting the router and {n} slivers in {root}")
        t0 = time.monotonic()
        slice_.start()
        watch = Watch(slice_)
        wait_until(lambda: len(watch.beating(t0)) == n, 60 + 3 * n, f"{n} slivers beating")
        started = time.monotonic() - t0
        time.sleep(2 * HEARTBEAT)  # every coordinator has heard every peer
        log(f"[{n}] all beating after {started:.1f}s; deploying {REPLICAS} instances")

        published = time.monotonic()
        watch.publish_plan(plan_text(archive, sha256))
        first = wait_until(lambda: instances(slice_, set()), 120, "the first healthy instance")
        first_at = time.monotonic() - published
        wait_until(lambda: len(instances(slice_, set())) >= REPLICAS, 120,
                   f"{REPLICAS} healthy instances")
        deploy = time.monotonic() - published
        log(f"[{n}] deployed: first healthy {first_at:.2f}s, all {deploy:.2f}s ({sorted(first)})")
        try:
            placed = stable(slice_, set(), 60)
            wait_until(lambda: census.count() == REPLICAS, 60,
                       f"exactly {REPLICAS} app processes")
            placed = stable(slice_, set(), 60)
        except RuntimeError as exc:  # e.g. overshoot: report it instead of the fail-over
            now = time.monotonic()
            return {"slivers": n, "all_beating_s": round(started, 2),
                    "deploy_s": {"first_healthy": round(first_at, 3),
                                 "all_healthy": round(deploy, 3)},
                    "deploy_instances": census.phase(published, now),
                    "deploy_heartbeats": watch.lateness(published, now),
                    "error": f"{exc}: {len(instances(slice_, set()))} healthy instances, "
                             f"{census.count()} app processes for replicas={REPLICAS}",
                    "loadavg": [round(x, 2) for x in os.getloadavg()],
                    "memory": memory(slice_, set())}
        settled = time.monotonic()
        deploy_instances = census.phase(published, settled)
        deploy_beats = watch.lateness(published, settled)
        log(f"[{n}] deploy: {deploy_instances}; beats {deploy_beats}")

        mem = memory(slice_, set())
        log(f"[{n}] node RSS median {mem['node_rss_mib']['median']} MiB, "
            f"USS {mem['node_uss_mib']['median']} MiB")

        restart_times = []
        for i in range(restarts):
            (sliver, _), port = sorted(placed.items())[i % len(placed)]
            restart_times.append(bare_restart(slice_, sliver, port))
            log(f"[{n}] bare restart {i + 1}/{restarts} on {sliver}: {restart_times[-1]:.3f}s")
            placed = stable(slice_, set(), 60)

        dead: set[str] = set()
        detect, start, heal, failovers = [], [], [], []
        for i in range(kills):
            victim = sorted({s for s, _ in placed} - dead)[0]
            before = set(placed)
            killed = kill_sliver(slice_, victim)
            dead.add(victim)
            started_at: list[float] = []

            def replaced() -> bool:
                if not started_at:
                    for name in alive(slice_, dead):
                        if (name, 0) not in before and (name, 1) not in before and \
                                slice_.member(name).app_port(APP, 0) is not None:
                            started_at.append(time.monotonic())
                            break
                return len(instances(slice_, dead)) >= REPLICAS

            wait_until(replaced, 60, f"a replacement for {victim}'s instance")
            healed = time.monotonic()
            noticed = wait_until(lambda: watch.placed_without(victim, killed), 10,
                                 "a coordinator status without the victim")
            detect.append(noticed - killed)
            start.append((started_at[0] if started_at else healed) - killed)
            heal.append(healed - killed)
            placed = stable(slice_, dead, 60)
            done = time.monotonic()
            failovers.append({"victim": victim, "instances": census.phase(killed, done),
                              "heartbeats": watch.lateness(killed, done)})
            log(f"[{n}] kill {i + 1}/{kills} of {victim}: placed {detect[-1]:.2f}s, "
                f"started {start[-1]:.2f}s, healthy {heal[-1]:.2f}s; {failovers[-1]}")

        return {"slivers": n, "all_beating_s": round(started, 2),
                "deploy_s": {"first_healthy": round(first_at, 3), "all_healthy": round(deploy, 3)},
                "deploy_instances": deploy_instances, "deploy_heartbeats": deploy_beats,
                "failovers": failovers,
                "failover_s": {"detected_and_placed": summary(detect),
                               "replacement_started": summary(start),
                               "all_healthy": summary(heal)},
                "bare_restart_s": summary(restart_times),
                "memory": mem}
    finally:
        census.stop()
        if watch is not None:
            watch.close()
        slice_.stop()
        leftovers = slice_.processes()
        for p in leftovers:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(leftovers, timeout=5)
        shutil.rmtree(root, ignore_errors=True)


def run(counts: list[int], kills: int, restarts: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="dsmt-bench-pkg-", dir="/tmp"))
    try:
        archive, sha256 = build_demo(work)
        results = [run_one(n, kills, restarts, archive, sha256) for n in counts]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor = HEARTBEAT * SUSPECT_AFTER
    report: dict[str, Any] = {
        "benchmark": "slice",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg": [round(x, 2) for x in os.getloadavg()]},
        "heartbeat_s": HEARTBEAT, "k": SUSPECT_AFTER, "replicas": REPLICAS,
        "baseline": {"detection_floor_s": floor,
                     "bare_restart_median_s": {r["slivers"]: r["bare_restart_s"].get("median")
                                               for r in results if "error" not in r}},
        "results": results,
    }
    results_ok = [r for r in results if "error" not in r]
    for r in results_ok:
        heal = r["failover_s"]["all_healthy"]["median"]
        placed = r["failover_s"]["detected_and_placed"]["median"]
        r["failover_breakdown_median_s"] = {
            "detection_floor": floor,
            "detection_and_placement_above_floor": round(placed - floor, 3),
            "start_to_healthy": round(heal - placed, 3),
            "total_vs_floor": round(heal / floor, 2)}
    if len(results_ok) > 1:
        small, large = results_ok[0], results_ok[-1]
        key = f"{large['slivers']}_vs_{small['slivers']}"
        report["growth"] = {
            key: {"deploy_all_healthy": _ratio(large["deploy_s"]["all_healthy"],
                                               small["deploy_s"]["all_healthy"]),
                  "failover_all_healthy_median": _ratio(
                      large["failover_s"]["all_healthy"]["median"],
                      small["failover_s"]["all_healthy"]["median"]),
                  "failover_detected_and_placed_median": _ratio(
                      large["failover_s"]["detected_and_placed"]["median"],
                      small["failover_s"]["detected_and_placed"]["median"]),
                  "node_rss_median": _ratio(large["memory"]["node_rss_mib"]["median"],
                                            small["memory"]["node_rss_mib"]["median"])}}
    return report


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks slice", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slivers", default="10,30",
                        help="comma-separated slice sizes (default 10,30)")
    parser.add_argument("--kills", type=int, default=3, help="sliver kills per size (default 3)")
    parser.add_argument("--restarts", type=int, default=3,
                        help="bare instance restarts per size (default 3)")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.slivers.split(",") if x.strip()]
    if any(n < args.kills + REPLICAS for n in counts):
        parser.error(f"every size needs at least kills + {REPLICAS} slivers")
    json.dump(run(counts, args.kills, args.restarts), sys.stdout, indent=2)
    print()
