"""``dsmt keys``: manage the slice key that signs commands.

Usage::

    $ dsmt keys init slice.key            # 32 random bytes, hex, mode 0600
    wrote a new slice key to slice.key
    $ dsmt keys init --force slice.key    # replace an existing key

Every sliver of a slice and every operator who sends commands needs the same
key file (node.toml: ``key_file = "slice.key"``). ``init`` refuses to
overwrite an existing file without ``--force``, because replacing the key
locks out every sliver that still has the old one.
"""

from __future__ import annotations

import click

from dsmt import commands


@click.group()
def command() -> None:
    """Create and manage the slice key that signs commands."""


@command.command("init")
@click.option("--force", is_flag=True, help="Replace an existing key file.")
@click.argument("path", type=click.Path(dir_okay=False))
def init(path: str, force: bool) -> None:
    """Write a new random slice key to PATH (mode 0600)."""
    commands.write_key(path, force=force)
    click.echo(f"wrote a new slice key to {path}")
