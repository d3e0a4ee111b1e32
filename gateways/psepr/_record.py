"""DSMT's typed record payload: any msgpack value as XML, losslessly.

Private to :mod:`gateways.psepr.xml`, whose docstring specifies the
encoding (``<n/>``, ``<t/>``, ``<i>``, ``<d>``, ``<s>``, ``<b>``, ``<l>``,
``<m>`` in the payload namespace, nested at most :data:`MAX_RECORD_DEPTH`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

from gateways.psepr._scalars import (
    INT_RE, XML_UNSAFE, XmlError, b64, float_text, parse_float, unb64)

MAX_RECORD_DEPTH = 48
_INT_RANGE = (-(1 << 63), (1 << 64) - 1)
_NAMES = ("n", "t", "f", "i", "d", "s", "b", "l", "m")
_TAGS: dict[str, dict[object, str]] = {}
_TAGS_CACHE = 256


def value_to(parent: etree._Element, value: Any, ns: str, depth: int = 1,
             key: str | None = None) -> None:
    """Append the element for ``value`` to ``parent``; raises XmlError."""
    if depth > MAX_RECORD_DEPTH:
        raise XmlError(f"payload nested deeper than {MAX_RECORD_DEPTH}")
    if value is None:
        el = _record(parent, ns, "n")
    elif isinstance(value, bool):
        el = _record(parent, ns, "t" if value else "f")
    elif isinstance(value, int):
        if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            raise XmlError("int out of the msgpack range -2**63..2**64-1", value)
        el = _record(parent, ns, "i")
        el.text = str(int(value))
    elif isinstance(value, float):
        el = _record(parent, ns, "d")
        el.text = float_text(float(value))
    elif isinstance(value, str):
        el = _record(parent, ns, "s")
        if XML_UNSAFE.search(value):
            el.set("e", "b64")
            el.text = b64(value.encode("utf-8", "surrogatepass"))
        else:
            el.text = str(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        el = _record(parent, ns, "b")
        el.text = b64(bytes(value))
    elif isinstance(value, (list, tuple)):
        el = _record(parent, ns, "l")
        for item in value:
            value_to(el, item, ns, depth + 1)
    elif isinstance(value, Mapping):
        el = _record(parent, ns, "m")
        for k, item in value.items():
            if not isinstance(k, str):
                raise XmlError("map keys must be str", k)
            value_to(el, item, ns, depth + 1, k)
    else:
        raise XmlError(f"cannot encode a {type(value).__name__} in a typed record", value)
    if key is not None:
        if XML_UNSAFE.search(key):
            el.set("k64", b64(key.encode("utf-8", "surrogatepass")))
        else:
            el.set("k", str(key))


def payload_from(el: etree._Element, ns: str) -> Any:
    """The value in a typed record ``<payload>`` element; raises XmlError."""
    values = list(el)
    if len(values) != 1 or (el.text or "").strip():
        raise XmlError("a typed record payload holds exactly one value element")
    return value_from(values[0], ns)


def value_from(el: etree._Element, ns: str, tags: dict[object, str] | None = None) -> Any:
    """The value that the record element ``el`` stands for; raises XmlError.

    ``tags`` maps the qualified tags of ``ns`` to their local names (one dict
    lookup per element instead of a QName: this runs for every value of
    every received record, ~0.5 us instead of ~2.4 us an element).
    """
    if tags is None:
        tags = _tags(ns)
    name = tags.get(el.tag)  # comments and PIs have a function as tag: None too
    if name is None:
        raise XmlError(f"typed record value must be an element in {ns}", el.tag)
    if name == "m" or name == "l":
        text = el.text
        if text is not None and text.strip():
            raise XmlError(f"text directly inside <{name}>", text)
        if name == "l":
            return [value_from(child, ns, tags) for child in el]
        result: dict[str, Any] = {}
        for child in el:
            key = _record_key(child)
            if key in result:
                raise XmlError("duplicate map key", key)
            result[key] = value_from(child, ns, tags)
        return result
    if len(el):
        raise XmlError(f"<{name}> cannot have children")
    text = el.text or ""
    if name == "s":
        encoding = el.get("e")
        if encoding is None:
            return text
        if encoding != "b64":
            raise XmlError("unknown string encoding", encoding)
        try:
            return unb64(text).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise XmlError("escaped string is not UTF-8", text) from None
    if name == "i":
        if INT_RE.fullmatch(text):
            value = int(text)
            if _INT_RANGE[0] <= value <= _INT_RANGE[1]:
                return value
        raise XmlError("not an int in -2**63..2**64-1", text)
    if name == "d":
        return parse_float("float", text)
    if name == "b":
        return unb64(text)
    if text.strip():
        raise XmlError(f"<{name}> must be empty", text)
    if name == "n":
        return None
    return name == "t"  # "t" or "f": the only names left


def _tags(ns: str) -> dict[object, str]:
    """``{"{ns}s": "s", ...}`` for every record element name (cached per namespace)."""
    tags = _TAGS.get(ns)
    if tags is None:
        if len(_TAGS) >= _TAGS_CACHE:
            _TAGS.clear()
        tags = _TAGS[ns] = {f"{{{ns}}}{name}": name for name in _NAMES}
    return tags


def _record(parent: etree._Element, ns: str, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{ns}}}{name}")


def _record_key(el: etree._Element) -> str:
    key, key64 = el.get("k"), el.get("k64")
    if (key is None) == (key64 is None):
        raise XmlError("a map entry needs exactly one of k and k64", el.tag)
    if key is not None:
        return key
    try:
        return unb64(key64).decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise XmlError("escaped map key is not UTF-8", key64) from None
