"""The ``dsmt`` command line: one command per module, assembled here.

This package is the composition root (DESIGN.md §1): it alone in ``dsmt``
may import ``gateways`` and ``actors``. Each command module defines one
click command (or group) whose docstring is its spec; :data:`COMMANDS`
lists them. A library never configures logging; :func:`main` does.

User errors (:class:`dsmt.errors.DsmtError`) exit non-zero with one line
naming what is wrong; tracebacks appear only with ``--debug``.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from dsmt.errors import DsmtError

# command name -> module under dsmt.cli defining a click command named `command`
COMMANDS = {
    "deploy": "deploy",
    "deselect": "deselect",
    "down": "down",
    "events": "events",
    "inspect": "inspect",
    "keys": "keys",
    "logs": "logs",
    "node": "node",
    "passwd": "passwd",
    "restart": "restart",
    "router": "router",
    "scale": "scale",
    "select": "select",
    "status": "status",
    "stop": "stop",
    "top": "top",
    "tree": "tree",
    "undeploy": "undeploy",
    "up": "up",
}


class _Group(click.Group):
    """Loads each command's module on first use, so `dsmt --help` stays fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = COMMANDS.get(name)
        if module is None:
            return None
        return importlib.import_module(f"dsmt.cli.{module}").command


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int) -> None:
    """DSMT: install, monitor and control a distributed application."""
    ctx.obj = {"debug": debug}
    level = logging.DEBUG if debug or verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `dsmt` console script."""
    args = sys.argv[1:] if argv is None else argv
    try:
        cli.main(args=args, prog_name="dsmt", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DsmtError as exc:
        if "--debug" in args:
            raise
        click.echo(f"dsmt: error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
