"""Slice key files: write a new random key, read one back only if it is private.

The format (see :mod:`dsmt.commands`, which imports these names and whose
docstring is the contract of signed commands): 32 random bytes as 64 hex
digits and a newline, mode 0600. :func:`load_key` refuses a file that its
group or others may read, or that holds fewer than :data:`MIN_KEY_BYTES`
bytes. Every refusal is a :class:`KeyFileError` that names the file and
what is wrong. Stdlib only.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from dsmt.errors import DsmtError

KEY_BYTES = 32
MIN_KEY_BYTES = 16


class KeyFileError(DsmtError):
    """A slice key file cannot be written or read safely; names the file and what is wrong."""


def write_key(path: str | os.PathLike[str], *, force: bool = False) -> bytes:
    """Write a new random slice key to ``path`` (mode 0600); return it.

    Refuses (KeyFileError) to replace an existing file unless ``force``; a
    forced write replaces the file atomically, so a reader never sees half
    a key.
    """
    path = Path(path)
    key = secrets.token_bytes(KEY_BYTES)
    data = (key.hex() + "\n").encode()
    if path.exists() and not force:
        raise KeyFileError(f"{path}: exists; use --force to replace the slice key")
    target = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp") if force else path
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fchmod(fd, 0o600)  # the umask cannot widen it, but make it exact
        finally:
            os.close(fd)
        if force:
            os.replace(target, path)
    except FileExistsError:
        raise KeyFileError(f"{path}: exists; use --force to replace the slice key") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write the slice key: {exc.strerror}") from None
    return key


def load_key(path: str | os.PathLike[str]) -> bytes:
    """The slice key in ``path``; KeyFileError if unreadable, not private, or not a key."""
    path = Path(path)
    try:
        info = path.stat()
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot read the slice key: {exc}") from None
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise KeyFileError(f"{path}: readable by group or others (mode {mode:04o}); "
                           f"run: chmod 600 {path}")
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise KeyFileError(f"{path}: not a hex key (see `dsmt keys init`)") from None
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(f"{path}: key too short ({len(key)} bytes, need {MIN_KEY_BYTES})")
    return key
