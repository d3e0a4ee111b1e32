"""PsEPR channel names: the grammar, prefix matching and DSMT's channel layout.

This module is the only place that builds or parses a channel name.

Grammar (PsEPR)::

    channel  = "/" 1*( element "/" )
    element  = 1*( %x21-2E / %x30-3F / %x41-FE )      ; UTF-8 octets

So an element has no ``/``, no ``@``, no space and no control character
(``%x7F`` is excluded too). An element that is exactly ``*`` is reserved and
rejected, as are empty elements (``//``). Leading and trailing slashes are
mandatory. A channel is at most :data:`MAX_CHANNEL_BYTES` octets.

A subscription to a channel receives that channel and all its sub-channels:
prefix match on whole elements, which is plain string prefix match because
every channel ends in ``/`` (``/a/b/`` matches ``/a/b/c/`` but not
``/a/bc/``). ``/`` alone is valid only as a subscription and means everything.

The DSMT layout (root ``/org/dsmt/ns/deployment/`` by default)::

    {root}{slice}/org.dsmt.component.{component}/status/{sliver}/   retained status
    {root}{slice}/org.dsmt.component.{component}/command/           commands, all slivers
    {root}{slice}/org.dsmt.component.{component}/command/{sliver}/  commands, one sliver
    {root}{slice}/plan/                                             the slice plan
    {root}{slice}/sliver/{sliver}/heartbeat/                        liveness + summary
    {root}{slice}/sliver/{sliver}/resources/                        resource use, retained
    {root}{slice}/reply/{request-id}/                               command replies
"""

from __future__ import annotations

from dataclasses import dataclass

from dsmt.errors import ChannelError

MAX_CHANNEL_BYTES = 1024
ROOT = "/org/dsmt/ns/deployment/"
EVERYTHING = "/"
COMPONENT_PREFIX = "org.dsmt.component."

_ALLOWED = (frozenset(range(0x21, 0x2F)) | frozenset(range(0x30, 0x40))
            | frozenset(range(0x41, 0x7F)) | frozenset(range(0x80, 0xFF)))
_ALLOWED_STR = frozenset(chr(b) for b in _ALLOWED if b < 0x80)


def validate(channel: object) -> str:
    """Return ``channel`` if it is a valid PsEPR channel, else raise ChannelError."""
    if not isinstance(channel, str):
        raise ChannelError(channel, "not a string")
    raw = channel.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_CHANNEL_BYTES:
        raise ChannelError(channel, f"longer than {MAX_CHANNEL_BYTES} bytes")
    if len(raw) < 3 or raw[0] != 0x2F or raw[-1] != 0x2F:
        raise ChannelError(channel, "must start and end with '/' and have an element")
    for element in raw[1:-1].split(b"/"):
        _check_element(channel, element)
    return channel


def validate_subscription(prefix: object) -> str:
    """Like :func:`validate`, but also accept ``/`` (everything)."""
    if prefix == EVERYTHING:
        return EVERYTHING
    return validate(prefix)


def _check_element(channel: str, element: bytes) -> None:
    if not element:
        raise ChannelError(channel, "empty element")
    if element == b"*":
        raise ChannelError(channel, "'*' is a reserved element")
    if element.isascii():
        bad = next((c for c in element.decode() if c not in _ALLOWED_STR), None)
        if bad is not None:
            raise ChannelError(channel, f"forbidden character {bad!r}")
        return
    bad_byte = next((b for b in element if b not in _ALLOWED), None)
    if bad_byte is not None:
        raise ChannelError(channel, f"forbidden octet 0x{bad_byte:02X}")
    try:
        element.decode("utf-8")
    except UnicodeDecodeError:
        raise ChannelError(channel, "not valid UTF-8") from None


def is_under(channel: str, prefix: str) -> bool:
    """True if a subscription to ``prefix`` receives ``channel``."""
    return channel.startswith(prefix)


def elements(channel: str) -> tuple[str, ...]:
    """The elements of a valid channel, in order."""
    return tuple(validate(channel)[1:-1].split("/"))


def join(*parts: str) -> str:
    """Build a channel from elements; each must be a valid element."""
    return validate("/" + "/".join(parts) + "/")


@dataclass(frozen=True, slots=True)
class Layout:
    """The channels of one slice under a root (DESIGN.md §3.1)."""

    slice: str
    root: str = ROOT

    def __post_init__(self) -> None:
        validate(self.root)
        validate(self.base)

    @property
    def base(self) -> str:
        return f"{self.root}{self.slice}/"

    def component(self, component: str) -> str:
        return validate(f"{self.base}{COMPONENT_PREFIX}{component}/")

    def status(self, component: str, sliver: str | None = None) -> str:
        """Status of one component on one sliver; without sliver, the prefix for all."""
        tail = "" if sliver is None else f"{sliver}/"
        return validate(f"{self.component(component)}status/{tail}")

    def command(self, component: str, sliver: str | None = None) -> str:
        tail = "" if sliver is None else f"{sliver}/"
        return validate(f"{self.component(component)}command/{tail}")

    def plan(self) -> str:
        return validate(f"{self.base}plan/")

    def heartbeat(self, sliver: str | None = None) -> str:
        if sliver is None:
            return validate(f"{self.base}sliver/")
        return validate(f"{self.base}sliver/{sliver}/heartbeat/")

    def resources(self, sliver: str) -> str:
        """Resource use of one sliver (cpu, memory, fds, disk vs quota), retained."""
        return validate(f"{self.base}sliver/{sliver}/resources/")

    def reply(self, request_id: str) -> str:
        return validate(f"{self.base}reply/{request_id}/")

    def parse_status(self, channel: str) -> tuple[str, str] | None:
        """``(component, sliver)`` of a status channel of this slice, else None."""
        if not channel.startswith(self.base):
            return None
        rest = channel[len(self.base):-1].split("/")
        if len(rest) == 3 and rest[0].startswith(COMPONENT_PREFIX) and rest[1] == "status":
            return rest[0][len(COMPONENT_PREFIX):], rest[2]
        return None

    def parse_heartbeat(self, channel: str) -> str | None:
        """The sliver name of a heartbeat channel of this slice, else None."""
        if not channel.startswith(self.base):
            return None
        rest = channel[len(self.base):-1].split("/")
        if len(rest) == 3 and rest[0] == "sliver" and rest[2] == "heartbeat":
            return rest[1]
        return None
