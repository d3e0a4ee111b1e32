"""Reading a process's logs from the node: the end of one (``dsmt logs``), and following one
across rotations (``dsmt logs --follow``).

The files are those of :mod:`.rotating`: the live ``<name>.<stream>.log`` that
the process appends to, and the backups ``.1`` (newest) … ``.N`` made by
copytruncate. Everything here reads; nothing writes or locks, so a reader
never slows the process or the rotator.

:func:`tail` returns the last lines: from the live file, and from ``.1``
before it when the live file was just rotated.

Following is polling with a :class:`Cursor` -- how far a follower has read:
a byte offset in the live file, and the *rotation* it was read in, the
identity (inode and mtime) of ``.1`` at that time. Copytruncate makes a new
``.1`` at every rotation (:func:`.rotating.copytruncate` writes it aside and
renames it into place, so a ``.1`` is whole and never changes), so the
identity tells whether the live file was rotated since:

- ``.1`` is the cursor's rotation: nothing was rotated; read on from the
  offset. A live file now shorter than the offset was truncated in place
  (``backups = 0``, which keeps no copy): read it from its start and say
  lines may be lost.
- ``.2`` is the cursor's rotation (or, with no ``.1`` at the cursor, no
  ``.2`` now): exactly one rotation; the rest of what the follower was
  reading is ``.1`` from the offset, then the live file from its start.
- otherwise it rotated more than once between two reads: what lay in
  between is gone from view (it is in older backups); read the live file
  from its start and say so (``lost``). With ``backups = 1`` two rotations
  look like one.

Each read returns whole lines only (a line still being written is left for
the next read, unless it alone exceeds the byte limit) and at most
``max_bytes`` of log, with ``more`` set when more is waiting. A follower
more than ``backlog`` bytes behind skips to the last ``max_bytes`` of the
live file and is told how many bytes it skipped: it shows the present
rather than falling further behind a log that grows faster than it reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from actors.process.rotating import LogSpec, backup

# A follower further behind than this skips ahead (see the module docstring).
BACKLOG = 1 << 20
_MAX_ROTATION = 64  # characters of a cursor's rotation on the wire


class Tail(NamedTuple):
    lines: list[str]
    truncated: bool  # earlier lines were left out
    cursor: Cursor  # where a follower reading on from these lines starts


@dataclass(frozen=True)
class Cursor:
    """How far a follower has read: ``offset`` in the live file of ``rotation``."""

    offset: int
    rotation: str | None

    def to_wire(self) -> dict[str, Any]:
        return {"offset": self.offset, "rotation": self.rotation}

    @classmethod
    def from_wire(cls, value: Any) -> Cursor:
        """A cursor from a command's arguments; ValueError naming what is wrong."""
        if not isinstance(value, dict) or set(value) != {"offset", "rotation"}:
            raise ValueError(f"cursor must be {{offset, rotation}}, got {value!r}")
        offset, rotation = value["offset"], value["rotation"]
        if type(offset) is not int or offset < 0:
            raise ValueError(f"cursor offset must be an int >= 0, got {offset!r}")
        if rotation is not None and (not isinstance(rotation, str)
                                     or len(rotation) > _MAX_ROTATION):
            raise ValueError(f"cursor rotation must be a short string or None, got {rotation!r}")
        return cls(offset, rotation)


@dataclass(frozen=True)
class Chunk:
    """What one follow read returns; ``cursor`` is where the next one starts."""

    lines: list[str]
    cursor: Cursor
    more: bool = False  # more is waiting: read again at once
    skipped: int = 0  # bytes passed over, the follower being over BACKLOG behind
    lost: bool = False  # rotated more than once (or truncated in place) since the last read


