"""``dsmt restart``: restart the actor at SLIVER:PATH through its supervisor.

Usage::

    dsmt restart SLIVER:PATH [--timeout S] [--key-file F]
                 [--router HOST:PORT --password-file F --slice NAME]

Sends the signed ``restart`` command (:mod:`actors.commander`) to SLIVER
with ``{"path": PATH}``: the commander makes the actor at PATH fail, so its
supervisor restarts it per its child spec (the reply comes before the restart).
Prints the outcome::

    restart /s1/app-monitor on s1: done

Exits 2 with one line if the command is rejected (bad key, stale, ...),
fails (no actor at PATH, the commander itself, ...) or gets no reply.
"""

from __future__ import annotations

import click

from dsmt.cli import _command, _slice


@click.command()
@click.argument("target")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for the reply.")
@_command.key_option
@_slice.options
def command(target, timeout, key_file, router, service, password_file, slice_) -> None:
    """Restart the actor at SLIVER:PATH through its supervisor."""
    sliver, path = _command.parse_target(target)
    key = _command.load_key(key_file)
    with _command.view(router, service, password_file, slice_) as view:
        reply = _command.send(view, key, sliver, "restart", {"path": path}, timeout)
    click.echo(f"restart {path} on {sliver}: {reply['outcome']}")
