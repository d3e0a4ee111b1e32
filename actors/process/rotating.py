"""Log files of a process that outlive the node: ``out.log``, ``out.log.1`` … ``out.log.N``.

A service's stdout and stderr are the files themselves (see :mod:`.spawn`):
the process writes to them through ``O_APPEND`` descriptors, so its output
does not depend on the node being alive. That rules out rotating by
renaming (the process would go on writing into the renamed file) and
rotating inside the writer. Rotation is therefore *copytruncate*, as
logrotate does it, by the node:

- :func:`copytruncate` shifts ``.1`` → ``.2`` … (the oldest beyond
  ``backups`` is deleted), copies the live file aside and renames the copy
  to ``.1`` (so every rotation makes a new, whole ``.1``: how a follower
  tells that a rotation happened, see :mod:`.logread`), and truncates the
  live file to zero. The process's next ``O_APPEND`` write lands at the new
  end. Bytes written between the end of the copy and the truncation are
  lost; the copy reads until end of file first, so that window is one
  ``rename`` and one ``ftruncate`` call wide. ``backups=0`` truncates in
  place.
- :class:`LogRotator` checks every watched :class:`LogSpec` every
  ``interval`` seconds on one daemon thread (started on first use) and
  rotates a file once it has reached ``max_bytes``. The limit is therefore
  soft: a file may grow past it by what the process writes in one
  interval, and not at all while no node runs (nobody rotates then).
  ``max_bytes=None`` never rotates. :meth:`LogRotator.check` rotates at once
  (tests call it instead of waiting for the timer).

:mod:`.logread` reads them for ``dsmt logs``.

Threads: :meth:`LogRotator.watch`, :meth:`~LogRotator.unwatch` and
:meth:`~LogRotator.check` may be called from any thread. The rotator's
thread is a boundary: a rotation that fails (disk full, permissions) is
logged with its traceback and tried again at the next check.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

STREAMS = ("out", "err")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LogSpec:
    """Where a process's output goes: ``<directory>/<name>.out.log`` and ``.err.log``."""

    directory: Path
    name: str
    max_bytes: int | None = 10 * 1024 * 1024
    backups: int = 5

    def __post_init__(self) -> None:
        if self.max_bytes is not None and self.max_bytes <= 0:
            raise ValueError("max_bytes must be > 0 or None")
        if self.backups < 0:
            raise ValueError("backups must be >= 0")

    def path(self, stream: str) -> Path:
        """The live file of ``stream`` ("out" or "err")."""
        return Path(self.directory) / f"{self.name}.{stream}.log"

    def open(self, stream: str) -> int:
        """A new ``O_APPEND`` write descriptor on the live file of ``stream`` (created 0640)."""
        path = self.path(stream)
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)


def backup(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def copytruncate(path: Path, backups: int) -> int:
    """Rotate ``path`` in place (see the module docstring); returns the bytes moved to ``.1``."""
    path = Path(path)
    if backups == 0:
        size = path.stat().st_size
        os.truncate(path, 0)
        return size
    for n in range(backups - 1, 0, -1):
        if backup(path, n).exists():
            os.replace(backup(path, n), backup(path, n + 1))
    copied = 0
    aside = path.with_name(f"{path.name}.rotating")
    with open(path, "rb") as live, open(aside, "wb") as first:
        while chunk := live.read(_CHUNK):
            first.write(chunk)
            copied += len(chunk)
        first.flush()
        os.replace(aside, backup(path, 1))
        os.truncate(path, 0)
    return copied


def rotate_if_full(logs: LogSpec) -> list[Path]:
    """Rotate each stream of ``logs`` that has reached ``max_bytes``; the paths rotated."""
    if logs.max_bytes is None:
        return []
    rotated = []
    for stream in STREAMS:
        path = logs.path(stream)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue
        if size >= logs.max_bytes:
            copytruncate(path, logs.backups)
            rotated.append(path)
    return rotated


class LogRotator:
    """Rotates the watched logs by size every ``interval`` seconds (see the module docstring)."""

    def __init__(self, interval: float = 5.0, name: str = "dsmt-logrotate") -> None:
        self.interval = interval
        self._name = name
        self._lock = threading.Lock()
        self._watched: Counter[LogSpec] = Counter()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def watch(self, logs: LogSpec) -> None:
        """Rotate ``logs`` from now on (counted: one :meth:`unwatch` per ``watch``)."""
        with self._lock:
            self._watched[logs] += 1
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def unwatch(self, logs: LogSpec) -> None:
        with self._lock:
            self._watched[logs] -= 1
            if self._watched[logs] <= 0:
                del self._watched[logs]

    def check(self) -> list[Path]:
        """Rotate every watched file that is full, now; the paths rotated."""
        with self._lock:
            watched = list(self._watched)
        rotated = []
        for logs in watched:
            try:
                rotated += rotate_if_full(logs)
            except OSError:
                log.exception("rotating the logs of %s in %s failed", logs.name, logs.directory)
        return rotated

    def close(self) -> None:
        self._closed.set()

    def _run(self) -> None:
        while not self._closed.wait(self.interval):
            self.check()


_default: LogRotator | None = None
_default_lock = threading.Lock()


def default_rotator() -> LogRotator:
    """The process-wide rotator (one thread for the whole node)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = LogRotator()
        return _default
