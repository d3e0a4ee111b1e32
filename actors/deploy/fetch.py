"""Getting a package archive into ``packages/``: from ``file://`` or ``http(s)://``.

Contract of :func:`fetch`:

- ``sha256`` is mandatory for every source and checked for form *before* any
  I/O; the digest itself is compared by :func:`actors.deploy.verify.verify`,
  the next stage. A source without one is refused (:class:`FetchError`).
- The download goes to ``<dest>.part`` and is renamed to ``dest`` only when
  complete, so ``dest`` existing means "fully fetched".
- HTTP downloads resume: a ``.part`` left by a dropped connection or a
  restarted agent is continued with ``Range: bytes=N-``; a server that
  ignores the range (200) gets a fresh download.
- Transient failures (connection refused or reset, timeouts, a body cut
  short, HTTP 5xx/408/429) are retried up to ``limits.tries`` times in all,
  sleeping ``backoff_min * 2**k`` seconds (capped at ``backoff_max``) between
  tries through the injectable ``sleep``. Other HTTP errors fail at once.
- More than ``limits.max_bytes`` (announced or received) fails at once and
  removes the partial file.

It blocks the calling thread: an actor runs it in a worker, not in its loop.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from actors.deploy.errors import FetchError

Progress = Callable[[int, "int | None"], None]
_CHUNK = 64 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_RETRIED_STATUS = frozenset({408, 429, 500, 502, 503, 504})
SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


@dataclass(frozen=True)
class FetchLimits:
    """Bounds of one fetch: size cap, tries in all, backoff between tries, socket timeout."""

    max_bytes: int = 512 * 1024 * 1024
    tries: int = 5
    backoff_min: float = 0.5
    backoff_max: float = 10.0
    timeout: float = 30.0


class _Transient(Exception):
    """A failure worth another try."""


def check_sha256(url: str, sha256: str | None) -> str:
    """The digest in lower case; FetchError if it is missing or not 64 hex digits."""
    if not sha256:
        raise FetchError(url, "a sha256 is mandatory for every package source; none given")
    digest = sha256.strip().lower()
    if not _SHA256.match(digest):
        raise FetchError(url, f"sha256 must be 64 hex digits, got {sha256!r}")
    return digest


def archive_suffix(url: str) -> str:
    """The archive type of ``url`` from its path (``.tar.gz``, ``.tgz``, ``.tar``, ``.zip``)."""
    path = urllib.parse.urlsplit(url).path.lower()
    for suffix in SUFFIXES:
        if path.endswith(suffix):
            return suffix
    raise FetchError(url, f"not a package archive (expected one of {', '.join(SUFFIXES)})")


def fetch(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    limits: FetchLimits = FetchLimits(),
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
) -> Path:
    """Put the archive at ``url`` at ``dest`` and return ``dest``; raise FetchError."""
    check_sha256(url, sha256)
    if dest.exists():
        return dest
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    part = dest.with_name(dest.name + ".part")
    if scheme == "file":
        _copy_file(url, part, limits, progress)
    elif scheme in ("http", "https"):
        _download(url, part, limits, sleep, progress)
    else:
        raise FetchError(url, f"unsupported source scheme {scheme!r} (file, http, https)")
    os.replace(part, dest)
    return dest


def _copy_file(url: str, part: Path, limits: FetchLimits, progress: Progress | None) -> None:
    parsed = urllib.parse.urlsplit(url)
    if parsed.netloc not in ("", "localhost"):
        raise FetchError(url, f"file:// URLs must be local, got host {parsed.netloc!r}")
    source = Path(urllib.request.url2pathname(parsed.path))
    try:
        size = source.stat().st_size
        if size > limits.max_bytes:
            raise FetchError(url, f"{size} bytes is over the cap of {limits.max_bytes}")
        with open(source, "rb") as src, open(part, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise FetchError(url, exc.strerror or str(exc)) from None
    if progress:
        progress(size, size)


def _download(
    url: str, part: Path, limits: FetchLimits, sleep: Callable[[float], None],
    progress: Progress | None,
) -> None:
    delay = limits.backoff_min
    for attempt in range(1, limits.tries + 1):
        try:
            _download_once(url, part, limits, progress)
            return
        except _Transient as exc:
            if attempt == limits.tries:
                raise FetchError(url, f"{exc} (gave up after {attempt} tries)") from None
        sleep(delay)
        delay = min(delay * 2, limits.backoff_max)


def _download_once(url: str, part: Path, limits: FetchLimits, progress: Progress | None) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "dsmt-deploy", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=limits.timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:
            return  # the part is already whole; the verify stage judges it
        if exc.code in _RETRIED_STATUS:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise FetchError(url, f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _Transient(str(exc.reason)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Transient(str(exc) or type(exc).__name__) from None
    with response:
        if response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != have:
                part.unlink(missing_ok=True)
                raise _Transient(f"bad Content-Range {response.headers.get('Content-Range')!r}")
            mode = "ab"
        else:
            have, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        expected = have + int(length) if length and length.isdigit() else None
        if expected is not None and expected > limits.max_bytes:
            part.unlink(missing_ok=True)
            raise FetchError(url, f"{expected} bytes is over the cap of {limits.max_bytes}")
        _receive(url, response, part, mode, have, expected, limits, progress)


def _receive(
    url: str, response, part: Path, mode: str, have: int, expected: int | None,
    limits: FetchLimits, progress: Progress | None,
) -> None:
    with open(part, mode) as out:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, socket.timeout, http.client.HTTPException) as exc:
                raise _Transient(f"connection lost after {have} bytes: {exc}") from None
            if not chunk:
                break
            have += len(chunk)
            if have > limits.max_bytes:
                out.close()
                part.unlink(missing_ok=True)
                raise FetchError(url, f"more than the cap of {limits.max_bytes} bytes")
            out.write(chunk)
            if progress:
                progress(have, expected)
    if expected is not None and have < expected:
        raise _Transient(f"connection closed after {have} of {expected} bytes")
