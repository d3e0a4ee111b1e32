"""Crash-to-restart latency: kill -9 of a supervised process → new pid → accepting again.

``python -m benchmarks restart [--kills N] [--tools dsmt,dsmt-otp,dsmt-limits,circus,supervisord]``

The same small program (a Python TCP server that answers each connection
with its pid) is supervised, one tool at a time in the same run, by:

- ``dsmt`` — a :class:`actors.process.actor.ProcessActor` under a
  :class:`dsmt.supervisor.Supervisor` root, in its own process
  (``autorestart="always"``: the actor respawns the process itself);
- ``dsmt-otp`` — the same with ``autorestart="never"``: each exit ends the
  actor and the OTP supervisor starts a new actor (the permanent-child path);
- ``dsmt-limits`` — ``dsmt`` with a sliver's default limits on the process
  (:class:`actors.container.Limits`: nofile, no core files), applied in the
  child before exec as a node's container manager has them applied: the
  child is then forked, not vforked, so this costs more the larger the
  supervising process (this one is small; a node holds ~60-150 MB);
- ``circus`` — circusd with its default ``check_delay`` (flapping detection
  off, or two kills within a second would park the watcher for 7 s);
- ``supervisord`` — ``autorestart=true``, ``startsecs=0`` (as for DSMT, so a
  kill shortly after a restart is not a failed start).

For each of N kills the benchmark SIGKILLs the current server process and
measures, from the kill, (1) the first sight of a new child of the
supervising process (``/proc/<pid>/task/*/children``, polled every ~0.2 ms)
and (2) the first TCP connection answered with a new pid. Both are measured
from outside, identically for every tool; (2) includes the server's own
interpreter start-up, the same for all. Reported per tool: median, p90,
min, max, stdev, IQR (milliseconds); then DSMT's speedup (median of the
other tool / median of DSMT) and the targets of the issue. Everything runs
in a temporary directory; every process started is killed at the end, even
on failure. JSON on stdout, progress on stderr.

This module measures, runs the tools in turn and reports; the supervised
server and the supervisors themselves (how each is configured, started and
stopped) are in :mod:`benchmarks._restart_tools`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._restart_tools import SERVER, TOOLS, Tool, ask_pid, make_tool
from benchmarks._waiting import wait_until

POLL = 0.0002
SETTLE = 0.25  # seconds between a restart and the next kill
TARGET_MEDIAN_MS = 20.0
TARGET_SPEEDUP = 30.0


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found.update(int(p) for p in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


# --- measurement ----------------------------------------------------------------------


def measure(tool: Tool, kills: int) -> dict[str, Any]:
    tool.start()
    pid = wait_until(tool.server_pid, 30, f"{tool.name} to start the server", poll=0.005)
    tool.seen.add(pid)
    to_pid: list[float] = []
    to_accept: list[float] = []
    for n in range(kills):
        time.sleep(SETTLE)
        pid = wait_until(tool.server_pid, 10, "the server before a kill", poll=0.005)
        tool.seen.add(pid)
        before = children(tool.proc.pid)
        killed = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        new_seen = accepted = None
        deadline = killed + 30
        while accepted is None:
            now = time.perf_counter()
            if now > deadline:
                raise RuntimeError(f"{tool.name}: no restart within 30 s (kill {n + 1})")
            if new_seen is None:
                fresh = children(tool.proc.pid) - before - {pid}
                if fresh:
                    new_seen = time.perf_counter()
                    tool.seen.update(fresh)
            else:
                answer = ask_pid(tool.port, timeout=0.2)
                if answer is not None and answer != pid:
                    accepted = time.perf_counter()
                    tool.seen.add(answer)
                    break
            time.sleep(POLL)
        to_pid.append((new_seen - killed) * 1000)
        to_accept.append((accepted - killed) * 1000)
        log(f"{tool.name}: kill {n + 1}/{kills}: new pid {to_pid[-1]:.1f} ms, "
            f"accepting {to_accept[-1]:.1f} ms")
    return {"to_new_pid_ms": summary(to_pid), "to_accepting_ms": summary(to_accept),
            "samples_to_new_pid_ms": [round(v, 3) for v in to_pid],
            "samples_to_accepting_ms": [round(v, 3) for v in to_accept]}


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=10, method="inclusive") if len(ordered) > 1 else ordered * 9
    quart = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 \
        else ordered * 3
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 3),
        "p90": round(q[8], 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
        "stdev": round(statistics.stdev(ordered), 3) if len(ordered) > 1 else 0.0,
        "iqr": round(quart[2] - quart[0], 3),
    }


def ratios(results: dict[str, Any], base: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ref = results.get(base)
    if not ref or "error" in ref:
        return out
    for name, result in results.items():
        if name.startswith("dsmt") or "error" in result:
            continue
        out[name] = {metric: round(result[metric]["median"] / ref[metric]["median"], 1)
                     for metric in ("to_new_pid_ms", "to_accepting_ms")}
    return out


def run(kills: int, tools: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dsmt-bench-restart-") as tmp:
        work = Path(tmp)
        server = work / "server.py"
        server.write_text(SERVER)
        for name in tools:
            tool_dir = work / name
            tool_dir.mkdir()
            tool = make_tool(name, tool_dir, free_port(), server)
            log(f"--- {name}")
            try:
                results[name] = measure(tool, kills)
            except Exception as exc:  # a tool that fails is reported, the others still run
                results[name] = {"error": f"{type(exc).__name__}: {exc}",
                                 "stderr": tool.error_text()}
            finally:
                tool.stop()
    speedup = ratios(results, "dsmt")
    dsmt = results.get("dsmt", {})
    targets: dict[str, Any] = {}
    if "to_new_pid_ms" in dsmt:
        targets["dsmt_median_to_new_pid_below_20ms"] = \
            dsmt["to_new_pid_ms"]["median"] < TARGET_MEDIAN_MS
        for name, r in speedup.items():
            targets[f"at_least_30x_{name}_to_new_pid"] = r["to_new_pid_ms"] >= TARGET_SPEEDUP
            targets[f"at_least_30x_{name}_to_accepting"] = r["to_accepting_ms"] >= TARGET_SPEEDUP
    return {
        "benchmark": "restart",
        "what": "kill -9 of the supervised TCP server -> first new child pid, and -> new pid "
                "accepting its TCP health check; measured from outside, same program for all",
        "dsmt_path": {
            "dsmt": "ProcessActor under dsmt.supervisor.Supervisor, autorestart=always "
                    "(pidfd exit watcher -> actor respawns); no event publisher",
            "dsmt-otp": "ProcessActor under dsmt.supervisor.Supervisor, autorestart=never, "
                        "permanent child (actor exits -> supervisor starts a new actor)",
            "dsmt-limits": "as dsmt, with the container's default limits applied in the "
                           "child before exec (fork instead of vfork)",
        },
        "settings": {
            "circus": "defaults (check_delay 1.0 s), check_flapping=false",
            "supervisord": "autorestart=true, startsecs=0",
            "dsmt": "startsecs=0",
        },
        "why_the_baselines_wait": {
            "circus": "no SIGCHLD handling: a dead process is reaped and replaced by the "
                      "periodic manage_watchers (every check_delay)",
            "supervisord": "SIGCHLD does not end its poll(): the exit is handled at the next "
                           "wake-up of its 1 s main loop",
            "dsmt": "pidfd readable at the exit -> epoll thread -> tell() -> respawn",
        },
        "kills_per_tool": kills,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "kernel": platform.release(),
                    "circus": _version("circus"), "supervisor": _version("supervisor")},
        "results": results,
        "speedup_vs_dsmt": speedup,
        "speedup_vs_dsmt_otp": ratios(results, "dsmt-otp"),
        "speedup_vs_dsmt_limits": ratios(results, "dsmt-limits"),
        "targets": targets,
    }


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


# --- the DSMT side, in its own process -------------------------------------------------


def serve_dsmt(mode: str, argv: list[str]) -> None:
    """Run the server under a ProcessActor and a Supervisor until stdin closes."""
    from actors.container.limits import Limits, process_limits
    from actors.process import ALWAYS, NEVER, Command, ProcessPolicy
    from actors.process.actor import process_spec
    from dsmt.actor import Origin
    from dsmt.channels import Layout
    from dsmt.context import Context
    from dsmt.supervisor import Supervisor

    policy = ProcessPolicy(startsecs=0, autorestart=NEVER if mode == "otp" else ALWAYS,
                           stopwaitsecs=2.0)
    preexec = None
    if mode == "limits":
        preexec = process_limits(Limits(), None, "unavailable: not in a container").preexec
    ctx = Context(sliver="bench", layout=Layout("bench"))
    origin = Origin.root(ctx)
    # Intensity high enough for the benchmark's kills, as a plan would set it.
    command = Command(tuple(argv), preexec=preexec)
    ref = Supervisor.start(origin, [process_spec("app", command, policy)],
                           intensity=1000, period=1.0)
    if origin.lifeline.wait_started(10) is not True:
        raise SystemExit("dsmt: the supervisor did not start")
    try:
        sys.stdin.read()
    finally:
        ref.stop(block=True, timeout=10)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--serve-dsmt"]:
        serve_dsmt(argv[1], json.loads(argv[2]))
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks restart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="kills per tool (default 20)")
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help=f"comma-separated, from {','.join(TOOLS)}")
    args = parser.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    for name in tools:
        if name not in TOOLS:
            parser.error(f"unknown tool {name!r}")
    json.dump(run(args.kills, tools), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
