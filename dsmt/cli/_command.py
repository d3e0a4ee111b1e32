"""What the operator commands share: slice key, ``SLIVER:PATH`` targets, a view, a signed command.

The key that signs commands is ``--key-file``, by default ``slice.key`` in
the folder of the slice ``dsmt up`` runs (``dir`` in ``$DSMT_HOME/up.json``).
:func:`send` turns "no reply" and "rejected/failed" into one-line
:class:`dsmt.errors.DsmtError`\\ s, which :func:`dsmt.cli.main` prints and
exits 2 with.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from dsmt.cli import _slice
from dsmt.errors import DsmtError

CONNECT_TIMEOUT = 10.0
OK = ("done", "forwarded")


def key_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--key-file", type=click.Path(dir_okay=False),
                        help="Slice key that signs commands (default: the one of `dsmt up`).")(fn)


def load_key(key_file: str | None) -> bytes:
    from dsmt import commands

    if key_file is None:
        try:
            folder = json.loads(_slice.pointer().read_text()).get("dir")
        except (OSError, ValueError):
            folder = None
        if not folder:
            raise DsmtError(f"no --key-file and no slice started by `dsmt up` "
                            f"({_slice.pointer()} missing or without dir)")
        key_file = str(Path(folder) / "slice.key")
    return commands.load_key(key_file)  # KeyFileError names the file and what is wrong


def parse_sliver(text: str) -> str:
    """A sliver name as given on the command line (DsmtError if it is not one)."""
    if not text or "/" in text or ":" in text:
        raise DsmtError(f"{text!r}: expected a sliver name, e.g. s1")
    return text


def parse_target(text: str) -> tuple[str, str]:
    """``SLIVER:PATH`` as (sliver, absolute actor path).

    PATH is relative to the sliver (``app/demo-app``), or absolute with or
    without the sliver (``/s1/app/demo-app``, ``/app/demo-app``), or a status
    component (``app.demo-app.0``). The sliver's root itself is refused.
    """
    sliver, sep, path = text.partition(":")
    if not sep or not sliver or "/" in sliver:
        raise DsmtError(f"{text!r}: expected SLIVER:PATH, e.g. s1:app/demo-app")
    parts = path.strip("/").split("/") if "/" in path else path.split(".")
    if parts and parts[0] == sliver:
        parts = parts[1:]
    if not parts or any(not p or p in (".", "..") for p in parts):
        raise DsmtError(f"{text!r}: PATH must name an actor under /{sliver}/, "
                        f"e.g. {sliver}:app/demo-app")
    return sliver, "/" + "/".join([sliver, *parts])


@contextmanager
def view(router, service, password_file, slice_) -> Iterator[Any]:
    """A started :class:`gateways.view.SliceView` on the slice the options name."""
    from dsmt.channels import Layout
    from gateways.view import SliceView

    target = _slice.resolve(router, service, password_file, slice_)
    view = SliceView([target.router], target.service, target.password, Layout(target.slice))
    try:
        view.start(CONNECT_TIMEOUT)
    except TimeoutError:
        view.close()
        raise DsmtError(f"the router at {target.router[0]}:{target.router[1]} did not answer "
                        f"within {CONNECT_TIMEOUT}s (is the slice running?)") from None
    try:
        yield view
    finally:
        view.close()


def send(view: Any, key: bytes, sliver: str, command: str, args: dict[str, Any] | None,
         timeout: float) -> dict[str, Any]:
    """Sign and send; the reply, or DsmtError when none comes or it is not done/forwarded."""
    from gateways.commands import send_command

    try:
        reply = send_command(view, key, view.layout.slice, sliver, command, args, timeout)
    except TimeoutError as exc:
        raise DsmtError(f"{command} on {sliver}: {exc} (is {sliver} a sliver of the slice?)") \
            from None
    check(reply)
    return reply


def check(reply: dict[str, Any]) -> None:
    if reply.get("outcome") not in OK:
        raise DsmtError(f"{reply.get('command') or 'command'} on {reply.get('sliver')}: "
                        f"{reply.get('outcome')}: {reply.get('reason')}")


def pick_sliver(view: Any, sliver: str | None, wait: float) -> str:
    """``sliver``, or the first sliver whose commander the view sees running."""
    if sliver is not None:
        return sliver

    def found(v: Any) -> bool:
        return any(r["component"] == "commander" and r["state"] == "running" for r in v.rows())

    if not view.wait(found, wait):
        raise DsmtError(f"no sliver of slice {view.layout.slice} reported a running commander "
                        f"within {wait}s")
    return sorted(r["sliver"] for r in view.rows()
                  if r["component"] == "commander" and r["state"] == "running")[0]


def plan_command(view: Any, key: bytes, sliver: str, command: str, args: dict[str, Any],
                 timeout: float) -> dict[str, Any]:
    """Send a plan command to ``sliver``; the coordinator's reply (DsmtError unless done).

    The commander answers ``forwarded``, the coordinator ``done`` or
    ``failed``; the two replies may arrive in either order.
    """
    from gateways.commands import CommandRequest

    with CommandRequest(view.client, key, view.layout, sliver, command, args) as request:
        try:
            request.lease(timeout)
            request.send()
            deadline = time.monotonic() + timeout
            while True:
                reply = request.reply(max(0.0, deadline - time.monotonic()))
                check(reply)
                if reply.get("outcome") != "forwarded":
                    return reply
        except TimeoutError as exc:
            raise DsmtError(f"{command} via {sliver}: {exc}") from None


def signed(key_file: str | None, router: Any, service: Any, password_file: Any, slice_: Any,
           sliver: str, command: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Load the key, open a view on the slice, sign and send ``command``; the reply."""
    key = load_key(key_file)
    with view(router, service, password_file, slice_) as slice_view:
        return send(slice_view, key, sliver, command, args, timeout)


def signed_command(name: str, help: str, *, to_sliver: bool = False,
                   timeout: float = 10.0) -> click.Command:
    """The click command sending the signed command ``name`` to the actor at SLIVER:PATH
    (``{"path": PATH}``), or with ``to_sliver`` to SLIVER itself (no arguments)."""

    @click.command(name=name, help=help)
    @click.argument("target", metavar="SLIVER" if to_sliver else "SLIVER:PATH")
    @click.option("--timeout", default=timeout, show_default=True,
                  help="Seconds to wait for the reply.")
    @key_option
    @_slice.options
    def command(target, timeout, key_file, router, service, password_file, slice_) -> None:
        if to_sliver:
            sliver = parse_sliver(target)
            args, what = {}, sliver
        else:
            sliver, path = parse_target(target)
            args, what = {"path": path}, f"{path} on {sliver}"
        reply = signed(key_file, router, service, password_file, slice_, sliver, name, args,
                       timeout)
        state = (reply.get("result") or {}).get("state") if to_sliver else None
        click.echo(f"{name} {what}: {reply['outcome']}" + (f" ({state})" if state else ""))

    return command
