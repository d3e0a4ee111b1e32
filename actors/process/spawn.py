"""Starts a service's command in its own process group, output to rotated logs.

:func:`spawn` runs ``Command.argv`` with ``Command.env`` and ``Command.cwd``
in a new session (``setsid``: its own process group, with pgid = pid, and no
controlling terminal), so the whole tree it forks can be signalled at once.
stdin is ``/dev/null``; stdout and stderr go through pipes to a
:class:`~.pump.LogPump` that writes ``<name>.out.log`` / ``<name>.err.log``
rotated by size (see :class:`~.rotating.LogSpec`), or to ``/dev/null``
without a LogSpec.

The process is watched from the moment it exists: the returned handle's
``exited`` future resolves as soon as it ends, even if that is before
:func:`spawn` returns. Raises ``OSError`` (``FileNotFoundError``,
``PermissionError`` …) when the command cannot be started; nothing is left
behind then.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import psutil

from actors.process.handle import ProcessHandle
from actors.process.pump import LogPump
from actors.process.rotating import LogSpec, RotatingFile
from actors.process.watcher import ExitWatcher, default_watcher


@dataclass(frozen=True)
class Command:
    """What to run: argv, extra environment, working directory.

    ``env`` is added to the agent's own environment, unless
    ``inherit_env`` is False, in which case it is the whole environment.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    inherit_env: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))
        if not self.argv:
            raise ValueError("a command needs at least a program")

    def environment(self) -> dict[str, str]:
        base = dict(os.environ) if self.inherit_env else {}
        base.update(self.env)
        return base


_pump: LogPump | None = None
_pump_lock = threading.Lock()


def default_pump() -> LogPump:
    """The process-wide log pump (one thread for the whole node)."""
    global _pump
    with _pump_lock:
        if _pump is None:
            _pump = LogPump()
        return _pump


def spawn(
    command: Command | Sequence[str],
    logs: LogSpec | None = None,
    *,
    watcher: ExitWatcher | None = None,
    pump: LogPump | None = None,
) -> ProcessHandle:
    """Start ``command`` (see the module docstring); returns its watched handle."""
    if not isinstance(command, Command):
        command = Command(tuple(command))
    watcher = watcher or default_watcher()
    sinks: list[tuple[int, RotatingFile]] = []
    child_ends: list[int] = []
    try:
        if logs is not None:
            for stream in ("out", "err"):
                sink = RotatingFile(logs.path(stream), logs.max_bytes, logs.backups)
                r, w = os.pipe2(os.O_CLOEXEC)
                sinks.append((r, sink))
                child_ends.append(w)
        out, err = child_ends if child_ends else (subprocess.DEVNULL, subprocess.DEVNULL)
        popen = subprocess.Popen(
            command.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=command.cwd,
            env=command.environment(),
            start_new_session=True,
        )
    except BaseException:
        for r, sink in sinks:
            os.close(r)
            sink.close()
        raise
    finally:
        for w in child_ends:
            os.close(w)
    started = time.monotonic()
    # The child cannot be reaped before watch() below, so it is readable even if already dead.
    create_time = psutil.Process(popen.pid).create_time()
    pump = pump or default_pump()
    handle = ProcessHandle(
        pid=popen.pid,
        pgid=popen.pid,
        create_time=create_time,
        started=started,
        argv=command.argv,
        popen=popen,
        logs=tuple(pump.attach(r, sink) for r, sink in sinks),
    )
    watcher.watch(handle)
    return handle
