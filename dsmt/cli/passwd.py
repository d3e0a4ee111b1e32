"""``dsmt passwd``: hash a password for a router's ``[accounts]`` table.

Usage::

    $ dsmt passwd < secret.txt
    scrypt$16384$8$1$<salt>$<key>

Reads one password from standard input (prompted, without echo, on a
terminal; the first line otherwise), prints its scrypt hash string
(``gateways.psepr.accounts``), which goes into an accounts file as
``"service-name" = "scrypt$..."``. An empty password is refused.
"""

from __future__ import annotations

import sys

import click

from dsmt.errors import DsmtError


@click.command()
def command() -> None:
    """Print the scrypt hash of a password read from stdin, for a router's accounts file."""
    from gateways.psepr import accounts

    if sys.stdin.isatty():
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise DsmtError("passwd: empty password")
    click.echo(accounts.hash_password(password))
