"""Copies the output pipes of every process into their rotating log files.

One :class:`LogPump` (one thread, see :mod:`._ioloop`) serves all the
processes of a node. :meth:`LogPump.attach` hands it the read end of a pipe
and the :class:`~.rotating.RotatingFile` it feeds; the pump reads whatever is
available (up to 64 KiB at a time) and writes it out, and when the pipe
reaches end of file (every writer — the process and any child holding it —
has gone) it closes both and resolves the future :meth:`attach` returned.

A write error (disk full, permission) closes that stream only and is logged;
the process keeps running with its output going nowhere, since a process
must not die because its log cannot be written. The pipe is then drained
and discarded so the process never blocks on a full pipe.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future

from actors.process._ioloop import IoLoop
from actors.process.rotating import RotatingFile

log = logging.getLogger(__name__)

_CHUNK = 65536


class LogPump:
    """Pumps pipes into rotating files on one thread, started on first use."""

    def __init__(self, name: str = "dsmt-logpump") -> None:
        self._loop = IoLoop(name)

    def attach(self, fd: int, sink: RotatingFile) -> Future[int]:
        """Pump ``fd`` (now owned by the pump) into ``sink``; the future gives the bytes copied."""
        os.set_blocking(fd, False)
        done: Future[int] = Future()
        copied = 0
        broken = False

        def readable(fd: int) -> None:
            nonlocal copied, broken
            try:
                data = os.read(fd, _CHUNK)
            except BlockingIOError:
                return
            if not data:
                self._loop.remove(fd)
                os.close(fd)
                sink.close()
                done.set_result(copied)
                return
            if broken:
                return
            try:
                sink.write(data)
                copied += len(data)
            except OSError:
                log.exception("writing %s failed; discarding this stream from now on", sink.path)
                broken = True
                sink.close()

        self._loop.add(fd, readable)
        return done

    def close(self) -> None:
        self._loop.close()
