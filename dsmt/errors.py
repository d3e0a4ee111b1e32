"""The exception types of DSMT.

Two families, as in pykka: :class:`DsmtError` for input that DSMT refuses
(every one names the offending value), and the actor/runtime errors raised
by pykka itself. A boundary (hub, router connection, bridge, CLI) catches
``DsmtError``, reports it and keeps serving.
"""

from __future__ import annotations


class DsmtError(Exception):
    """Base of every error DSMT raises on bad input or bad configuration."""


class ChannelError(DsmtError, ValueError):
    """A channel name breaks the PsEPR grammar; ``value`` is the name."""

    def __init__(self, value: object, why: str) -> None:
        super().__init__(f"invalid channel {value!r}: {why}")
        self.value = value
        self.why = why


class CodecError(DsmtError, ValueError):
    """A wire frame cannot be decoded or an event cannot be encoded."""

    def __init__(self, why: str, value: object = None) -> None:
        shown = value if not isinstance(value, (bytes, bytearray)) else bytes(value[:64])
        super().__init__(f"{why}" + ("" if value is None else f": {shown!r}"))
        self.value = value
        self.why = why


class TransitionError(DsmtError):
    """A state machine was asked for a transition its table does not allow."""

    def __init__(self, machine: str, current: str, wanted: str) -> None:
        super().__init__(f"{machine}: no transition {current!r} -> {wanted!r}")
        self.machine = machine
        self.current = current
        self.wanted = wanted


class ConfigError(DsmtError):
    """A configuration file is wrong; names the file, the key and what is wrong."""

    def __init__(self, path: object, key: str, why: str) -> None:
        super().__init__(f"{path}: {key}: {why}")
        self.path = path
        self.key = key
        self.why = why


class SupervisorError(DsmtError):
    """A supervisor API call was refused; ``reason`` is OTP's error atom.

    ``reason`` is one of ``already_started``, ``already_present``,
    ``not_found``, ``running``, ``restarting``, ``simple_one_for_one``,
    ``start_failed`` or ``bad_spec``; ``detail`` carries the ref, the exit
    reason or the explanation.
    """

    def __init__(self, reason: str, detail: object = None) -> None:
        super().__init__(reason if detail is None else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
