"""How the operator commands find a slice: connection options, defaulting to the one `dsmt up` runs.

``dsmt up`` records its router and credentials in ``up.json`` in its folder
and points ``$DSMT_HOME/up.json`` (default ``~/.dsmt``) at it, so every
command without options talks to the slice ``dsmt up`` started on this
machine. ``--router``, ``--service``, ``--password-file`` and ``--slice``
name another one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click

from dsmt.errors import DsmtError


def home() -> Path:
    return Path(os.environ.get("DSMT_HOME", "~/.dsmt")).expanduser()


def pointer() -> Path:
    return home() / "up.json"


@dataclass(frozen=True)
class Target:
    router: tuple[str, int]
    service: str
    password: str
    slice: str


def options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The connection options every slice command takes."""
    fn = click.option("--slice", "slice_", help="Slice name (default: the one `dsmt up` runs).")(fn)
    fn = click.option("--password-file", type=click.Path(dir_okay=False),
                      help="File whose first line is the PsEPR password.")(fn)
    fn = click.option("--service", help="PsEPR account (default: dsmt).")(fn)
    fn = click.option("--router", help="HOST:PORT of a PsEPR router.")(fn)
    return fn


def resolve(router: str | None, service: str | None, password_file: str | None,
            slice_: str | None) -> Target:
    """The slice to talk to: the options, completed from `dsmt up`'s record."""
    recorded: dict[str, Any] = {}
    if router is None or password_file is None or slice_ is None:
        path = pointer()
        try:
            recorded = json.loads(path.read_text())
        except FileNotFoundError:
            raise DsmtError(f"no slice given and none started by `dsmt up` ({path} missing); "
                            "use --router, --password-file and --slice") from None
        except (OSError, ValueError) as exc:
            raise DsmtError(f"{path}: unreadable: {exc}") from None
    address = router or recorded.get("router", "")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise DsmtError(f"--router: expected HOST:PORT, got {address!r}")
    secret = Path(password_file or recorded.get("password_file", ""))
    try:
        password = secret.read_text().splitlines()[0]
    except (OSError, IndexError) as exc:
        raise DsmtError(f"{secret}: cannot read a password: {exc}") from None
    return Target((host, int(port)), service or recorded.get("service", "dsmt"), password,
                  slice_ or recorded.get("slice", ""))
