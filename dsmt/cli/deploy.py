"""``dsmt deploy``: install a plan on the whole slice.

Usage::

    dsmt deploy PLAN [--via SLIVER] [--timeout S] [--key-file F]
                [--router HOST:PORT --password-file F --slice NAME]

Checks PLAN (:func:`actors.plan.load`: errors name the file and the key),
then sends its TOML text as the signed ``deploy`` command
``{"toml": text}`` to one sliver (``--via``, default the first with a
running commander). Its commander forwards it to its coordinator
(:mod:`actors.coordinator`), which adopts the plan if its ``version`` is
newer than the slice's, broadcasts it to every sliver, and replies::

    {"request": ..., "sliver": "s1", "command": "deploy", "outcome": "done",
     "reason": null, "result": {"plan_version": 2}}

Prints ``deployed plan version 2 (via s1)``. An older or equal version, a
plan the coordinator refuses, a rejection or no reply exits 2 with one line.
"""

from __future__ import annotations

from pathlib import Path

import click

from dsmt.cli import _command, _slice


@click.command()
@click.argument("plan", type=click.Path(dir_okay=False, exists=True))
@click.option("--via", "sliver", default=None, help="Sliver to send it to (default: any).")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for the reply.")
@_command.key_option
@_slice.options
def command(plan, sliver, timeout, key_file, router, service, password_file, slice_) -> None:
    """Deploy PLAN (a plan TOML file) on every sliver of the slice."""
    from actors import plan as plans

    plans.load(plan)  # a bad plan is the user's error: say so before sending it
    text = Path(plan).read_text()
    key = _command.load_key(key_file)
    with _command.view(router, service, password_file, slice_) as view:
        via = _command.pick_sliver(view, sliver, timeout)
        reply = _command.plan_command(view, key, via, "deploy", {"toml": text}, timeout)
    click.echo(f"deployed plan version {reply['result']['plan_version']} (via {via})")
