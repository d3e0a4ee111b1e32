"""``dsmt events``: the events of a PsEPR channel — its current state, or a live stream.

Usage::

    dsmt events [CHANNEL] [--follow] [--wait S] [--xml | --json] [--type NAMESPACE]
                [--count N] [--router HOST:PORT ...] [--service S] [--password-file F]
                [--slice NAME] [--instance I]

Logs in to one of the routers (default: the slice ``dsmt up`` runs, see
:mod:`dsmt.cli._slice`) and leases CHANNEL and its sub-channels (default:
the slice's base channel, ``/org/dsmt/ns/deployment/<slice>/``). Without ``--follow`` it
asks the slivers' bridges to re-send the current state under CHANNEL (a
resync), prints what arrives within ``--wait`` seconds (default 1) and
exits. With ``--follow`` it prints every event until Ctrl-C; with
``--count N`` (which implies ``--follow``) until N events. One line per event::

    2026-05-06T10:00:01.250 /org/dsmt/x/ attribute alice/1 {"field": "load", "value": "3"}

With ``--xml`` each event is printed as its PsEPR XML; with ``--json`` as
one JSON object per line::

    {"channel": "/org/dsmt/demo/...", "type": "http://...", "sender": "dsmt/s1",
     "id": "...", "seq": 7, "epoch": 1764072000000000, "ts": 1764072000.25,
     "retain": true, "payload": {...}}
"""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

import click

from dsmt.cli import _slice
from dsmt.errors import ConfigError, DsmtError


@click.command()
@click.argument("channel", required=False)
@click.option("--follow", "-f", is_flag=True, help="Stream events until Ctrl-C.")
@click.option("--wait", default=1.0, show_default=True,
              help="Without --follow: seconds to collect the current state.")
@click.option("--router", "routers", multiple=True,
              help="HOST:PORT (repeatable; default: the slice `dsmt up` runs).")
@click.option("--service", default=None, help="Service name to log in as (default: dsmt).")
@click.option("--instance", default=None, help="Instance name (login resource).")
@click.option("--password-file", default=None, type=click.Path(dir_okay=False))
@click.option("--slice", "slice_", default=None, help="Slice name (default: `dsmt up`'s).")
@click.option("--type", "type_", default=None, help="Only events of this payload namespace.")
@click.option("--xml", "as_xml", is_flag=True, help="Print each event as PsEPR XML.")
@click.option("--json", "as_json", is_flag=True, help="Print each event as a JSON line.")
@click.option("--count", type=int, default=None, help="Stop after this many events.")
@click.option("--connect-timeout", type=float, default=10.0, show_default=True)
def command(channel, follow, wait, routers, service, instance, password_file, slice_, type_,
            as_xml, as_json, count, connect_timeout) -> None:
    """Print a channel's events: its current state, or a live stream with --follow."""
    from dsmt import channels
    from dsmt.channels import Layout
    from gateways.bridge import resync_request
    from gateways.psepr import config, xml
    from gateways.psepr.client import Client

    if as_xml and as_json:
        raise DsmtError("--xml and --json exclude each other")
    if routers and password_file and (channel or slice_):
        try:
            password = Path(password_file).read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError) as exc:
            raise ConfigError(password_file, "-", f"cannot read a password: {exc}") from None
        addresses = [config.parse_address(r, config.CLIENT_PORT, "--router", "--router")
                     for r in routers]
        service = service or "dsmt"
    else:
        target = _slice.resolve(routers[0] if routers else None, service, password_file, slice_)
        addresses, service, password = [target.router], target.service, target.password
        slice_ = target.slice
    channel = channels.validate(channel or Layout(slice_).base)
    follow = follow or count is not None
    received: queue.Queue = queue.Queue()
    client = Client(addresses, service, password, instance=instance)
    client.start()
    try:
        if not client.wait_connected(connect_timeout):
            shown = ", ".join("%s:%d" % a for a in addresses)
            raise DsmtError(f"events: no router of {shown} answered within {connect_timeout}s")
        subscription = client.lease(channel, received.put, type=type_)
        deadline = time.monotonic() + connect_timeout
        shown = 0
        while subscription.state not in ("granted", "refused") \
                and time.monotonic() < deadline \
                and (count is None or shown < count):
            try:  # the lease state has no notification of its own; events may come already
                _show(received.get(timeout=0.02), as_xml, as_json, xml)
                shown += 1  # they count towards --count like any other
            except queue.Empty:
                pass
        if subscription.state == "refused":
            raise DsmtError(f"events: the router refused the lease on {channel}: "
                            f"{subscription.error}")
        if not follow:
            client.publish(resync_request(client, channel))
        end = None if follow else time.monotonic() + wait
        while count is None or shown < count:
            timeout = None if end is None else end - time.monotonic()
            if timeout is not None and timeout <= 0:
                break
            try:
                event = received.get(timeout=timeout)
            except queue.Empty:
                break
            _show(event, as_xml, as_json, xml)
            shown += 1
    finally:
        client.close()


def _show(event, as_xml: bool, as_json: bool, xml) -> None:
    if as_xml:
        click.echo(xml.event_to_bytes(event).decode())
    elif as_json:
        click.echo(json.dumps({"channel": event.channel, "type": event.type,
                               "sender": str(event.sender), "id": event.id, "seq": event.seq,
                               "epoch": event.epoch, "ts": event.ts, "retain": event.retain,
                               "payload": event.payload}, default=repr, ensure_ascii=False))
    else:
        click.echo(_line(event))


def _line(event) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(event.ts))
    millis = int((event.ts % 1) * 1000)
    kind = event.type.rstrip("/").rsplit("/", 1)[-1]
    try:
        payload = json.dumps(event.payload, default=repr, ensure_ascii=False)
    except ValueError:
        payload = repr(event.payload)
    return f"{stamp}.{millis:03d} {event.channel} {kind} {event.sender} {payload}"
