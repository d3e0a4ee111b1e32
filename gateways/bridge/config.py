"""The bridge's configuration: routers, account, prefixes, buffer bounds, timings, TLS.

Parsed once into a frozen :class:`BridgeConfig`; durations are seconds as
floats and "no limit" is ``None`` (STYLE.md habit 2). Validation happens in
the constructor, so a bad value fails where the config is built, not later
in the bridge's thread.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from dsmt import channels
from dsmt.errors import ChannelError

from gateways.psepr.lease_machine import Timing


@dataclass(frozen=True)
class BridgeConfig:
    """What one sliver's bridge connects to, what it carries, and how it buffers.

    - ``routers``: ``(host, port)`` pairs, tried in random order;
    - ``service``/``password``: the PsEPR account; the sliver is the instance;
    - ``export_prefixes``: hub channels sent to PsEPR (``/`` = everything);
    - ``import_prefixes``: PsEPR channels leased and published on the hub
      (``/`` is refused: a lease cannot be taken on ``/``);
    - ``buffer_max_events``/``buffer_max_bytes``: the bound on what the bridge
      holds for the router — the newest retained event of every exported key
      plus, while disconnected, the non-retained events waiting (sizes are
      the events' PsEPR XML bytes); ``buffer_max_bytes=None`` counts events only;
    - ``reconnect_min``/``reconnect_max``: the pause after a failed connection
      attempt, doubling up to the max; back to the min after a login;
    - ``lease_duration``, ``lease_retry_after``, ``lease_max_tries``: the
      import leases (the client renews at 80 %, DESIGN.md §4);
    - ``tls``: connect with TLS; ``tls_ca_file`` (None: the system's CAs) and
      ``tls_check_hostname`` say how the router's certificate is checked;
    - ``id_memory``: how many event ids of each direction are remembered for
      loop prevention;
    - ``max_stanza``: the largest message stanza sent or accepted;
    - ``connect_wait``: how long the bridge's start waits for its first login
      (None: not at all), so that the components started after it, in a
      sliver, publish their first states straight to PsEPR instead of into
      the compacting buffer; a router that is down only delays the start.
    """

    routers: tuple[tuple[str, int], ...]
    service: str
    password: str
    export_prefixes: tuple[str, ...] = ()
    import_prefixes: tuple[str, ...] = ()
    buffer_max_events: int = 10_000
    buffer_max_bytes: int | None = 16 << 20
    reconnect_min: float = 1.0
    reconnect_max: float = 30.0
    lease_duration: float = 60.0
    lease_retry_after: float = 20.0
    lease_max_tries: int = 10
    tls: bool = False
    tls_ca_file: str | None = None
    tls_check_hostname: bool = True
    id_memory: int = 65_536
    max_stanza: int = 65_536
    connect_wait: float | None = 5.0

    def __post_init__(self) -> None:
        routers = tuple((str(host), int(port)) for host, port in self.routers)
        if not routers:
            raise ValueError("bridge: routers must name at least one (host, port)")
        for host, port in routers:
            if not host or not 0 < port < 65536:
                raise ValueError(f"bridge: bad router address {host!r}:{port}")
        object.__setattr__(self, "routers", routers)
        object.__setattr__(self, "export_prefixes", tuple(
            channels.validate_subscription(p) for p in self.export_prefixes))
        imports = tuple(self.import_prefixes)
        for prefix in imports:
            if prefix == channels.EVERYTHING:
                raise ChannelError(prefix, "a bridge cannot lease '/'; list the prefixes")
            channels.validate(prefix)
        object.__setattr__(self, "import_prefixes", imports)
        if not self.service:
            raise ValueError("bridge: service must not be empty")
        for name in ("buffer_max_events", "id_memory", "lease_max_tries"):
            if getattr(self, name) < 1:
                raise ValueError(f"bridge: {name} must be at least 1")
        if self.buffer_max_bytes is not None and self.buffer_max_bytes < 1:
            raise ValueError("bridge: buffer_max_bytes must be at least 1, or None")
        if not 0 < self.reconnect_min <= self.reconnect_max:
            raise ValueError("bridge: need 0 < reconnect_min <= reconnect_max")
        if self.lease_duration <= 0 or self.lease_retry_after <= 0:
            raise ValueError("bridge: lease_duration and lease_retry_after must be > 0")

    @property
    def timing(self) -> Timing:
        return Timing(retry_after=self.lease_retry_after, max_tries=self.lease_max_tries)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context, or None without TLS."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.tls_ca_file)
        context.check_hostname = self.tls_check_hostname
        return context

    def describe(self) -> dict[str, Any]:
        """The configuration for ``inspect()``, without the password."""
        return {
            "routers": [f"{host}:{port}" for host, port in self.routers],
            "service": self.service,
            "export_prefixes": list(self.export_prefixes),
            "import_prefixes": list(self.import_prefixes),
            "buffer_max_events": self.buffer_max_events,
            "buffer_max_bytes": self.buffer_max_bytes,
            "reconnect": [self.reconnect_min, self.reconnect_max],
            "lease_duration": self.lease_duration,
            "tls": self.tls,
        }
