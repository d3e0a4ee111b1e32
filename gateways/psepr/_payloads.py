"""Event payloads in PsEPR XML: the element under ``<payload>`` <-> ``Event.payload``.

Private to :mod:`gateways.psepr.xml`, whose docstring specifies each
mapping (attribute, lease, typed record, raw XML). Every function raises
XmlError on what it cannot encode or decode.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from lxml import etree

from dsmt.event import ATTRIBUTE, LEASE

from gateways.psepr import _record
from gateways.psepr._parse import MAX_DEPTH, MAX_STANZA, parse
from gateways.psepr._scalars import XML_UNSAFE, XmlError, parse_seconds, safe, seconds

RECORD_PREFIX = "http://dsmt.org/xs/payload/"
LEASE_OPS = frozenset({"register", "unregister", "lease"})


def to_element(type_: object, payload: Any) -> etree._Element:
    """The ``<payload>`` element for ``payload`` of event type ``type_``."""
    if type(type_) is not str or not 0 < len(type_) <= 512 or XML_UNSAFE.search(type_):
        raise XmlError("type must be a namespace URI of 1..512 chars", type_)
    if type_ == ATTRIBUTE:
        return _attribute_to(payload)
    if type_ == LEASE:
        return _lease_to(payload)
    if type_.startswith(RECORD_PREFIX):
        el = _new_payload(type_)
        _record.value_to(el, payload, type_)
        return el
    return _raw_to(type_, payload)


def from_element(type_: str, el: etree._Element) -> Any:
    """The ``Event.payload`` that the ``<payload>`` element ``el`` of type ``type_`` carries."""
    if type_ == ATTRIBUTE:
        return _attribute_from(el)
    if type_ == LEASE:
        return _lease_from(el)
    if type_.startswith(RECORD_PREFIX):
        return _record.payload_from(el, type_)
    return _raw_from(el)


def _new_payload(type_: str) -> etree._Element:
    try:
        return etree.Element(f"{{{type_}}}payload", nsmap={None: type_})
    except ValueError as exc:
        raise XmlError(f"type is not a usable namespace URI ({exc})", type_) from None


def _attribute_to(payload: Any) -> etree._Element:
    _check_keys("attribute", payload, {"field", "value"}, {"expire"})
    el = _new_payload(ATTRIBUTE)
    _child(el, ATTRIBUTE, "field", safe("attribute field", payload["field"]))
    _child(el, ATTRIBUTE, "value", safe("attribute value", payload["value"], empty=True))
    expire = payload.get("expire")
    if expire is not None:
        _child(el, ATTRIBUTE, "expire", seconds("attribute expire", expire))
    return el


def _attribute_from(el: etree._Element) -> dict[str, Any]:
    fields = _children_by_name(el, ("field", "value", "expire"))
    for name in ("field", "value"):
        if name not in fields:
            raise XmlError(f"attribute payload without {name}")
    expire = fields.get("expire")
    return {
        "field": fields["field"],
        "value": fields["value"],
        "expire": None if expire is None else parse_seconds("attribute expire", expire),
    }


def _lease_to(payload: Any) -> etree._Element:
    _check_keys("lease", payload, {"op", "identifier", "duration"}, {"type", "echo"})
    if type(payload["op"]) is not str or payload["op"] not in LEASE_OPS:
        raise XmlError(f"lease op must be one of {sorted(LEASE_OPS)}", payload["op"])
    el = _new_payload(LEASE)
    _child(el, LEASE, "duration", seconds("lease duration", payload["duration"]))
    _child(el, LEASE, "identifier", safe("lease identifier", payload["identifier"]))
    _child(el, LEASE, "op", payload["op"])
    if payload.get("type") is not None:
        _child(el, LEASE, "type", safe("lease type", payload["type"], 512))
    if "echo" in payload:
        if type(payload["echo"]) is not bool:
            raise XmlError("lease echo must be true or false", payload["echo"])
        _child(el, LEASE, "echo", "true" if payload["echo"] else "false")
    return el


def _lease_from(el: etree._Element) -> dict[str, Any]:
    fields = _children_by_name(el, ("duration", "identifier", "op", "type", "echo"))
    op = fields.get("op", "").strip()
    if op not in LEASE_OPS:
        raise XmlError(f"lease op must be one of {sorted(LEASE_OPS)}", op)
    if not fields.get("identifier"):
        raise XmlError("lease payload without identifier")
    duration = fields.get("duration")
    if duration is None and op != "unregister":
        raise XmlError(f"lease {op} without duration")
    payload = {
        "op": op,
        "identifier": fields["identifier"],
        "duration": 0.0 if duration is None else parse_seconds("lease duration", duration),
        "type": fields.get("type") or None,
    }
    echo = fields.get("echo")
    if echo is not None:
        if echo.strip() not in ("true", "false"):
            raise XmlError("lease echo must be true or false", echo)
        payload["echo"] = echo.strip() == "true"
    return payload


def _raw_to(type_: str, payload: Any) -> etree._Element:
    if (not isinstance(payload, Mapping) or set(payload) != {"xml"}
            or type(payload["xml"]) is not str):
        raise XmlError(f"payload of unknown type {type_} must be {{'xml': str}}", payload)
    # In a stream the payload sits under stream, message and event: it must fit below them.
    el = parse(payload["xml"].encode("utf-8", "surrogatepass"), MAX_STANZA, MAX_DEPTH - 3)
    if el.tag != f"{{{type_}}}payload":
        raise XmlError(f"raw payload root must be payload in namespace {type_}", el.tag)
    return el


def _raw_from(el: etree._Element) -> dict[str, str]:
    detached = copy.deepcopy(el)
    detached.tail = None
    etree.cleanup_namespaces(detached)
    return {"xml": etree.tostring(detached, encoding="unicode")}


def _child(parent: etree._Element, ns: str, name: str, text: str) -> None:
    etree.SubElement(parent, f"{{{ns}}}{name}").text = text


def _children_by_name(el: etree._Element, names: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for child in el:
        tag = child.tag
        if tag.__class__ is not str:
            continue  # comments and PIs (the parser refuses them; built trees may have them)
        name = tag[tag.find("}") + 1:]  # the local name, in any or no namespace
        if name in names:
            if name in found:
                raise XmlError(f"more than one {name} in {etree.QName(el).namespace} payload")
            if len(child):
                raise XmlError(f"<{name}> must hold text only")
            found[name] = child.text or ""
    return found


def _check_keys(what: str, payload: Any, required: set[str], optional: set[str]) -> None:
    if not isinstance(payload, Mapping):
        raise XmlError(f"{what} payload must be a map", payload)
    keys = set(payload)
    if not required <= keys or not keys <= required | optional:
        raise XmlError(
            f"{what} payload must have keys {sorted(required)} and optionally {sorted(optional)}",
            sorted(map(str, keys)))
