"""Running a package's install step: a command in the version directory, bounded in time.

:func:`run_step` starts ``argv`` in its own session (so it leads a new
process group), with stdin from ``/dev/null`` and stdout and stderr appended
to a log file (never to a pipe: a grandchild holding a pipe open cannot hang
the agent). If it outlives ``timeout`` the whole group gets SIGTERM, then
SIGKILL after ``grace`` seconds. Whatever the outcome, group members left
behind are killed: an install step must not leave processes running.

Failure raises :class:`InstallError` with the exit code (``None`` after a
timeout), the tail of the output and the log's path.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from actors.deploy.errors import InstallError

TAIL_LINES = 20
_TAIL_BYTES = 8192


def run_step(
    argv: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    timeout: float | None,
    env: Mapping[str, str] | None = None,
    what: str = "install command",
    grace: float = 2.0,
) -> None:
    """Run ``argv`` to completion; raise InstallError on a non-zero exit or a timeout."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        start = out.tell()
        out.write(f"=== {what}: {shlex.join(argv)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(
                list(argv), cwd=cwd, env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise InstallError(what, 127, f"cannot start {argv[0]!r}: {exc.strerror}",
                               log) from None
        try:
            returncode = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop_group(proc, grace)
            raise InstallError(what, None, tail(log, start), log) from None
        finally:
            _kill_group(proc.pid)
    if returncode != 0:
        raise InstallError(what, returncode, tail(log, start), log)


def _stop_group(proc: subprocess.Popen, grace: float) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.wait()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def tail(log: Path, start: int = 0, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of ``log`` written after offset ``start``."""
    with open(log, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(start, size - _TAIL_BYTES))
        text = f.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])
