"""``dsmt logs``: the end of an application process's output, from any sliver.

Usage::

    dsmt logs SLIVER:PATH [--err] [-n LINES] [-f [--interval S]] [--timeout S]
              [--key-file F] [--router HOST:PORT --password-file F --slice NAME]

Sends the signed ``logs`` command (:mod:`actors.commander`) to SLIVER with
``{"path": PATH, "stream": "out"|"err", "lines": N}``: the process actor at
PATH (e.g. ``s1:app.demo-app.0``) reads the last N lines (default 40, at
most 1000, and at most 8 KiB: the reply crosses PsEPR as one stanza) of its
stdout log, or stderr with ``--err``, and they are printed as they are. If
earlier lines were left out, a line on stderr says so and names the file on
the sliver, where the whole log is.

``-f``/``--follow`` then prints new lines as they are written, until Ctrl-C
(SIGINT, exit 0; also when started with SIGINT ignored, as a shell's
background job is, like ``dsmt up``): it asks again every ``--interval``
seconds from the cursor of the previous answer (at once while more is
waiting), so nothing is shown twice and, across the sliver's log rotations,
nothing is skipped without a line on stderr saying so
(:mod:`actors.process.logread`: rotated more than once between two reads,
or more than 1 MiB behind). A follow outlives restarts:
while the process actor is being restarted, or the sliver does not answer,
it says so on stderr once and keeps asking. Each read is one signed command
(the sliver's commander verifies and records every one).

Exits 2 with one line if the command is rejected, or (without ``-f``) fails
(no actor at PATH, not a process actor, a process without log files) or gets
no reply.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import click

from dsmt.cli import _command, _slice
from dsmt.errors import DsmtError


@click.command()
@click.argument("target")
@click.option("--err", "stderr", is_flag=True, help="Its stderr log instead of stdout.")
@click.option("-n", "--lines", default=40, show_default=True,
              type=click.IntRange(1, 1000), help="How many lines, from the end.")
@click.option("-f", "--follow", is_flag=True, help="Then print new lines until Ctrl-C.")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.1, 60),
              help="With --follow: seconds between two reads.")
@click.option("--timeout", default=10.0, show_default=True,
              help="Seconds to wait for each reply.")
@_command.key_option
@_slice.options
def command(target, stderr, lines, follow, interval, timeout, key_file, router, service,
            password_file, slice_) -> None:
    """Print the last lines of the output of the process actor at SLIVER:PATH."""
    sliver, path = _command.parse_target(target)
    args = {"path": path, "stream": "err" if stderr else "out", "lines": lines}
    if not follow:
        reply = _command.signed(key_file, router, service, password_file, slice_, sliver,
                                "logs", args, timeout)
        _print(reply.get("result") or {}, sliver)
        return
    key = _command.load_key(key_file)
    # Python leaves an inherited "ignore SIGINT" alone: Ctrl-C must end a follow anyway.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with _command.view(router, service, password_file, slice_) as view:
        try:
            _follow(view, key, sliver, args, interval, timeout)
        except KeyboardInterrupt:
            pass


def _follow(view: Any, key: bytes, sliver: str, args: dict[str, Any], interval: float,
            timeout: float) -> None:
    first = _command.send(view, key, sliver, "logs", {**args, "follow": True}, timeout)
    result = first.get("result") or {}
    if "cursor" not in result:
        raise DsmtError(f"{sliver} cannot be followed: its node answers logs without a "
                        f"cursor (an older DSMT)")
    _print(result, sliver)
    cursor = result["cursor"]
    reading = {"path": args["path"], "stream": args["stream"]}
    trouble = None
    while True:
        reply = _read(view, key, sliver, {**reading, "cursor": cursor}, timeout)
        if reply.get("outcome") == "done":
            if trouble is not None:
                click.echo(f"({sliver}: following {args['path']} again)", err=True)
                trouble = None
            result = reply.get("result") or {}
            _print(result, sliver)
            cursor = result["cursor"]
            if result.get("more"):
                continue
        elif reply["reason"] != trouble:
            trouble = reply["reason"]
            click.echo(f"({sliver}: {trouble}; asking again every {interval:g} s)", err=True)
        time.sleep(interval)


def _read(view: Any, key: bytes, sliver: str, args: dict[str, Any],
          timeout: float) -> dict[str, Any]:
    """One follow read: the reply if done or failed (the actor may be restarting; a
    missing reply is a failure too), DsmtError if rejected."""
    from gateways.commands import send_command

    try:
        reply = send_command(view, key, view.layout.slice, sliver, "logs", args, timeout)
    except TimeoutError:
        return {"outcome": "failed", "reason": f"no reply within {timeout:g} s"}
    if reply.get("outcome") == "rejected":
        _command.check(reply)
    return {"outcome": reply.get("outcome"), "reason": reply.get("reason"),
            "result": reply.get("result")}


def _print(result: dict[str, Any], sliver: str) -> None:
    if result.get("lost"):
        click.echo(f"(lines left out: {result.get('file')} on {sliver} was rotated more than "
                   f"once between two reads)", err=True)
    if result.get("skipped"):
        click.echo(f"({result['skipped']} bytes skipped: {result.get('file')} on {sliver} "
                   f"grows faster than it can be followed)", err=True)
    for line in result.get("lines") or ():
        click.echo(line)
    if result.get("truncated"):
        click.echo(f"(earlier lines not shown: {result.get('file')} on {sliver})", err=True)