def identity(path: Path) -> str | None:
    """The identity of one backup file (None if there is none)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return f"{st.st_ino}.{st.st_mtime_ns}"


def tail(logs: LogSpec, stream: str, lines: int, max_bytes: int, *,
         whole: bool = False) -> Tail:
    """The last ``lines`` lines of ``stream``, from at most ``max_bytes`` at the end of its
    log; whether earlier lines were left out; and the cursor after them. Bytes that are
    not UTF-8 are replaced. ``whole``: leave out a last line still being written (a
    follower reads it whole later)."""
    path = logs.path(stream)
    rotation = identity(backup(path, 1))  # before the live file: a rotation in between is seen
    chunks: list[bytes] = []
    budget, cut, end = max_bytes, False, 0
    for source in (path, backup(path, 1)):  # .1 holds what came just before the live file
        try:
            with open(source, "rb") as f:
                start = max(0, f.seek(0, os.SEEK_END) - budget)
                f.seek(start)
                chunk = f.read(budget)
        except FileNotFoundError:
            continue
        if source == path:
            end = start + len(chunk)
            if whole and chunk and not chunk.endswith(b"\n"):
                # a line still being written waits for the follower, unless it alone
                # is over the budget (then it is shown cut, as when not following)
                kept = chunk.rindex(b"\n") + 1 if b"\n" in chunk else 0 if start == 0 \
                    else len(chunk)
                end -= len(chunk) - kept
                chunk = chunk[:kept]
        chunks.insert(0, chunk)
        budget -= len(chunk)
        cut = start > 0
        if cut or budget <= 0 or sum(c.count(b"\n") for c in chunks) > lines:
            break
    found = b"".join(chunks).decode("utf-8", "replace").splitlines()
    if cut and found:
        found = found[1:]  # the end of a line whose start was not read
    return Tail(found[-lines:], cut or len(found) > lines, Cursor(end, rotation))


def since(logs: LogSpec, stream: str, cursor: Cursor, max_bytes: int,
          backlog: int = BACKLOG) -> Chunk:
    """The whole lines written to ``stream`` after ``cursor`` (see the module docstring)."""
    path = logs.path(stream)
    now = identity(backup(path, 1))
    lost = False
    if cursor.rotation == now:
        if _size(path) >= cursor.offset:
            sources = [(path, cursor.offset)]
        else:  # truncated in place: no copy to read the rest from
            sources, lost = [(path, 0)], True
    elif (cursor.rotation == identity(backup(path, 2))
          or ((cursor.rotation is None or logs.backups == 1) and not backup(path, 2).exists())) \
            and _size(backup(path, 1)) >= cursor.offset:
        sources = [(backup(path, 1), cursor.offset), (path, 0)]  # one rotation
    else:
        sources, lost = [(path, 0)], True
    pending = sum(max(0, _size(p) - start) for p, start in sources)
    skipped = 0
    if pending > backlog:
        start = max(0, _size(path) - max_bytes)
        sources, skipped = [(path, start)], pending - (_size(path) - start)
    return _read(sources, path, now, cursor, max_bytes, skipped, lost)


def _read(sources: list[tuple[Path, int]], live: Path, now: str | None, cursor: Cursor,
          max_bytes: int, skipped: int, lost: bool) -> Chunk:
    data, budget, more = b"", max_bytes, False
    next_cursor = cursor
    for n, (source, start) in enumerate(sources):
        try:
            with open(source, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(start)
                piece = f.read(min(budget, max(0, size - start)))
        except FileNotFoundError:
            piece, size = b"", 0
        full = start + len(piece) < size  # stopped by the budget, not by the end
        if skipped and n == 0 and start > 0 and b"\n" in piece:  # skipped into a line
            drop = piece.index(b"\n") + 1
            piece, start, skipped = piece[drop:], start + drop, skipped + drop
        final = source != live
        newline = b""
        if piece and not piece.endswith(b"\n"):
            if final and start + len(piece) == size:
                newline = b"\n"  # a backup no longer grows: its last line ends with it
            elif b"\n" in piece:
                piece = piece[:piece.rindex(b"\n") + 1]
            elif not (full and len(piece) >= max_bytes):  # one line over the limit: cut
                piece = b""  # still being written, or read whole next time
        data += piece + newline
        budget -= len(piece)
        offset = start + len(piece)
        next_cursor = Cursor(offset, cursor.rotation if final else now)
        if offset < size and full:
            more = True
            break
        if final:
            next_cursor = Cursor(0, now)  # on to the live file
    lines = data.decode("utf-8", "replace").splitlines()
    return Chunk(lines, next_cursor, more, skipped, lost)


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
