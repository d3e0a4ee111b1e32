"""Scalars of the PsEPR XML codec: its error type, and text <-> number/bytes rules.

Private to :mod:`gateways.psepr.xml` (which re-exports :class:`XmlError`
and :data:`XML_UNSAFE`); the rules are specified in that module's docstring.
"""

from __future__ import annotations

import base64
import math
import re
import struct
from typing import Any

from dsmt.errors import CodecError

MAX_META_INT = (1 << 63) - 1
INT_RE = re.compile(r"-?[0-9]{1,20}")
_FLOAT_RE = re.compile(r"[-+]?(?:inf|nan|[0-9][0-9.e+-]{0,30}|\.[0-9][0-9.e+-]{0,30})")
_NAN_BITS_RE = re.compile(r"nan:([0-9a-f]{16})")
_DEFAULT_NAN_BITS = struct.unpack("<Q", struct.pack("<d", math.nan))[0]
# A character XML 1.0 cannot carry in text or attributes.
XML_UNSAFE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class XmlError(CodecError):
    """A PsEPR XML event or stream cannot be parsed, decoded or encoded.

    ``why`` says what is wrong, ``value`` is the offending value (if any) and
    ``condition`` is the XMPP stream error condition that fits
    (``not-well-formed``, ``restricted-xml``, ``policy-violation``, or
    ``bad-format`` for well-formed XML that is not a valid event).
    """

    def __init__(self, why: str, value: object = None, *, condition: str = "bad-format") -> None:
        super().__init__(why, value)
        self.condition = condition


def float_text(value: float) -> str:
    if value != value:
        bits = struct.unpack("<Q", struct.pack("<d", value))[0]
        return "nan" if bits == _DEFAULT_NAN_BITS else f"nan:{bits:016x}"
    return repr(value)


def parse_float(what: str, text: str) -> float:
    if text[:4] == "nan:":
        match = _NAN_BITS_RE.fullmatch(text)
        if match:
            return struct.unpack("<d", struct.pack("<Q", int(match.group(1), 16)))[0]
    if not _FLOAT_RE.fullmatch(text.strip()):
        raise XmlError(f"{what} is not a float", text)
    try:
        return float(text)
    except ValueError:
        raise XmlError(f"{what} is not a float", text) from None


def meta_int(name: str, text: str | None) -> int:
    """A metadata int attribute (``seq``, ``epoch``); missing reads as 0."""
    if text is None:
        return 0
    if not INT_RE.fullmatch(text) or not 0 <= int(text) <= MAX_META_INT:
        raise XmlError(f"{name} must be an int in 0..2**63-1", text)
    return int(text)


def seconds(what: str, value: Any) -> str:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise XmlError(f"{what} must be a finite number of seconds >= 0", value)
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def parse_seconds(what: str, text: str) -> float:
    value = parse_float(what, text)
    if not math.isfinite(value) or value < 0:
        raise XmlError(f"{what} must be a finite number of seconds >= 0", text)
    return value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise XmlError("not base64", text) from None


def safe(what: str, value: object, limit: int | None = None, empty: bool = False) -> str:
    """``value`` if it is a str XML can carry within the limits, else XmlError."""
    if type(value) is not str:
        raise XmlError(f"{what} must be a str", value)
    if not value and not empty:
        raise XmlError(f"{what} must not be empty", value)
    if limit is not None and len(value) > limit:
        raise XmlError(f"{what} is longer than {limit} chars", value)
    bad = XML_UNSAFE.search(value)
    if bad:
        raise XmlError(f"{what} has a character XML cannot carry: {bad.group()!r}", value)
    return value


def bounded(what: str, value: str, limit: int) -> str:
    if not 0 < len(value) <= limit:
        raise XmlError(f"{what} must have 1..{limit} chars", value)
    return value
