"""Instructions per event of each hub benchmark process, counted by callgrind.

Run: ``python -m benchmarks instructions [--mode dsmt|baseline] [--roles middle,sub,pub]
[--events 20000,60000]`` (JSON on stdout; needs ``valgrind``).

Why: on a shared 2-core machine the events/s of ``python -m benchmarks hub``
swing by 2x from round to round; instruction counts do not. Each role
(``middle``: the hub or the plain proxy; ``sub``; ``pub``) is counted in
its own pair of rounds, with only that process under valgrind and the other
two native, so it always has work waiting (a process slowed 50x among
native ones never waits for input, and the hub's keeper reads full bursts).
The two rounds differ only in their number of events; the difference of
the totals divided by the difference of the events removes start-up and
shutdown. Same processes and frames as ``benchmarks.hub``: ``dsmt`` is
Publisher -> Hub -> Subscriber, ``baseline`` the raw two-``send``/two-``recv``
loops through a plain XSUB/XPUB proxy.

The processes synchronise through marker files in a temporary directory:
this is a measuring tool, not a test, and its waits only poll for them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import _hub_processes as processes
from benchmarks import hub as bench

ROLES = ("middle", "sub", "pub")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks instructions")
    parser.add_argument("--mode", choices=("dsmt", "baseline"), default="dsmt")
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--events", default="20000,60000")
    args = parser.parse_args(argv or [])
    small, large = (int(n) for n in args.events.split(","))
    result: dict[str, Any] = {"benchmark": "instructions", "mode": args.mode,
                              "events": [small, large], "per_event": {}}
    for role in args.roles.split(","):
        with ThreadPoolExecutor(2) as pool:
            a, b = pool.map(lambda n: _measured_round(args.mode, role, n), (small, large))
        result["per_event"][role] = round((b - a) / (large - small))
    result["per_event"]["total"] = sum(result["per_event"].values())
    print(json.dumps(result, indent=2))
    return result


def _measured_round(mode: str, role: str, events: int) -> int:
    """One round with ``role`` under callgrind; its total instruction count."""
    with tempfile.TemporaryDirectory(prefix="dsmt-instr-") as tmp:
        out = Path(tmp) / "callgrind.out"

        def command(name: str, *extra: str) -> list[str]:
            base = [sys.executable, "-m", "benchmarks.instructions", "_" + name, mode, tmp,
                    str(events), *extra]
            if name != role:
                return base
            return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *base]

        procs = [subprocess.Popen(command("middle"), stderr=subprocess.DEVNULL)]
        _wait_file(Path(tmp) / "middle.ready")
        procs.append(subprocess.Popen(command("sub"), stderr=subprocess.DEVNULL))
        _wait_file(Path(tmp) / "sub.ready")
        procs.append(subprocess.Popen(command("pub"), stderr=subprocess.DEVNULL))
        for proc in procs[2:0:-1]:
            if proc.wait(bench.TIMEOUT * 4):
                raise RuntimeError(f"{proc.args} failed")
        (Path(tmp) / "stop").touch()
        procs[0].wait(bench.TIMEOUT)
        received = json.loads((Path(tmp) / "sub.json").read_text())["received"]
        if received != events:
            raise RuntimeError(f"lost {events - received} of {events} events")
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in the callgrind output")


# -- the three processes ----------------------------------------------------------


def _wait_file(path: Path, timeout: float = bench.TIMEOUT * 4) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name} never appeared")
        time.sleep(0.01)


class _FileEvent:
    """The part of multiprocessing.Event that benchmarks.hub uses, as a marker file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def set(self) -> None:
        self.path.touch()

    def is_set(self) -> bool:
        return self.path.exists()

    def wait(self, timeout: float | None = None) -> bool:
        try:
            _wait_file(self.path, bench.TIMEOUT * 4 if timeout is None else timeout)
        except TimeoutError:
            return False
        return True


class _Results:
    def __init__(self, path: Path) -> None:
        self.path = path

    def put(self, item: dict) -> None:
        if item.get("role") == "subscriber":
            self.path.write_text(json.dumps(item))


def _process(name: str, mode: str, tmp: str, events: int) -> None:
    folder = Path(tmp)
    hwm = bench.burst_hwm(events)
    bench_mode = mode if mode == "dsmt" else "baseline"
    if name == "middle":
        ready, stop = _FileEvent(folder / "middle.ready"), _FileEvent(folder / "stop")
        target = processes.run_hub if mode == "dsmt" else processes.run_proxy
        target(tmp, ready, stop, None, hwm)
    elif name == "sub":
        # Raw mode: the first probe the publisher sends through the proxy sets "synced".
        processes.run_subscriber(bench_mode, processes.ipc_endpoints(tmp),
                                 _FileEvent(folder / "sub.ready"), _FileEvent(folder / "synced"),
                                 _Results(folder / "sub.json"), hwm)
        (folder / "sub.done").touch()
    else:
        synced = _FileEvent(folder / "synced")
        if mode == "dsmt":
            synced.set()  # the Bus handshakes make the DSMT pair ready by construction
        processes.run_publisher(bench_mode, processes.ipc_endpoints(tmp), events,
                                _FileEvent(folder / "go"), synced, _Results(folder / "pub.json"),
                                _FileEvent(folder / "sub.done"), hwm)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        (Path(sys.argv[3]) / "go").touch()
        _process(sys.argv[1][1:], sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main(sys.argv[1:])
