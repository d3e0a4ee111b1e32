"""``dsmt inspect``: the snapshot of one actor of one sliver.

Usage::

    dsmt inspect SLIVER:PATH [--json] [--timeout S] [--key-file F]
                 [--router HOST:PORT --password-file F --slice NAME]

Sends the signed ``inspect`` command (:mod:`actors.commander`) to SLIVER
for the actor at PATH (``s1:app/demo-app``, ``s1:/s1/app/demo-app`` or
``s1:app.demo-app``) and prints the snapshot the actor returns; with
``--json`` exactly the snapshot::

    {"path": "/s1/app/demo-app", "class": "ServiceSupervisor", "state": "running",
     "since": 1764072000.1, "reason": null, "detail": {...}, "counters": {...},
     "config": {...}, "restarts_left": 2,
     "children": [{"id": 0, "path": "/s1/app/demo-app/0", "state": "backoff",
                   "restarts": 2, "attempt": 3, "next_attempt": 1764072002.0,
                   "restarts_left": 2, "alive": false, ...}]}

A rejected or failed command (no such actor, bad key, ...) exits 2 with one
line saying why.
"""

from __future__ import annotations

import json

import click

from dsmt.cli import _command, _slice


@click.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot as JSON.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for the reply.")
@_command.key_option
@_slice.options
def command(target, as_json, timeout, key_file, router, service, password_file, slice_) -> None:
    """Show the snapshot of the actor at SLIVER:PATH (state, counters, children)."""
    sliver, path = _command.parse_target(target)
    snapshot = _command.signed(key_file, router, service, password_file, slice_, sliver,
                               "inspect", {"path": path}, timeout)["result"]
    if as_json:
        click.echo(json.dumps(snapshot, indent=1))
        return
    from rich.console import Console
    from rich.pretty import Pretty

    Console().print(Pretty(snapshot))
