"""``dsmt events``: watch a PsEPR channel and print its events.

Usage::

    dsmt events --router HOST:PORT [--router ...] --service S --password-file F
                [--instance I] [--type NAMESPACE] [--xml] [--count N] CHANNEL

Logs in to one of the routers as service S (password: first line of F),
holds a lease on CHANNEL (and its sub-channels) and prints one line per
event until interrupted (or until N events with ``--count``)::

    2026-05-06T10:00:01.250 /org/dsmt/x/ attribute alice/1 {"field": "load", "value": "3"}

With ``--xml`` each event is printed as its PsEPR XML instead.
"""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

import click

from dsmt.errors import ConfigError, DsmtError


@click.command()
@click.argument("channel")
@click.option("--router", "routers", multiple=True, required=True, help="HOST:PORT (repeatable).")
@click.option("--service", required=True, help="Service name to log in as.")
@click.option("--instance", default=None, help="Instance name (login resource).")
@click.option("--password-file", required=True, type=click.Path(dir_okay=False))
@click.option("--type", "type_", default=None, help="Only events of this payload namespace.")
@click.option("--xml", "as_xml", is_flag=True, help="Print each event as PsEPR XML.")
@click.option("--count", type=int, default=None, help="Stop after this many events.")
@click.option("--connect-timeout", type=float, default=10.0, show_default=True)
def command(channel, routers, service, instance, password_file, type_, as_xml, count,
            connect_timeout) -> None:
    """Watch a PsEPR channel: print one line (or the XML) per event."""
    from dsmt import channels
    from gateways.psepr import config, xml
    from gateways.psepr.client import Client

    channels.validate(channel)
    try:
        password = Path(password_file).read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError) as exc:
        raise ConfigError(password_file, "-", f"cannot read a password: {exc}") from None
    addresses = [config.parse_address(r, config.CLIENT_PORT, "--router", "--router")
                 for r in routers]
    received: queue.Queue = queue.Queue()
    client = Client(addresses, service, password, instance=instance)
    client.start()
    try:
        if not client.wait_connected(connect_timeout):
            raise DsmtError(f"events: no router of {', '.join(routers)} answered "
                            f"within {connect_timeout}s")
        client.lease(channel, received.put, type=type_)
        shown = 0
        while count is None or shown < count:
            event = received.get()
            click.echo(xml.event_to_bytes(event).decode() if as_xml else _line(event))
            shown += 1
    finally:
        client.close()


def _line(event) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(event.ts))
    millis = int((event.ts % 1) * 1000)
    kind = event.type.rstrip("/").rsplit("/", 1)[-1]
    try:
        payload = json.dumps(event.payload, default=repr, ensure_ascii=False)
    except ValueError:
        payload = repr(event.payload)
    return f"{stamp}.{millis:03d} {event.channel} {kind} {event.sender} {payload}"
