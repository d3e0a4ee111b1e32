"""Checking a fetched archive against the sha256 the plan promised."""

from __future__ import annotations

import hashlib
from pathlib import Path

from actors.deploy.errors import ChecksumError

_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    """The hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, sha256: str) -> None:
    """Return if ``path`` has digest ``sha256``; otherwise remove it and raise ChecksumError.

    Removing the file means the next attempt fetches it again instead of
    trusting a corrupt or forged archive.
    """
    expected = sha256.strip().lower()
    actual = sha256_file(path)
    if actual != expected:
        path.unlink(missing_ok=True)
        raise ChecksumError(path, expected, actual)
