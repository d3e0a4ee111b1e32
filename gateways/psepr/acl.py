"""What one account may do on a router: the channels it may publish to and lease.

An account's entry in the ``[accounts]`` table is either a hash string (the
account may publish and lease anything) or a table that adds an access
list::

    [accounts]
    "dsmt" = "scrypt$..."                              # unrestricted

    [accounts."monitor"]
    password = "scrypt$..."
    lease = ["/org/dsmt/ns/deployment/demo/"]          # may lease only under these
    publish = []                                       # may publish nothing

A missing ``publish`` or ``lease`` key leaves that side unrestricted; an
empty list allows nothing. Each entry is a channel prefix (``/`` means
every channel) and matches on whole elements, like a lease: allowing
``/a/b/`` allows ``/a/b/c/`` but neither ``/a/bc/`` nor the wider ``/a/``.

The router checks every event a client publishes and every lease it asks
for (:meth:`Acl.may_publish`, :meth:`Acl.may_lease`); what is not allowed
is answered with a ``<message type="error">`` carrying the XMPP condition
``forbidden`` and the refused event, is counted, and goes nowhere. The
connection stays open: a client that oversteps its rights once keeps the
rights it has. Mesh peers are routers and are not restricted (the client
that published was checked by its own router).
"""

from __future__ import annotations

from dataclasses import dataclass

from dsmt import channels
from dsmt.errors import ChannelError


@dataclass(frozen=True)
class Acl:
    """Channel prefixes one account may publish to and lease (``None``: any)."""

    publish: tuple[str, ...] | None = None
    lease: tuple[str, ...] | None = None

    @property
    def unrestricted(self) -> bool:
        return self.publish is None and self.lease is None

    def may_publish(self, channel: str) -> bool:
        return _allows(self.publish, channel)

    def may_lease(self, channel: str) -> bool:
        return _allows(self.lease, channel)


ANY = Acl()


def _allows(prefixes: tuple[str, ...] | None, channel: str) -> bool:
    if prefixes is None:
        return True
    return any(channels.is_under(channel, prefix) for prefix in prefixes)


def from_table(table) -> Acl:
    """The access list in an account's table (a :class:`dsmt.config.Table`)."""
    return Acl(publish=_prefixes(table, "publish"), lease=_prefixes(table, "lease"))


def _prefixes(table, key: str) -> tuple[str, ...] | None:
    values = table.strings(key, None)
    if values is None:
        return None
    for value in values:
        try:
            channels.validate_subscription(value)
        except ChannelError as exc:
            raise table.error(key, f"not a channel prefix: {exc}") from None
    return tuple(values)
