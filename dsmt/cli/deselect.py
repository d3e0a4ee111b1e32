"""``dsmt deselect``: take a sliver out of the slice without dropping an instance.

Usage::

    dsmt deselect SLIVER [--drain S] [--timeout S] [--key-file F]
                  [--router HOST:PORT --password-file F --slice NAME]

Sends the signed ``deselect`` command (:mod:`actors.commander`) to SLIVER,
which drains it (:mod:`actors.coordinator.drain`): the sliver announces
itself out of placement at once, so every sliver's placement gives its share
to the others, while its own instances keep running; once the peers run that
share (at most ``--drain`` seconds, 60 by default; 0 stops at once), its
container manager has the application stopped, releases the workspace
(packages, versions, links; the logs stay) and says ``deselected``. No
process starts there until ``dsmt select SLIVER`` (which also ends a drain
still under way), also after a restart of its node. Prints the outcome::

    deselect s2: done (deselected; drained in 2.4 s)
    deselect s2: done (deselected; stopped before the peers ran its share, after 60.1 s)

Exits 2 with one line if the command is rejected, fails (e.g. the app would
not stop: the container is then ``failed`` and the workspace kept; or a
``select`` cancelled it) or gets no final reply within ``--timeout`` (by
default the drain's time and 90 s more).
"""

from __future__ import annotations

import click

from dsmt.cli import _command, _slice


@click.command()
@click.argument("sliver")
@click.option("--drain", default=60.0, show_default=True, type=click.FloatRange(0, 3600),
              help="Seconds to wait at most for the peers to run its share (0: stop at once).")
@click.option("--timeout", type=float, default=None,
              help="Seconds to wait for the outcome (default: --drain + 90).")
@_command.key_option
@_slice.options
def command(sliver, drain, timeout, key_file, router, service, password_file, slice_) -> None:
    """Take SLIVER out of the slice: move its share, then stop its app, release its workspace."""
    sliver = _command.parse_sliver(sliver)
    key = _command.load_key(key_file)
    with _command.view(router, service, password_file, slice_) as view:
        reply = _command.plan_command(view, key, sliver, "deselect", {"drain": drain},
                                      drain + 90.0 if timeout is None else timeout)
    result = reply.get("result") or {}
    if result.get("already"):
        how = "; it already was"
    elif "drained" not in result:  # a sliver without a coordinator stops at once
        how = ""
    elif result["drained"]:
        how = f"; drained in {result.get('seconds')} s"
    else:
        how = f"; stopped before the peers ran its share, after {result.get('seconds')} s"
    click.echo(f"deselect {sliver}: {reply['outcome']} ({result.get('state')}{how})")
