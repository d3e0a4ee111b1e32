"""``dsmt up``: a whole slice on this machine — a router and N slivers — running the demo plan.

Usage::

    dsmt up [--slivers N] [--dir DIR] [--timeout S] [--exit-when-running] [PLAN]

Builds the demo application package (unless a PLAN file is given), starts a
PsEPR router on a free loopback port and N ``dsmt node`` processes
(:mod:`actors.localslice`), and shows the slice's instances as they come up
(a live table from the slivers' status events, seen through the router)
until every planned instance runs and is ready (has passed its service's
health check; ``dsmt status`` says ``running (not ready)`` until then).
Then it prints where to look — the instances' URLs, the folder with every
log — and keeps the slice running until Ctrl-C (SIGINT) or SIGTERM, which
stop every process it started; none is left behind. With
``--exit-when-running`` it stops the slice and exits 0 as soon as
everything runs (a smoke test), or exits 1 on ``--timeout``.

The slice's folder (a fresh temporary one unless ``--dir``) holds
``up.json``: the router address and credentials other commands use, and
the pid of this ``dsmt up`` (which ``dsmt down`` sends SIGTERM).
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from pathlib import Path

import click

from dsmt.cli import _slice
from dsmt.errors import DsmtError
from dsmt.latch import Latch, wait_in_main_thread


@click.command()
@click.argument("plan", required=False, type=click.Path(dir_okay=False, exists=True))
@click.option("--slivers", default=3, show_default=True, type=click.IntRange(1, 64))
@click.option("--dir", "folder", type=click.Path(file_okay=False),
              help="Where the slice lives (default: a new folder under /tmp).")
@click.option("--timeout", default=120.0, show_default=True,
              help="Seconds to wait for every instance to run.")
@click.option("--exit-when-running", is_flag=True, help="Stop everything once all instances run.")
def command(plan: str | None, slivers: int, folder: str | None, timeout: float,
            exit_when_running: bool) -> None:
    """Start a router and N slivers here, deploy the demo plan, show them come up."""
    from rich.console import Console

    from actors.deploy.package import build_demo
    from actors.localslice import SERVICE, LocalSlice
    from gateways.view import SliceView

    console = Console()
    root = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="dsmt-up-", dir="/tmp"))
    if plan is None:
        archive, sha256 = build_demo(root / "packages")
        plan_path = root / "plan.toml"
        plan_path.write_text(
            f'version = 1\n\n[services.demo-app]\npackage = "file://{archive}"\n'
            f'sha256 = "{sha256}"\nversion = "1.0.0"\nreplicas = "all"\n')
    else:
        plan_path = Path(plan).resolve()
    from actors import plan as plans

    expected = _instances(plans.load(plan_path), slivers)
    stop = Latch()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    slice_ = LocalSlice(root, slivers=slivers, plan=plan_path)
    console.print(f"[bold]dsmt up[/]: {slivers} slivers in {root}")
    try:
        slice_.start()
        record = json.dumps({
            "router": "%s:%d" % slice_.address, "service": SERVICE,
            "password_file": str(root / "slice.secret"), "slice": slice_.slice,
            "slivers": [m.name for m in slice_.members], "dir": str(root),
            "pid": os.getpid()}, indent=2)
        (root / "up.json").write_text(record)
        _slice.home().mkdir(parents=True, exist_ok=True)
        _slice.pointer().write_text(record)
        with SliceView([slice_.address], SERVICE, slice_.password, slice_.layout) as view:
            running = _wait_running(view, expected, timeout, stop, console)
            if not running:
                raise DsmtError(f"not every instance was running within {timeout}s "
                                f"(logs under {root})" if not stop.is_set() else "interrupted")
            console.print(_table(view))
            for row in view.services():
                for port in row.get("ports") or ():
                    console.print(f"  {row['sliver']}: {row['service']} "
                                  f"http://127.0.0.1:{port}/health")
        console.print(f"all {expected} instances running; router 127.0.0.1:{slice_.port}; "
                      f"logs in {root}/<sliver>/ws/logs")
        if not exit_when_running:
            console.print("Ctrl-C stops everything.")
            wait_in_main_thread(stop)
    finally:
        console.print("stopping the slice…")
        slice_.stop()
        _forget(root)
        left = slice_.processes()
        console.print("stopped" + ("" if not left else f"; still running: {left}"))


def _forget(root: Path) -> None:
    """Remove the pointer to this slice, unless another `dsmt up` replaced it since."""
    try:
        if json.loads(_slice.pointer().read_text()).get("dir") == str(root):
            _slice.pointer().unlink()
    except (OSError, ValueError):
        pass


def _instances(plan, slivers: int) -> int:
    total = 0
    for service in plan.services.values():
        # Placement spreads the replicas over the slice; "all" is one per sliver.
        total += slivers if service.replicas == "all" else int(service.replicas)
    return total


def _running(view) -> int:
    """Application instances (components ``app.<service>.<n>``) running and ready."""
    return sum(1 for row in view.rows()
               if row["component"].count(".") >= 2 and row["component"].startswith("app.")
               and row["component"].rsplit(".", 1)[1].isdigit() and row["state"] == "running"
               and row["ready"] is not False)


def _wait_running(view, expected: int, timeout: float, stop: Latch, console) -> bool:
    from rich.live import Live

    deadline = time.monotonic() + timeout
    with Live(_table(view), console=console, refresh_per_second=4, transient=True) as live:
        while time.monotonic() < deadline and not stop.is_set():
            if _running(view) >= expected:
                return True
            view.wait(lambda v: False, 0.25)
            live.update(_table(view))
    return _running(view) >= expected


def _table(view):
    from rich.table import Table

    from dsmt.cli.status import shown_state

    table = Table(title="slice status")
    for column in ("sliver", "component", "state", "reason"):
        table.add_column(column)
    for row in view.rows():
        table.add_row(row["sliver"], row["component"], shown_state(row), row["reason"] or "")
    return table
