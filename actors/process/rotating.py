"""A log file that rotates by size: ``out.log``, ``out.log.1`` … ``out.log.N``.

:class:`RotatingFile` is what a process's stdout or stderr is written to.
When a write would take the file past ``max_bytes``, the file is renamed to
``.1`` (``.1`` to ``.2`` and so on; the oldest beyond ``backups`` is
deleted) and a new one is started, so at most ``(backups + 1) * max_bytes``
bytes are kept per stream. ``backups=0`` truncates in place. A chunk is split
at the size limit, never at a line, since a process may write binary output.
``max_bytes=None`` never rotates.

Not thread-safe: it is owned by the log pump's thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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


class RotatingFile:
    """Appends bytes to ``path``, rotating by size (see the module docstring)."""

    def __init__(self, path: Path, max_bytes: int | None, backups: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.max_bytes is None:
                room = len(view)
            else:
                room = self.max_bytes - self._size
                if room <= 0:
                    self.rotate()
                    room = self.max_bytes
            chunk = view[:room]
            written = os.write(self._fd, chunk)
            self._size += written
            view = view[written:]

    def rotate(self) -> None:
        """Start a new file now, shifting the backups."""
        os.close(self._fd)
        if self.backups == 0:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC
        else:
            for n in range(self.backups - 1, 0, -1):
                older = self._backup(n)
                if older.exists():
                    os.replace(older, self._backup(n + 1))
            os.replace(self.path, self._backup(1))
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o640)
        self._size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _backup(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")
