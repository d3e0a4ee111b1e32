"""``dsmt logs``: the end of an application process's output, from any sliver.

Usage::

    dsmt logs SLIVER:PATH [--err] [-n LINES] [--timeout S] [--key-file F]
              [--router HOST:PORT --password-file F --slice NAME]

Sends the signed ``logs`` command (:mod:`actors.commander`) to SLIVER with
``{"path": PATH, "stream": "out"|"err", "lines": N}``: the process actor at
PATH (e.g. ``s1:app.demo-app.0``) reads the last N lines (default 40, at
most 1000, and at most 8 KiB: the reply crosses PsEPR as one stanza) of its
stdout log, or stderr with ``--err``, and they are printed as they are. If
earlier lines were left out, a line on stderr says so and names the file on
the sliver, where the whole log is.

Exits 2 with one line if the command is rejected, fails (no actor at PATH, not
a process actor, a process without log files) or gets no reply.
"""

from __future__ import annotations

import click

from dsmt.cli import _command, _slice


@click.command()
@click.argument("target")
@click.option("--err", "stderr", is_flag=True, help="Its stderr log instead of stdout.")
@click.option("-n", "--lines", default=40, show_default=True,
              type=click.IntRange(1, 1000), help="How many lines, from the end.")
@click.option("--timeout", default=10.0, show_default=True,
              help="Seconds to wait for the reply.")
@_command.key_option
@_slice.options
def command(target, stderr, lines, timeout, key_file, router, service, password_file,
            slice_) -> None:
    """Print the last lines of the output of the process actor at SLIVER:PATH."""
    sliver, path = _command.parse_target(target)
    reply = _command.signed(key_file, router, service, password_file, slice_, sliver, "logs",
                            {"path": path, "stream": "err" if stderr else "out",
                             "lines": lines}, timeout)
    result = reply.get("result") or {}
    for line in result.get("lines") or ():
        click.echo(line)
    if result.get("truncated"):
        click.echo(f"(earlier lines not shown: {result.get('file')} on {sliver})", err=True)
