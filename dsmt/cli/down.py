"""``dsmt down``: stop the slice ``dsmt up`` runs on this machine.

Usage::

    dsmt down [--timeout S]

Reads the pid of the ``dsmt up`` process from ``$DSMT_HOME/up.json`` and
sends it SIGTERM; ``dsmt up`` then stops every process of its slice and
removes that record. Waits until the process is gone (``--timeout``,
default 60 s) and prints ``stopped the slice in DIR``. Exits 2 with one line
when no slice is recorded, when the recorded process is gone (the stale
record is removed), or when it does not end in time.
"""

from __future__ import annotations

import json
import signal
import time

import click

from dsmt.cli import _slice
from dsmt.errors import DsmtError


@click.command()
@click.option("--timeout", default=60.0, show_default=True,
              help="Seconds to wait for the slice to stop.")
def command(timeout: float) -> None:
    """Stop the slice `dsmt up` runs (SIGTERM to it; it stops every process)."""
    import psutil

    path = _slice.pointer()
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise DsmtError(f"no slice started by `dsmt up` ({path} missing)") from None
    except (OSError, ValueError) as exc:
        raise DsmtError(f"{path}: unreadable: {exc}") from None
    pid = record.get("pid")
    if not isinstance(pid, int):
        raise DsmtError(f"{path}: no pid of `dsmt up` recorded (started by an older dsmt?)")
    try:
        process = psutil.Process(pid)
        if not _is_up(process):
            raise psutil.NoSuchProcess(pid)
        process.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        path.unlink(missing_ok=True)
        raise DsmtError(f"{path}: `dsmt up` (pid {pid}) is not running; removed the record") \
            from None
    if not _ended(process, timeout):
        raise DsmtError(f"`dsmt up` (pid {pid}) still running after {timeout}s")
    click.echo(f"stopped the slice in {record.get('dir')}")


def _ended(process, timeout: float) -> bool:
    """Wait until the process is gone, or a zombie its parent has not reaped yet."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
            process.wait(0.1)
            return True
        except psutil.NoSuchProcess:
            return True
        except psutil.TimeoutExpired:
            if time.monotonic() >= deadline:
                return False


def _is_up(process) -> bool:
    """The recorded pid is still a `dsmt up` (pids are reused)."""
    import psutil

    try:
        cmdline = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return "up" in cmdline and any("dsmt" in part for part in cmdline)
