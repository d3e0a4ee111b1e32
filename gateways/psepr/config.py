"""A router's configuration: one TOML file read once into frozen dataclasses.

Example (every key is optional; durations are seconds, "infinity" is None)::

    [router]
    name = "router-1"               # used in server channels and the mesh
    listen = "127.0.0.1:23345"      # clients
    accounts = "accounts.toml"      # a file with an [accounts] table
    insecure = false                # allow a non-loopback listener without TLS
    heartbeat = 10.0                # seconds between heartbeat events
    max_lease = 600.0               # cap on granted lease durations
    default_lease = 60.0            # granted when the request has no valid duration

    [router.tls]                    # TLS on both listeners when present
    cert = "router.pem"
    key = "router.key"
    ca = "ca.pem"                   # peers verify each other against it (optional)

    [limits]                        # per connection
    max_stanza = 65536              # bytes
    rate = 50000.0                  # events per second (token bucket)...
    burst = 10000                   # ...with this many in a burst
    max_queue = 4194304             # bytes waiting to be sent; more = slow consumer, dropped

    [mesh]
    listen = "127.0.0.1:23341"      # peer links; omit to take no inbound peers
    peers = ["10.0.0.2:23341"]      # routers this one dials
    service = "psepr-mesh"          # the shared account peers log in with
    password = "..."                # or password_file = "mesh.secret"
    hop_limit = 8
    dedup_size = 65536              # event ids remembered...
    dedup_window = 120.0            # ...for at most this long
    retry_min = 0.5                 # backoff between attempts to reach a peer
    retry_max = 30.0

    [accounts]                      # inline accounts, instead of router.accounts
    "svc" = "scrypt$..."

Errors raise :class:`dsmt.errors.ConfigError` naming the file, the key and
what is wrong.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from dsmt import config as tomlconfig
from dsmt.errors import ConfigError

from gateways.psepr import accounts as _accounts

CLIENT_PORT = 23345
MESH_PORT = 23341


@dataclass(frozen=True)
class Limits:
    max_stanza: int = 65536
    rate: float = 50000.0
    burst: int = 10000
    max_queue: int = 4 << 20


@dataclass(frozen=True)
class Tls:
    cert: Path
    key: Path
    ca: Path | None = None


@dataclass(frozen=True)
class Mesh:
    listen: tuple[str, int] | None = None
    peers: tuple[tuple[str, int], ...] = ()
    service: str = "psepr-mesh"
    password: str | None = None
    hop_limit: int = 8
    dedup_size: int = 65536
    dedup_window: float = 120.0
    retry_min: float = 0.5
    retry_max: float = 30.0


@dataclass(frozen=True)
class RouterConfig:
    name: str = "psepr"
    listen: tuple[str, int] = ("127.0.0.1", CLIENT_PORT)
    accounts: _accounts.Accounts = field(default_factory=lambda: _accounts.Accounts({}))
    insecure: bool = False
    heartbeat: float | None = 10.0
    max_lease: float = 600.0
    default_lease: float = 60.0
    tls: Tls | None = None
    limits: Limits = field(default_factory=Limits)
    mesh: Mesh = field(default_factory=Mesh)

    def replace(self, **changes) -> "RouterConfig":
        return dataclasses.replace(self, **changes)

    def check(self, source: object = "<router config>") -> "RouterConfig":
        """Refuse a non-loopback listener without TLS unless ``insecure``; returns self."""
        for key, address in (("router.listen", self.listen), ("mesh.listen", self.mesh.listen)):
            if address is not None and self.tls is None and not self.insecure \
                    and not is_loopback(address[0]):
                raise ConfigError(source, key, f"{address[0]} is not loopback: configure "
                                  "[router.tls] or pass --insecure")
        if self.mesh.peers and self.mesh.password is None:
            raise ConfigError(source, "mesh.password", "peers are configured but no password")
        return self


def parse_address(text: str, default_port: int, source: object = "-", key: str = "-") \
        -> tuple[str, int]:
    """``host:port``, ``host`` or ``[v6]:port`` as ``(host, port)``."""
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        host, port = text, str(default_port)
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(source, key, f"bad port in {text!r}") from None
    if not 0 <= number <= 65535:
        raise ConfigError(source, key, f"port out of range in {text!r}")
    return host, number


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load(path: str | Path) -> RouterConfig:
    """The router configuration in the TOML file at ``path`` (not yet :meth:`checked`)."""
    return from_table(tomlconfig.load(path))


def from_table(top: tomlconfig.Table) -> RouterConfig:
    src = top.source
    r = top.table("router")
    defaults = RouterConfig()
    accounts = _accounts.Accounts({})
    accounts_path = r.path("accounts", None)
    if accounts_path is not None:
        accounts = _accounts.load(accounts_path)
    if "accounts" in top:
        accounts = _accounts.from_table(top.table("accounts"))
    tls = None
    if "tls" in r:
        t = r.table("tls")
        tls = Tls(t.path("cert"), t.path("key"), t.path("ca", None))
        t.done()
    config = RouterConfig(
        name=r.str("name", defaults.name),
        listen=parse_address(r.str("listen", "127.0.0.1"), CLIENT_PORT, src, "router.listen"),
        accounts=accounts,
        insecure=r.bool("insecure", False),
        heartbeat=r.duration("heartbeat", defaults.heartbeat),
        max_lease=r.number("max_lease", defaults.max_lease, min=0.001),
        default_lease=r.number("default_lease", defaults.default_lease, min=0.001),
        tls=tls,
        limits=_limits(top.table("limits")),
        mesh=_mesh(top.table("mesh")),
    )
    r.done()
    top.done()
    return config


def _limits(t: tomlconfig.Table) -> Limits:
    d = Limits()
    limits = Limits(
        max_stanza=t.int("max_stanza", d.max_stanza, min=1024),
        rate=t.number("rate", d.rate, min=0.001),
        burst=t.int("burst", d.burst, min=1),
        max_queue=t.int("max_queue", d.max_queue, min=1024),
    )
    t.done()
    return limits


def _mesh(t: tomlconfig.Table) -> Mesh:
    d = Mesh()
    src = t.source
    listen = t.str("listen", None)
    password = t.str("password", None)
    password_file = t.path("password_file", None)
    if password_file is not None:
        try:
            password = Path(password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise t.error("password_file", f"cannot read: {exc}") from None
    mesh = Mesh(
        listen=None if listen is None else parse_address(listen, MESH_PORT, src, "mesh.listen"),
        peers=tuple(parse_address(p, MESH_PORT, src, "mesh.peers")
                    for p in t.strings("peers", ())),
        service=t.str("service", d.service),
        password=password,
        hop_limit=t.int("hop_limit", d.hop_limit, min=1),
        dedup_size=t.int("dedup_size", d.dedup_size, min=16),
        dedup_window=t.number("dedup_window", d.dedup_window, min=0.001),
        retry_min=t.number("retry_min", d.retry_min, min=0.001),
        retry_max=t.number("retry_max", d.retry_max, min=0.001),
    )
    t.done()
    return mesh
