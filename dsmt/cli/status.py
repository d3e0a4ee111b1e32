"""``dsmt status``: every component of every sliver — state, since when, why.

Usage::

    dsmt status [--json] [--wait S] [--router HOST:PORT --password-file F --slice NAME]

Connects to the slice's router as a PsEPR client, asks every sliver's
bridge to re-send its current state, collects the status events for
``--wait`` seconds (default 2) and prints a table (slivers × components).
``--json`` prints a list of rows, one per component per sliver, application
instances (``app.<service>.<n>``) included::

    [{"sliver": "s1", "component": "app.demo-app.0", "state": "running",
      "since": 1764072000.1, "reason": "up for 1.0s"}, ...]

``since`` is UNIX seconds; ``reason`` is null when there is none.
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
        rows = view.rows()
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"slice {target.slice}")
    for column in ("sliver", "component", "state", "since", "reason"):
        table.add_column(column)
    now = time.time()
    for row in rows:
        table.add_row(row["sliver"], row["component"], str(row["state"]),
                      f"{now - row['since']:.0f}s ago", row["reason"] or "")
    Console().print(table)
