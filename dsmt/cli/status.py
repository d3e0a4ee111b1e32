"""``dsmt status``: every component of every sliver — state, since when, why.

Usage::

    dsmt status [--json] [--wait S] [--router HOST:PORT --password-file F --slice NAME]

Connects to the slice's router as a PsEPR client, asks every sliver's
bridge to re-send its current state, collects the status events for
``--wait`` seconds (default 2) and prints a table (slivers × components).
``--json`` prints a list of rows, one per component per sliver, application
instances (``app.<service>.<n>``) included::

    [{"sliver": "s1", "component": "app.demo-app.0", "state": "running",
      "since": 1764072000.1, "reason": "up for 1.0s", "ready": false}, ...,
     {"sliver": "s3", "component": "heartbeat", "state": "dead",
      "since": 1764071990.4, "reason": "no heartbeat for 14.2s", "ready": null}]

``since`` is UNIX seconds; ``reason`` is null when there is none. ``ready``
is known for application instances only: true once the process runs and
passes its service's health check (or runs, for a service without one); the
table shows a running instance that is not as ``running (not ready)``. Every
sliver the view heard of has a ``heartbeat`` row: its liveness from the
heartbeats seen through the router (``alive``; ``suspected`` after 3
missed beats; ``dead`` 10 s later, when it left, or when a live
coordinator says so), ``since`` its last beat (null if none was seen). A
component of a suspected or dead sliver keeps its last reported state; the
table marks its sliver in red with the liveness.
"""

from __future__ import annotations

import json
import threading
import time

import click

from dsmt.cli import _slice


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON.")
@click.option("--wait", default=2.0, show_default=True, help="Seconds to collect status events.")
@_slice.options
def command(as_json: bool, wait: float, router, service, password_file, slice_) -> None:
    """Show the state of every component of every sliver of the slice."""
    from dsmt.channels import Layout
    from gateways.view import SliceView

    target = _slice.resolve(router, service, password_file, slice_)
    with SliceView([target.router], target.service, target.password,
                   Layout(target.slice)) as view:
        threading.Event().wait(wait)  # the time the user gave the slivers to answer
        rows = view.rows(heartbeats=True)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"slice {target.slice}")
    for column in ("sliver", "component", "state", "since", "reason"):
        table.add_column(column)
    now = time.time()
    liveness = {r["sliver"]: r["state"] for r in rows if r["component"] == "heartbeat"}
    for row in rows:
        state = liveness.get(row["sliver"])
        down = state in ("suspected", "dead")
        sliver = f"[red]{row['sliver']} ({state})[/]" if down else row["sliver"]
        since = "never" if row["since"] is None else f"{now - row['since']:.0f}s ago"
        table.add_row(sliver, row["component"], shown_state(row), since, row["reason"] or "")
    Console().print(table)


def shown_state(row: dict) -> str:
    """A row's state as the tables show it: ``running (not ready)`` for such an instance."""
    not_ready = row["state"] == "running" and row.get("ready") is False
    return f"{row['state']}{' (not ready)' if not_ready else ''}"
