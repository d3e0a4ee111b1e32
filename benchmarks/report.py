"""Every benchmark in one run, written up as a markdown report with plots.

``python -m benchmarks report [--out DIR] [--only hub,router,restart,slice,idle]
[--quick]``
``python -m benchmarks report --from DIR``   (write the report again from saved JSON)

Runs each benchmark of the earlier issues in turn, each in its own process
(``python -m benchmarks NAME``), one after the other so they do not load
the machine for each other, and writes into ``DIR`` (default
``reports/<UTC time>/``, which git ignores):

    report.md             tables: every figure next to its baseline of the same run
    restart_latency.png   kill -9 -> new pid, per kill, DSMT vs circus vs supervisord
    slice_failover.png    sliver death -> replacements healthy, against the number of slivers
    <name>.json           what each benchmark printed
    <name>.log            its progress output
    machine.json          the machine, the commit, the load before and after

``--quick`` runs every benchmark with small arguments (a smoke test of the
whole chain, not figures to quote). A benchmark that fails is reported as
failed in the report (with the tail of its log) and the others still run;
the command then exits 1. The checked-in copy of the latest full run is
``docs/benchmarks/`` (``--out docs/benchmarks``), linked from the README.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import _render

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("hub", "router", "restart", "slice", "idle")
FULL = {
    "hub": [],
    "router": [],
    "restart": ["--kills", "20"],
    "slice": ["--slivers", "10,30", "--kills", "3"],
    "idle": ["--slivers", "1,10"],
}
QUICK = {
    "hub": ["--events", "5000", "--rounds", "2", "--idle", "50", "--actors", "50",
            "--asks", "500"],
    "router": ["--events", "3000", "--rounds", "2", "--latency-seconds", "0.5",
               "--clients", "20"],
    "restart": ["--kills", "2", "--tools", "dsmt,dsmt-otp,supervisord"],
    "slice": ["--slivers", "4,5", "--kills", "1", "--restarts", "1"],
    "idle": ["--slivers", "1,2", "--seconds", "1", "--rounds", "1",
             "--tools", "dsmt,supervisord"],
}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder to write (default reports/<UTC time>/)")
    parser.add_argument("--only", default=",".join(ORDER),
                        help=f"comma-separated, from {','.join(ORDER)}")
    parser.add_argument("--quick", action="store_true", help="small runs: a smoke test")
    parser.add_argument("--from", dest="source", type=Path, default=None,
                        help="write the report from the JSON saved in this folder; run nothing")
    args = parser.parse_args(argv)
    if args.source is not None:
        out = args.out or args.source
        failed = write(out, load(args.source))
        print(out / "report.md")
        sys.exit(1 if failed else 0)
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(ORDER))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or ROOT / "reports" / stamp
    out.mkdir(parents=True, exist_ok=True)
    runs = run(out, [n for n in ORDER if n in names], QUICK if args.quick else FULL,
               quick=args.quick)
    failed = write(out, runs)
    print(out / "report.md")
    sys.exit(1 if failed else 0)


def run(out: Path, names: list[str], arguments: dict[str, list[str]], *, quick: bool) -> dict:
    """Run each benchmark in turn, saving its JSON and log in ``out``; returns the runs."""
    machine = describe_machine()
    machine["quick"] = quick
    runs: dict = {"machine": machine, "benchmarks": {}}
    for name in names:
        argv = [sys.executable, "-m", "benchmarks", name, *arguments[name]]
        print(f"report: running {' '.join(argv[1:])}", file=sys.stderr, flush=True)
        started = time.monotonic()
        with open(out / f"{name}.log", "wb") as log:
            done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=log, cwd=ROOT)
        entry = {"argv": argv[2:], "seconds": round(time.monotonic() - started, 1),
                 "returncode": done.returncode}
        try:
            entry["result"] = _json_part(done.stdout.decode())
        except ValueError as exc:
            entry["error"] = f"no JSON on stdout ({exc})"
        if done.returncode != 0:
            entry["error"] = f"exit status {done.returncode}"
        (out / f"{name}.json").write_text(json.dumps(entry, indent=2) + "\n")
        runs["benchmarks"][name] = entry
    machine["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    (out / "machine.json").write_text(json.dumps(machine, indent=2) + "\n")
    return runs


def load(folder: Path) -> dict:
    """The runs saved in ``folder`` by an earlier :func:`run`."""
    runs: dict = {"machine": json.loads((folder / "machine.json").read_text()),
                  "benchmarks": {}}
    for name in ORDER:
        path = folder / f"{name}.json"
        if path.exists():
            runs["benchmarks"][name] = json.loads(path.read_text())
    return runs


def write(out: Path, runs: dict) -> bool:
    """Write report.md and the plots into ``out``; True if a benchmark failed."""
    out.mkdir(parents=True, exist_ok=True)
    for name, entry in runs["benchmarks"].items():
        log = out / f"{name}.log"
        if "error" in entry and log.exists():
            entry["log_tail"] = log.read_text(errors="replace")[-2000:]
    text = _render.markdown(runs, plots=_render.plots(runs, out))
    (out / "report.md").write_text(text)
    return any("error" in entry for entry in runs["benchmarks"].values())


def describe_machine() -> dict:
    """What the figures depend on: CPU, memory, kernel, Python, the commit, the load."""
    import psutil

    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True).stdout.strip() or "?"
    # the report's own folders do not count: rewriting docs/benchmarks is not a code change
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":(exclude)docs/benchmarks", ":(exclude)reports"], cwd=ROOT,
                           text=True, capture_output=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "load_avg_before": [round(x, 2) for x in os.getloadavg()],
    }


def _json_part(text: str) -> dict:
    """The JSON document in a benchmark's stdout (from the first ``{`` to its end)."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no '{'")
    return json.JSONDecoder().raw_decode(text[start:])[0]
