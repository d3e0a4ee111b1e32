"""``dsmt top``: a live view of every application instance of the slice.

Usage::

    dsmt top [--once] [--json] [--wait S] [--interval S]
             [--router HOST:PORT --password-file F --slice NAME]

A PsEPR client on the slice's router (:class:`gateways.view.SliceView`, plus
a lease on the coordinators' heartbeats) keeps the newest status of every
instance (components ``app.<service>.<n>``) and the newest load of every
sliver; a rich Live table (slivers × instances: state, pid, restarts, load,
since) is redrawn every ``--interval`` seconds until Ctrl-C. ``--once``
collects for ``--wait`` seconds, prints one frame and exits; with ``--json``
that frame is a list of rows::

    [{"sliver": "s1", "service": "demo-app", "instance": 0, "state": "running",
      "pid": 4242, "restarts": 0, "load": 0.12, "since": 1764072000.1,
      "reason": "up for 3.0s"}, ...]

``pid``, ``restarts`` and ``load`` are null when not (yet) reported;
``load`` is the sliver's 1-minute load average per CPU.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import click

from dsmt.cli import _command, _slice


@click.command()
@click.option("--once", is_flag=True, help="Print one frame and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the rows as JSON.")
@click.option("--wait", default=1.5, show_default=True,
              help="With --once: seconds to collect events first.")
@click.option("--interval", default=0.5, show_default=True, help="Seconds between redraws.")
@_slice.options
def command(once, as_json, wait, interval, router, service, password_file, slice_) -> None:
    """Watch the slice's instances live: state, pid, restarts, load per sliver."""
    from rich.console import Console
    from rich.live import Live

    from dsmt.event import HEARTBEAT

    loads: dict[str, Any] = {}

    def beat(event) -> None:
        payload = event.payload if isinstance(event.payload, dict) else {}
        if isinstance(payload.get("sliver"), str):
            loads[payload["sliver"]] = (payload.get("load") or {}).get("load")

    with _command.view(router, service, password_file, slice_) as view:
        view.client.lease(view.layout.heartbeat(), beat, type=HEARTBEAT)
        if once:
            threading.Event().wait(wait)  # the time the user gave the slivers to answer
            frame = rows(view, dict(loads))
            if as_json:
                click.echo(json.dumps(frame, indent=1))
            else:
                Console().print(table(frame, view.layout.slice))
            return
        with Live(table(rows(view, dict(loads)), view.layout.slice),
                  refresh_per_second=max(1.0, 1 / interval)) as live:
            try:
                while True:
                    view.wait(lambda v: False, interval)
                    live.update(table(rows(view, dict(loads)), view.layout.slice))
            except KeyboardInterrupt:
                pass


def rows(view, loads: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per application instance, ordered by sliver, service, instance."""
    found = []
    for row in view.rows():
        parts = row["component"].split(".")
        if len(parts) != 3 or parts[0] != "app" or not parts[2].isdigit():
            continue
        payload = view.status(row["sliver"], row["component"]) or {}
        found.append({"sliver": row["sliver"], "service": parts[1], "instance": int(parts[2]),
                      "state": row["state"], "pid": payload.get("pid"),
                      "restarts": payload.get("restarts"), "load": loads.get(row["sliver"]),
                      "since": row["since"], "reason": row["reason"]})
    return sorted(found, key=lambda r: (r["sliver"], r["service"], r["instance"]))


def table(frame: list[dict[str, Any]], slice_name: str):
    from rich.table import Table

    t = Table(title=f"slice {slice_name} — {time.strftime('%H:%M:%S')}")
    for column in ("sliver", "load", "instance", "state", "pid", "restarts", "since", "reason"):
        t.add_column(column)
    now = time.time()
    for r in frame:
        t.add_row(r["sliver"], "" if r["load"] is None else f"{r['load']:.2f}",
                  f"{r['service']}.{r['instance']}", str(r["state"]),
                  "" if r["pid"] is None else str(r["pid"]),
                  "" if r["restarts"] is None else str(r["restarts"]),
                  f"{now - r['since']:.0f}s ago", r["reason"] or "")
    return t
