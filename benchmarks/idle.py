"""Idle cost: the CPU and wake-ups of what DSMT leaves running, next to supervisord and circus.

``python -m benchmarks idle [--slivers 1,10] [--seconds 10] [--rounds 3]
[--tools dsmt,circus,supervisord]`` (JSON on stdout, progress on stderr)

Nothing is asked of anything while it is measured; what a tool costs then
is what it costs its host all day. Two parts, in one run:

- **one host, one program** (the baselines): each of ``--tools``
  supervises the restart benchmark's small server
  (:mod:`benchmarks._restart_tools`); once the server answers, the tool's
  own process (the server excluded: it is the same for all) is measured
  ``--rounds`` times for ``--seconds``: CPU time (user + system, every
  thread) per second of wall time, and voluntary context switches per
  second summed over its threads (its wake-ups). ``dsmt`` there is the
  restart benchmark's: a ProcessActor under a Supervisor in one process --
  the same job as supervisord's, without hub or PsEPR.
- **a slice**: for each N of ``--slivers``, ``dsmt up --slivers N`` (one
  PsEPR router, N ``dsmt node`` processes, the demo app deployed, one
  instance per sliver); once every instance runs and :data:`SETTLE`
  seconds passed, every node process and the router are measured the same
  way. Per round the median node; also the events per second through the
  hub of one node (its own and every peer's heartbeats and statuses, read
  by this process on that hub), hence a node's CPU per hub event. Between
  two N, the growth per added peer.

``event_loop`` says which asyncio loop the router and the PsEPR clients ran
on (``DSMT_EVENT_LOOP=asyncio`` in the environment chooses asyncio's own,
see :mod:`gateways.psepr._loop`). Figures are medians over rounds with
their spread; the machine may be shared (``load_avg_before``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks._restart_tools import REPO, SERVER, make_tool
from benchmarks._proc import measure
from benchmarks._stats import spread
from benchmarks._waiting import wait_until
from gateways.psepr import _loop

SETTLE = 5.0  # seconds after all instances run before measuring (start-up work done)
START_TIMEOUT = 120.0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks idle")
    parser.add_argument("--slivers", default="1,10", help="slice sizes, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tools", default="dsmt,circus,supervisord")
    args = parser.parse_args(argv or [])
    sizes = [int(n) for n in args.slivers.split(",") if n]
    result: dict = {
        "benchmark": "idle", "cpus": os.cpu_count(), "event_loop": _loop.kind(),
        "load_avg_before": [round(x, 2) for x in os.getloadavg()],
        "seconds": args.seconds, "rounds": args.rounds,
        "one_program": {}, "slices": {},
    }
    with tempfile.TemporaryDirectory(prefix="dsmt-bench-idle-") as tmp:
        for name in [t for t in args.tools.split(",") if t]:
            _progress(f"{name}: supervising one idle program")
            result["one_program"][name] = _one_program(name, Path(tmp) / name, args)
        for n in sizes:
            _progress(f"slice of {n}: dsmt up")
            result["slices"][str(n)] = _slice(n, Path(tmp) / f"slice{n}", args)
    one = result["one_program"]
    for other in ("supervisord", "circus"):
        if "dsmt" in one and other in one and one[other]["cpu_ms_per_s"]["median"]:
            result[f"ratio_dsmt_to_{other}_cpu"] = round(
                one["dsmt"]["cpu_ms_per_s"]["median"] / one[other]["cpu_ms_per_s"]["median"], 2)
    if len(sizes) > 1:
        small, large = str(min(sizes)), str(max(sizes))
        grow = (result["slices"][large]["node_cpu_ms_per_s"]["median"]
                - result["slices"][small]["node_cpu_ms_per_s"]["median"])
        result["node_cpu_ms_per_s_per_peer"] = round(grow / (max(sizes) - min(sizes)), 3)
    print(json.dumps(result, indent=2))
    return result


# -- measuring processes ---------------------------------------------------------------


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


# -- one host, one program -------------------------------------------------------------


def _one_program(name: str, work: Path, args: argparse.Namespace) -> dict:
    work.mkdir(parents=True)
    server = work / "server.py"
    server.write_text(SERVER)
    port = _free_port()
    tool = make_tool(name, work, port, server)
    tool.start()
    try:
        wait_until(tool.server_pid, START_TIMEOUT, f"{name} to start the server", poll=0.05)
        time.sleep(SETTLE)
        rounds = [measure([tool.proc.pid], args.seconds)[0] for _ in range(args.rounds)]
        return {"cpu_ms_per_s": spread([r[0] for r in rounds], 2),
                "wakeups_per_s": spread([r[1] for r in rounds], 1),
                "rss_mb": _rss_mb(tool.proc.pid)}
    finally:
        tool.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- a slice ---------------------------------------------------------------------------


def _slice(n: int, root: Path, args: argparse.Namespace) -> dict:
    root.mkdir(parents=True)
    up = subprocess.Popen(
        [str(Path(sys.executable).parent / "dsmt"), "up", "--slivers", str(n), "--dir",
         str(root), "--timeout", str(START_TIMEOUT)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        start_new_session=True)
    try:
        _await_line(up, "instances running", START_TIMEOUT + 30)
        time.sleep(SETTLE)
        nodes = _pids(root, "node")
        router = _pids(root, "router")
        if len(nodes) != n or len(router) != 1:
            raise RuntimeError(f"slice of {n}: found {len(nodes)} nodes, {len(router)} routers")
        counter = _HubCounter(root / "s1" / "ws" / "run")
        node_cpu, node_wakeups, router_cpu, rates = [], [], [], []
        for _ in range(args.rounds):
            counter.reset()
            figures = measure(nodes + router, args.seconds)
            rates.append(counter.rate())
            node_cpu.append(statistics.median(f[0] for f in figures[:-1]))
            node_wakeups.append(statistics.median(f[1] for f in figures[:-1]))
            router_cpu.append(figures[-1][0])
        counter.close()
        return {
            "node_cpu_ms_per_s": spread(node_cpu, 2),
            "node_wakeups_per_s": spread(node_wakeups, 1),
            "router_cpu_ms_per_s": spread(router_cpu, 2),
            "hub_events_per_s": spread(rates, 1),
            "node_cpu_us_per_hub_event": spread(
                [1000 * c / r for c, r in zip(node_cpu, rates) if r], 0),
            "node_rss_mb": statistics.median(_rss_mb(pid) for pid in nodes),
        }
    finally:
        os.killpg(up.pid, signal.SIGINT)  # dsmt up stops its slice on Ctrl-C
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()


class _HubCounter:
    """Counts the events through one node's hub, from a thread of this process."""

    def __init__(self, run_dir: Path) -> None:
        self._run_dir = run_dir
        self._count = 0
        self._since = time.monotonic()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"no hub at {run_dir}")

    def _read(self) -> None:
        import zmq

        from dsmt.bus import Bus
        from dsmt.hub import Endpoints

        context = zmq.Context()
        with Bus(context, Endpoints.ipc(self._run_dir)).subscriber("/") as sub:
            self._ready.set()
            while not self._stop.is_set():
                if sub.recv(0.2) is not None:
                    self._count += 1
        context.term()

    def reset(self) -> None:
        self._count, self._since = 0, time.monotonic()

    def rate(self) -> float:
        return self._count / (time.monotonic() - self._since)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _pids(root: Path, role: str) -> list[int]:
    """The ``dsmt.cli ROLE`` processes of the slice under ``root``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            text = b" ".join(argv).decode(errors="replace")
            if f"dsmt.cli {role}" in text and str(root) in text:
                found.append(int(entry))
    return sorted(found)


def _await_line(proc: subprocess.Popen, marker: str, timeout: float) -> None:
    """Read ``proc``'s output until ``marker``; then drain it in a thread (never blocks it)."""
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        for line in proc.stdout:
            if marker in line:
                threading.Thread(target=proc.stdout.read, daemon=True).start()
                return
    finally:
        timer.cancel()
    raise RuntimeError(f"dsmt up ended before '{marker}' (exit {proc.wait()})")


def _progress(text: str) -> None:
    print(f"idle: {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
