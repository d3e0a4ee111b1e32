"""Who may log in to a router: service names and their scrypt password hashes.

A hash string is self-describing, so its cost can be raised later without
breaking old entries::

    scrypt$<n>$<r>$<p>$<salt, base64>$<key, base64>

``dsmt passwd`` prints one (:func:`hash_password`); a router's accounts file
maps service names to them in its ``[accounts]`` table::

    [accounts]
    "my-service" = "scrypt$16384$8$1$...$..."

    [accounts."watcher"]              # an account with an access list
    password = "scrypt$16384$8$1$...$..."
    lease = ["/org/dsmt/"]            # see gateways.psepr.acl
    publish = []

:func:`Accounts.verify` compares in constant time. scrypt is slow on purpose
(tens of milliseconds), so a successful check is remembered as a keyed
digest of the password (never the password itself): a service that logs in
a thousand times pays the scrypt price once, a guesser pays it every time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from dsmt import config as tomlconfig
from dsmt.errors import ConfigError

from gateways.psepr import acl as _acl

PREFIX = "scrypt"
N, R, P = 1 << 14, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32
_MAX_N = 1 << 20


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """A new self-describing scrypt hash of ``password`` with a random salt."""
    salt = os.urandom(SALT_BYTES)
    key = _scrypt(password, salt, n, r, p, KEY_BYTES)
    return "$".join((PREFIX, str(n), str(r), str(p), _b64(salt), _b64(key)))


def check_hash(text: str) -> tuple[int, int, int, bytes, bytes]:
    """The parts of a hash string; raises ValueError naming what is wrong."""
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != PREFIX:
        raise ValueError("expected scrypt$n$r$p$salt$key (see `dsmt passwd`)")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise ValueError("n, r, p must be integers and salt, key base64") from None
    if n < 2 or n > _MAX_N or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16:
        raise ValueError(f"scrypt parameters out of range: n={n} r={r} p={p}")
    if not salt or not key:
        raise ValueError("empty salt or key")
    return n, r, p, salt, key


def verify_hash(password: str, text: str) -> bool:
    """True if ``password`` matches the hash string ``text`` (constant-time compare)."""
    n, r, p, salt, key = check_hash(text)
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(key)), key)


@dataclass(frozen=True)
class Accounts:
    """The services allowed to log in, with a cache of passwords already checked."""

    hashes: Mapping[str, str]
    acls: Mapping[str, _acl.Acl] = field(default_factory=dict)
    _memo_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    _memo: dict = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __contains__(self, service: str) -> bool:
        return service in self.hashes

    def acl(self, service: str) -> _acl.Acl:
        """What ``service`` may publish and lease (unrestricted unless configured)."""
        return self.acls.get(service, _acl.ANY)

    def is_remembered(self, service: str, password: str) -> bool:
        """True (fast) if this exact password of ``service`` was verified before."""
        digest = self._digest(service, password)
        with self._lock:
            known = self._memo.get(service)
        return known is not None and hmac.compare_digest(known, digest)

    def verify(self, service: str, password: str) -> bool:
        """True if ``service`` exists and ``password`` is its password. May take ~50 ms."""
        if self.is_remembered(service, password):
            return True
        text = self.hashes.get(service)
        if text is None:
            # Pay for a check anyway, so unknown names do not answer instantly.
            verify_hash(password, _DUMMY)
            return False
        if not verify_hash(password, text):
            return False
        with self._lock:
            self._memo[service] = self._digest(service, password)
        return True

    def _digest(self, service: str, password: str) -> bytes:
        msg = service.encode() + b"\0" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._memo_key, msg, hashlib.sha256).digest()


def from_table(table: tomlconfig.Table) -> Accounts:
    """The accounts of an ``[accounts]`` table: a hash string, or a table with
    ``password`` (the hash) and an access list, per service."""
    hashes, acls = {}, {}
    for service in list(table.keys()):
        if isinstance(table.raw(service), dict):
            entry = table.table(service)
            hashes[service] = _hash(entry, "password")
            acls[service] = _acl.from_table(entry)
            entry.done()
        else:
            hashes[service] = _hash(table, service)
    return Accounts(hashes, acls)


def _hash(table: tomlconfig.Table, key: str) -> str:
    text = table.str(key)
    try:
        check_hash(text)
    except ValueError as exc:
        raise table.error(key, str(exc)) from None
    return text


def load(path: str | Path) -> Accounts:
    """The accounts of the ``[accounts]`` table of the TOML file at ``path``."""
    top = tomlconfig.load(path)
    if "accounts" not in top:
        raise ConfigError(path, "accounts", "missing table")
    return from_table(top.table("accounts"))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    data = password.encode("utf-8", "surrogatepass")
    return hashlib.scrypt(data, salt=salt, n=n, r=r, p=p, maxmem=256 * n * r * p + (1 << 20),
                          dklen=dklen)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_DUMMY = hash_password("", n=1 << 10)
