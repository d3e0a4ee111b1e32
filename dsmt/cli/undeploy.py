"""``dsmt undeploy``: remove a service from the slice's plan.

Usage::

    dsmt undeploy SERVICE [--via SLIVER] [--timeout S] [--key-file F]
                  [--router HOST:PORT --password-file F --slice NAME]

Sends the signed ``undeploy`` command ``{"service": SERVICE}`` to one sliver
(``--via``, default the first with a running commander); its coordinator
(:mod:`actors.coordinator`) makes the next plan version without SERVICE,
broadcasts it (every sliver stops and uninstalls the service) and replies
``{"outcome": "done", "result": {"plan_version": n}, ...}``.

Prints ``undeployed demo-app: plan version 3 (via s1)``. An unknown service,
a rejection or no reply exits 2 with one line.
"""

from __future__ import annotations

import click

from dsmt.cli import _command, _slice


@click.command()
@click.argument("service_name", metavar="SERVICE")
@click.option("--via", "sliver", default=None, help="Sliver to send it to (default: any).")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for the reply.")
@_command.key_option
@_slice.options
def command(service_name, sliver, timeout, key_file, router, service, password_file,
            slice_) -> None:
    """Remove SERVICE from the plan: every sliver stops it."""
    key = _command.load_key(key_file)
    with _command.view(router, service, password_file, slice_) as view:
        via = _command.pick_sliver(view, sliver, timeout)
        reply = _command.plan_command(view, key, via, "undeploy", {"service": service_name},
                                      timeout)
    click.echo(f"undeployed {service_name}: plan version {reply['result']['plan_version']} "
               f"(via {via})")
