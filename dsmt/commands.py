"""Signed commands: the canonical body, HMAC-SHA256 signatures, verification, key files.

A command (DESIGN.md §5 "Commands") is a :data:`dsmt.event.COMMAND` event
whose payload is a *signed command*::

    {"body": "<canonical body, a JSON text>", "sig": "<hex HMAC-SHA256>"}

The **body** is a JSON object with exactly these keys:

==========  ===============================================================
key         value
==========  ===============================================================
slice       the slice name (a command for another slice is rejected)
target      the sliver name, or ``"*"`` for every sliver of the slice
command     ``restart``, ``stop``, ``inspect``, ``deselect``, ``deploy``, ...
args        an object (JSON map) of the command's arguments
ts          UNIX seconds (a number) when the command was made
nonce       32 lowercase hex digits, fresh per command
request     the request id: one channel element; the reply goes to
            ``layout.reply(request)``
==========  ===============================================================

The **canonical encoding** of a body is ``json.dumps(body, sort_keys=True,
separators=(",", ":"), ensure_ascii=False, allow_nan=False)`` encoded as
UTF-8: sorted keys at every level, no whitespace, no NaN or infinities.
The signature is ``hmac.new(key, canonical, sha256).hexdigest()``. The body
travels as that very text (a string in the payload), so no re-encoding on
the way (msgpack, PsEPR XML) can change the signed bytes; the verifier
checks the HMAC over the string it received *before* it parses it.

Verification (:func:`verify`) checks, in this order, and raises
:class:`CommandRejected` with the first reason that applies:

=============  ==========================================================
reason         when
=============  ==========================================================
no-key         the verifier has no slice key (every command is refused)
unsigned       the payload has no ``sig`` (or no ``body``)
forged         the signature is not the HMAC of the body under the key
malformed      the signed body is not a body as specified above
wrong-slice    the body names another slice
stale          ``ts`` is more than ``max_age`` seconds in the past or future
replayed       the nonce was already accepted within the window
overloaded     the replay cache is full (``capacity`` live nonces)
=============  ==========================================================

The :class:`ReplayCache` keeps each accepted nonce until its command would
be stale anyway (``ts + max_age``), so it holds at most the nonces of one
window and is bounded by ``capacity``; when full it refuses commands rather
than forgetting a nonce that could then be replayed. Given a ``path`` (the
sliver's state database, SQLite), it also writes every accepted nonce there
(table ``replay_nonces``, committed before the command runs) and reads the
unexpired ones back when a new cache opens it, so a command captured before
a node restart cannot be replayed after it. If the database cannot be used,
the error is logged and kept in :attr:`ReplayCache.persist_error`, and the
cache goes on in memory (commands keep being verified; only the restart
protection is lost, and ``inspect()`` of the commander says so).

Key files hold 32 random bytes as 64 hex digits and a newline, mode 0600;
:func:`load_key` refuses a file that its group or others may read (both
key-file functions live in :mod:`dsmt._keyfile` and are imported from here).

Stdlib only. A :class:`ReplayCache` is thread-safe, so it can outlive the
actor that verifies with it (a restarted verifier keeps its predecessor's
nonces); the functions keep no state.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import logging
import math
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from dsmt import channels
from dsmt._keyfile import KEY_BYTES, MIN_KEY_BYTES, KeyFileError, load_key, write_key
from dsmt.errors import ChannelError, DsmtError

__all__ = [
    "ALL", "FIELDS", "FORGED", "KEY_BYTES", "MALFORMED", "MAX_AGE", "MIN_KEY_BYTES", "NONCE_HEX",
    "NO_KEY", "OVERLOADED", "REASONS", "REPLAYED", "REPLAY_CAPACITY", "STALE", "UNSIGNED",
    "WRONG_SLICE", "Body", "CommandRejected", "KeyFileError", "ReplayCache", "canonical",
    "load_key", "new_body", "parse", "seal", "sign", "verify", "write_key",
]

log = logging.getLogger(__name__)

MAX_AGE = 30.0
NONCE_HEX = 32
REPLAY_CAPACITY = 100_000
ALL = "*"

NO_KEY = "no-key"
UNSIGNED = "unsigned"
FORGED = "forged"
MALFORMED = "malformed"
WRONG_SLICE = "wrong-slice"
STALE = "stale"
REPLAYED = "replayed"
OVERLOADED = "overloaded"
REASONS = (NO_KEY, UNSIGNED, FORGED, MALFORMED, WRONG_SLICE, STALE, REPLAYED, OVERLOADED)

FIELDS = frozenset({"slice", "target", "command", "args", "ts", "nonce", "request"})


class CommandRejected(DsmtError):
    """A command failed verification; ``reason`` is one of :data:`REASONS`.

    ``request`` is the request id read from the (possibly unverified) body
    when it is a valid channel element, so the rejection can be published
    on that request's reply channel; None otherwise.
    """

    def __init__(self, reason: str, detail: str = "", request: str | None = None) -> None:
        super().__init__(f"command rejected: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.detail = detail
        self.request = request


@dataclass(frozen=True, slots=True)
class Body:
    """A verified (or to-be-signed) command body; see the module docstring."""

    slice: str
    target: str
    command: str
    args: Mapping[str, Any]
    ts: float
    nonce: str
    request: str

    def to_dict(self) -> dict[str, Any]:
        return {"slice": self.slice, "target": self.target, "command": self.command,
                "args": dict(self.args), "ts": self.ts, "nonce": self.nonce,
                "request": self.request}


def new_body(slice: str, target: str, command: str, args: Mapping[str, Any] | None = None,
             *, now: float, request: str | None = None) -> Body:
    """A fresh body with a random nonce (and request id, unless given)."""
    return Body(slice, target, command, dict(args or {}), float(now),
                secrets.token_hex(NONCE_HEX // 2), request or secrets.token_hex(8))


def canonical(body: Body | Mapping[str, Any]) -> bytes:
    """The canonical encoding of ``body`` (the bytes that are signed)."""
    data = body.to_dict() if isinstance(body, Body) else dict(body)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sign(key: bytes, body: Body | Mapping[str, Any]) -> str:
    """The hex HMAC-SHA256 of the canonical encoding of ``body`` under ``key``."""
    return _mac(key, canonical(body))


def seal(key: bytes, body: Body | Mapping[str, Any]) -> dict[str, str]:
    """The signed-command payload of ``body``: ``{"body": text, "sig": hex}``."""
    raw = canonical(body)
    return {"body": raw.decode("utf-8"), "sig": _mac(key, raw)}


def parse(text: str | bytes) -> Body:
    """The :class:`Body` in a canonical JSON text; CommandRejected(malformed) if it is not one."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError) as exc:
        raise CommandRejected(MALFORMED, f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CommandRejected(MALFORMED, "body is not an object")
    request = _request_of(data)
    if set(data) != FIELDS:
        missing, extra = sorted(FIELDS - set(data)), sorted(set(data) - FIELDS)
        raise CommandRejected(MALFORMED, f"fields: missing {missing}, unexpected {extra}",
                              request)
    for name in ("slice", "target", "command", "nonce", "request"):
        if not isinstance(data[name], str) or not data[name]:
            raise CommandRejected(MALFORMED, f"{name} must be a non-empty string", request)
    if not isinstance(data["args"], dict):
        raise CommandRejected(MALFORMED, "args must be an object", request)
    ts = data["ts"]
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        raise CommandRejected(MALFORMED, "ts must be a finite number", request)
    if len(data["nonce"]) < NONCE_HEX // 2:
        raise CommandRejected(MALFORMED, "nonce too short", request)
    if request is None:
        raise CommandRejected(MALFORMED, "request must be one channel element")
    return Body(data["slice"], data["target"], data["command"], data["args"], float(ts),
                data["nonce"], request)


class ReplayCache:
    """The nonces accepted within the last window, each forgotten once its command is stale.

    ``path``: an SQLite database that keeps them across restarts (see the
    module docstring); opened at the first use, from any thread.
    """

    def __init__(self, max_age: float = MAX_AGE, capacity: int = REPLAY_CAPACITY,
                 path: str | Path | None = None) -> None:
        self.max_age = max_age
        self.capacity = capacity
        self.path = None if path is None else Path(path)
        self.persist_error: str | None = None
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._opened = False

    def __len__(self) -> int:
        with self._lock:
            self._open()
            return len(self._expiry)

    def __contains__(self, nonce: str) -> bool:
        with self._lock:
            self._open()
            return nonce in self._expiry

    @property
    def persisted(self) -> bool:
        """True when accepted nonces are written to the database."""
        return self._db is not None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
            self._db = None

    def _open(self) -> None:
        if self._opened or self.path is None:
            return
        self._opened = True
        try:
            db = sqlite3.connect(str(self.path), timeout=10.0, check_same_thread=False,
                                 isolation_level=None)
            db.execute("CREATE TABLE IF NOT EXISTS replay_nonces "
                       "(nonce TEXT PRIMARY KEY, expiry REAL NOT NULL)")
            now = time.time()
            db.execute("DELETE FROM replay_nonces WHERE expiry < ?", (now,))
            rows = db.execute("SELECT nonce, expiry FROM replay_nonces").fetchall()
        except sqlite3.Error as exc:
            self._failed(exc)
            return
        self._db = db
        for nonce, expiry in rows:
            if self._expiry.get(nonce, float("-inf")) < expiry:
                self._expiry[nonce] = expiry
                heapq.heappush(self._heap, (expiry, nonce))

    def _failed(self, exc: BaseException) -> None:
        self.persist_error = f"{self.path}: {exc}"
        log.error("replay cache: cannot keep nonces in %s (they are kept in memory only): %s",
                  self.path, exc)
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
        self._db = None

    def evict(self, now: float) -> None:
        """Forget every nonce whose command is stale at ``now``."""
        with self._lock:
            self._evict(now)

    def _evict(self, now: float) -> None:
        self._open()
        heap = self._heap
        evicted = False
        while heap and heap[0][0] < now:
            expiry, nonce = heapq.heappop(heap)
            if self._expiry.get(nonce) == expiry:
                del self._expiry[nonce]
                evicted = True
        if evicted and self._db is not None:
            try:
                self._db.execute("DELETE FROM replay_nonces WHERE expiry < ?", (now,))
            except sqlite3.Error as exc:
                self._failed(exc)

    def add(self, nonce: str, ts: float, now: float) -> None:
        """Remember ``nonce`` (of a command made at ``ts``); CommandRejected if seen or full."""
        with self._lock:
            self._evict(now)
            if nonce in self._expiry:
                raise CommandRejected(REPLAYED, f"nonce {nonce} already used")
            if len(self._expiry) >= self.capacity:
                raise CommandRejected(OVERLOADED, f"{self.capacity} commands in {self.max_age}s")
            expiry = ts + self.max_age
            if self._db is not None:
                try:  # on disk before the command runs: a restart cannot forget it
                    self._db.execute("INSERT OR REPLACE INTO replay_nonces VALUES (?, ?)",
                                     (nonce, expiry))
                except sqlite3.Error as exc:
                    self._failed(exc)
            self._expiry[nonce] = expiry
            heapq.heappush(self._heap, (expiry, nonce))


def verify(key: bytes | None, signed: Any, *, slice: str, now: float,
           replay: ReplayCache | None = None, max_age: float | None = None) -> Body:
    """The verified body of the signed-command payload ``signed``; raises CommandRejected.

    ``now`` is the verifier's wall time; ``max_age`` defaults to the replay
    cache's window (or :data:`MAX_AGE`). Without ``replay`` nonces are not
    checked (only for tests of the signature itself). On success the nonce
    is remembered in ``replay``.
    """
    if max_age is None:
        max_age = replay.max_age if replay is not None else MAX_AGE
    request = _peek_request(signed)
    if not key:
        raise CommandRejected(NO_KEY, "this sliver has no slice key", request)
    if not isinstance(signed, Mapping) or not isinstance(signed.get("body"), str):
        raise CommandRejected(UNSIGNED, "no signed body", request)
    sig = signed.get("sig")
    if not isinstance(sig, str) or not sig:
        raise CommandRejected(UNSIGNED, "no signature", request)
    raw = signed["body"].encode("utf-8", "surrogatepass")
    if not hmac.compare_digest(_mac(key, raw), sig.lower()):
        raise CommandRejected(FORGED, "signature does not match", request)
    body = parse(raw)
    if body.slice != slice:
        raise CommandRejected(WRONG_SLICE, f"for slice {body.slice!r}, not {slice!r}",
                              body.request)
    if abs(now - body.ts) > max_age:
        raise CommandRejected(STALE, f"made {now - body.ts:+.1f}s from now, window {max_age}s",
                              body.request)
    if replay is not None:
        try:
            replay.add(body.nonce, body.ts, now)
        except CommandRejected as exc:
            exc.request = body.request
            raise
    return body


# --- internals --------------------------------------------------------------------


def _mac(key: bytes, raw: bytes) -> str:
    return hmac.new(key, raw, hashlib.sha256).hexdigest()


def _request_of(data: Mapping[str, Any]) -> str | None:
    request = data.get("request")
    if not isinstance(request, str) or "/" in request:
        return None
    try:
        channels.join(request)
    except ChannelError:
        return None
    return request


def _peek_request(signed: Any) -> str | None:
    """The request id of a payload, unverified: only used to address a rejection."""
    if not isinstance(signed, Mapping) or not isinstance(signed.get("body"), str):
        return None
    try:
        data = json.loads(signed["body"])
    except ValueError:
        return None
    return _request_of(data) if isinstance(data, dict) else None
