"""Starts a service's command in its own session, output straight into its log files.

:func:`spawn` runs ``Command.argv`` with ``Command.env`` and ``Command.cwd``
in a new session (``setsid``: its own process group, with pgid = pid, and no
controlling terminal), so the whole tree it forks can be signalled at once,
and so that it survives the node: a ``dsmt node`` killed with -9 leaves its
services running, and the next one re-adopts them (:mod:`.adopt`).

Output, and the choice made for it: stdin is ``/dev/null``; stdout and
stderr are ``O_APPEND`` descriptors on ``<name>.out.log`` /
``<name>.err.log`` (see :class:`~.rotating.LogSpec`), or ``/dev/null``
without a LogSpec. Nothing of the node sits between a service and its logs.
Pipes to a pump thread in the node would die with the node, and the
service's next write would get SIGPIPE/EPIPE and likely kill it; a FIFO in
the run directory would have the same problem (or block the service once
its buffer is full) whenever no node holds it open. The price is rotation:
the writer's descriptor cannot be moved to a new file, so the node rotates
by size with copytruncate on a timer (:class:`~.rotating.LogRotator`),
which bounds the files softly (one check interval of output over the
limit) and may lose the bytes written during the truncation itself. The
same rotation applies to spawned and adopted processes: :func:`spawn` and
:func:`~.adopt.adopt` register the LogSpec with the rotator for as long as
the process lives.

The process is watched from the moment it exists: the returned handle's
``exited`` future resolves as soon as it ends, even if that is before
:func:`spawn` returns. Raises ``OSError`` (``FileNotFoundError``,
``PermissionError`` …) when the command cannot be started; nothing is left
behind then.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import psutil

from actors.process.handle import ProcessHandle
from actors.process.rotating import STREAMS, LogRotator, LogSpec, default_rotator
from actors.process.watcher import ExitWatcher, default_watcher


@dataclass(frozen=True)
class Command:
    """What to run: argv, extra environment, working directory, and limits.

    ``env`` is added to the agent's own environment, unless
    ``inherit_env`` is False, in which case it is the whole environment.
    ``preexec`` runs in the child between fork and exec (the container's
    :meth:`actors.container.limits.ProcessLimits.preexec`: rlimits and the
    instance's cgroup); if it raises, nothing runs and :func:`spawn` raises
    ``subprocess.SubprocessError``. (CPython starts the child with
    ``vfork`` without it, with a plain ``fork`` of the node with it.)
    """

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    inherit_env: bool = True
    preexec: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))
        if not self.argv:
            raise ValueError("a command needs at least a program")

    def environment(self) -> dict[str, str]:
        base = dict(os.environ) if self.inherit_env else {}
        base.update(self.env)
        return base


def spawn(
    command: Command | Sequence[str],
    logs: LogSpec | None = None,
    *,
    watcher: ExitWatcher | None = None,
    rotator: LogRotator | None = None,
) -> ProcessHandle:
    """Start ``command`` (see the module docstring); returns its watched handle."""
    if not isinstance(command, Command):
        command = Command(tuple(command))
    watcher = watcher or default_watcher()
    files: list[int] = []
    try:
        if logs is not None:
            for stream in STREAMS:
                files.append(logs.open(stream))
        out, err = files if files else (subprocess.DEVNULL, subprocess.DEVNULL)
        popen = subprocess.Popen(
            command.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=command.cwd,
            env=command.environment(),
            start_new_session=True,
            preexec_fn=command.preexec,
        )
    finally:
        for fd in files:
            os.close(fd)
    started = time.monotonic()
    # The child cannot be reaped before watch() below, so it is readable even if already dead.
    create_time = psutil.Process(popen.pid).create_time()
    handle = ProcessHandle(
        pid=popen.pid,
        pgid=popen.pid,
        create_time=create_time,
        started=started,
        argv=command.argv,
        popen=popen,
    )
    if logs is not None:
        rotate_while_alive(handle, logs, rotator or default_rotator())
    watcher.watch(handle)
    return handle


def rotate_while_alive(handle: ProcessHandle, logs: LogSpec, rotator: LogRotator) -> None:
    """Have ``rotator`` rotate ``logs`` until ``handle``'s process exits."""
    rotator.watch(logs)
    handle.exited.add_done_callback(lambda _: rotator.unwatch(logs))
