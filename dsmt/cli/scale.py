"""``dsmt scale``: change how many instances of a service run in the slice.

Usage::

    dsmt scale SERVICE N [--via SLIVER] [--timeout S] [--key-file F]
               [--router HOST:PORT --password-file F --slice NAME]

N is a count (0 or more) or ``all`` (one instance on every eligible
sliver). Sends the signed ``scale`` command ``{"service": SERVICE,
"replicas": N}`` to one sliver (``--via``, default the first with a running
commander); its coordinator (:mod:`actors.coordinator`) makes the next plan
version with ``replicas = N``, broadcasts it (placement spreads the
instances) and replies ``{"outcome": "done", "result": {"plan_version": n},
...}``.

Prints ``scaled demo-app to 2: plan version 2 (via s1)``. A bad N, an
unknown service, a rejection or no reply exits 2 with one line.
"""

from __future__ import annotations

import click

from dsmt.cli import _command, _slice
from dsmt.errors import DsmtError


@click.command()
@click.argument("service_name", metavar="SERVICE")
@click.argument("replicas", metavar="N")
@click.option("--via", "sliver", default=None, help="Sliver to send it to (default: any).")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for the reply.")
@_command.key_option
@_slice.options
def command(service_name, replicas, sliver, timeout, key_file, router, service, password_file,
            slice_) -> None:
    """Run N instances of SERVICE (a count, or "all": one per sliver)."""
    count = parse_replicas(replicas)
    key = _command.load_key(key_file)
    with _command.view(router, service, password_file, slice_) as view:
        via = _command.pick_sliver(view, sliver, timeout)
        reply = _command.plan_command(view, key, via, "scale",
                                      {"service": service_name, "replicas": count}, timeout)
    click.echo(f"scaled {service_name} to {replicas}: plan version "
               f"{reply['result']['plan_version']} (via {via})")


def parse_replicas(text: str) -> int | str:
    if text == "all":
        return "all"
    if not text.isdigit():
        raise DsmtError(f"N: expected a count >= 0 or 'all', got {text!r}")
    return int(text)
