"""PsEPR XML events: the wide-area wire format of a DSMT event (DESIGN.md §3.3).

This docstring is the wire specification; this module is the only place
that encodes or decodes a PsEPR XML event, and it owns the hardened parser
that :mod:`gateways.psepr.stream` uses too.

The event element::

    <event xmlns="http://psepr.org/xs/event"
           xmlns:d="http://dsmt.org/xs/event-meta"
           d:id="18f2c.7" d:seq="7" d:epoch="1715000000000000"
           d:ts="1715000001.25" d:retain="true">
      <to><channel>/org/dsmt/…/</channel>[<service>S</service>[<instance>I</instance>]]</to>
      <from><service>S</service>[<instance>I</instance>]</from>
      <payload xmlns="TYPE">…</payload>
    </event>

Metadata (namespace :data:`META_NS`, all optional on input):

- ``d:id``     str, 1..128 chars; missing: a fresh ``uuid4().hex``;
- ``d:seq``    decimal int 0..2**63-1; missing: 0;
- ``d:epoch``  decimal int 0..2**63-1; missing: 0;
- ``d:ts``     float as Python ``repr`` (exact round trip); missing: now;
- ``d:retain`` ``true`` only when retained (absent means false; ``1``,
  ``false`` and ``0`` are read too).

A 2005-era PsEPR client writes none of them; its events get the defaults.
``to``/``from`` children are in the event namespace; ``service`` and
``instance`` are 1..256 chars; ``to`` without ``service`` means "no to
address"; ``instance`` without ``service`` is an error. The channel must
satisfy :func:`dsmt.channels.validate`. Unknown extra children of
``<event>`` are ignored (forward compatibility); ``to``, ``from`` and
``payload`` appear exactly once (``from`` and ``payload`` are mandatory).

The payload element's namespace is the event type; its mapping to
``Event.payload`` (always msgpack-able, because an event crosses the local
hub unchanged) depends on the namespace:

``http://psepr.org/xs/payload/attribute`` (:data:`dsmt.event.ATTRIBUTE`)
    children ``field``, ``value``, optional ``expire`` (seconds) →
    ``{"field": str, "value": str, "expire": float | None}``.

``http://psepr.org/xs/payload/lease`` (:data:`dsmt.event.LEASE`)
    children ``duration`` (seconds), ``identifier``, ``op``
    (``register`` | ``unregister`` | ``lease``), optional ``type`` (restrict
    the lease to one payload namespace) →
    ``{"op": str, "identifier": str, "duration": float, "type": str | None}``.
    ``duration`` may be omitted only for ``unregister`` (read as 0.0).

    For both PsEPR payloads, children are matched by local name (any or no
    namespace), text is taken verbatim, numbers are written as integers when
    integral (``60``, as 2005 clients did) and as ``repr`` otherwise.

any namespace starting with ``http://dsmt.org/xs/payload/`` (RECORD, STATUS, …)
    the typed record encoding below: exactly one value element under
    ``<payload>``, all in the payload namespace, lossless for every msgpack
    value:

    ==============================  =======================================
    ``<n/>``                        None
    ``<t/>`` / ``<f/>``             True / False
    ``<i>-12</i>``                  int, -2**63 .. 2**64-1, ``-?[0-9]+``
    ``<d>0.1</d>``                  float, Python ``repr`` (``inf``, ``-inf``,
                                    ``nan``; a NaN other than the default one
                                    is ``nan:<16 hex digits of its bits>``)
    ``<s>text</s>``                 str
    ``<s e="b64">…</s>``            str XML 1.0 cannot carry (control chars,
                                    lone surrogates, U+FFFE…): base64 of its
                                    UTF-8 (``surrogatepass``) bytes
    ``<b>base64</b>``               bytes (standard base64, no whitespace)
    ``<l>V*</l>``                   list (tuples are written as lists)
    ``<m>V*</m>``                   map with str keys; each child value has
                                    ``k="key"``, or ``k64="base64"`` when the
                                    key is not XML-safe; keys are unique
    ==============================  =======================================

    Values nest at most :data:`MAX_RECORD_DEPTH` deep, so an event fits in
    the parser's depth cap even inside a stream and a message.

any other namespace
    passed through as raw XML: ``{"xml": "<payload xmlns=…>…</payload>"}``
    (str, the payload element serialized alone, unused namespace
    declarations dropped); on encode the string is parsed with the hardened
    parser and re-emitted as is (its root must be ``payload`` in the event
    type's namespace, nested at most ``MAX_DEPTH - 3`` deep so that it fits
    under stream, message and event).

Parsing (:func:`hardened_parser`): lxml with no DTD loading, no external
entities, no network, ``huge_tree`` off, input forced to UTF-8, and a
parser target that rejects any DOCTYPE (so no entity declarations, no
billion laughs, no XXE), processing instruction or comment before libxml2
acts on it, and any element nested deeper than :data:`MAX_DEPTH`. So the
only references that can appear are the five predefined entities and
character references (an undefined one is not well-formed); they are
resolved (libxml2 would otherwise hand ``&`` in attributes back as ``&#38;``). Documents
over ``max_size`` bytes (default :data:`MAX_STANZA`, 64 KiB) are refused
before parsing. Every bad input raises :class:`XmlError` naming what is
wrong; its ``condition`` is the XMPP stream error condition that fits.
"""

from __future__ import annotations

import base64
import copy
import math
import re
import struct
import time
import uuid
from collections.abc import Mapping
from typing import Any

from lxml import etree

from dsmt import channels
from dsmt.errors import ChannelError, CodecError
from dsmt.event import ATTRIBUTE, LEASE, Address, Event

__all__ = [
    "EVENT_NS", "META_NS", "RECORD_PREFIX", "MAX_STANZA", "MAX_DEPTH", "MAX_RECORD_DEPTH",
    "EVENT_TAG", "XML_UNSAFE", "XmlError", "hardened_parser", "GuardedTarget", "parse",
    "event_to_element", "event_to_bytes", "event_from_element", "event_from_bytes",
]

EVENT_NS = "http://psepr.org/xs/event"
META_NS = "http://dsmt.org/xs/event-meta"
RECORD_PREFIX = "http://dsmt.org/xs/payload/"
MAX_STANZA = 65536
MAX_DEPTH = 64
MAX_RECORD_DEPTH = 48
LEASE_OPS = frozenset({"register", "unregister", "lease"})

EVENT_TAG = f"{{{EVENT_NS}}}event"
_TO, _FROM, _PAYLOAD = (f"{{{EVENT_NS}}}{n}" for n in ("to", "from", "payload"))
_CHANNEL, _SERVICE, _INSTANCE = (f"{{{EVENT_NS}}}{n}" for n in ("channel", "service", "instance"))
_ID, _SEQ, _EPOCH, _TS, _RETAIN = (
    f"{{{META_NS}}}{n}" for n in ("id", "seq", "epoch", "ts", "retain"))
_NSMAP = {None: EVENT_NS, "d": META_NS}

_MAX_INT = (1 << 63) - 1
_INT_RANGE = (-(1 << 63), (1 << 64) - 1)
_INT_RE = re.compile(r"-?[0-9]{1,20}")
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


# --------------------------------------------------------------------------- parsing


def hardened_parser(target: Any) -> etree.XMLParser:
    """An lxml feed parser for untrusted bytes, reporting to ``target``.

    ``target`` should be a :class:`GuardedTarget` (it is what rejects DOCTYPE,
    PIs, comments and deep nesting); the parser itself never loads a DTD or an
    external entity, touches the network or lifts libxml2's size limits.
    """
    return etree.XMLParser(
        target=target,
        encoding="utf-8",
        resolve_entities="internal",  # only &amp; and char refs: a DOCTYPE never gets through
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        collect_ids=False,
        remove_blank_text=False,
    )


class GuardedTarget:
    """Parser target: builds lxml elements and refuses restricted XML.

    Runs inside ``parser.feed()``. It counts depth (the root is depth 1) and
    refuses nesting past ``max_depth`` (``policy-violation``); a DOCTYPE,
    processing instruction or comment is refused (``restricted-xml``) before
    libxml2 reads any declaration. A refusal raises :class:`XmlError` and
    also keeps it in ``error``, because lxml may replace an exception raised
    in a target with its own syntax error: after ``feed()`` fails, callers
    raise ``target.error`` if it is set. ``close()`` returns the root
    element, or None if the document is incomplete.
    """

    def __init__(self, max_depth: int = MAX_DEPTH) -> None:
        self.max_depth = max_depth
        self.depth = 0
        self.error: XmlError | None = None
        self._builder = etree.TreeBuilder()

    def refuse(self, error: XmlError) -> None:
        """Stop the parse with ``error`` (the first refusal wins)."""
        if self.error is None:
            self.error = error
        raise self.error

    def start(self, tag: str, attrib: Any, nsmap: dict) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            self.refuse(XmlError(f"elements nested deeper than {self.max_depth}", tag,
                                 condition="policy-violation"))
        # lxml reports the default namespace under "", TreeBuilder wants None.
        self._builder.start(tag, attrib, {k or None: v for k, v in nsmap.items()} or None)

    def end(self, tag: str) -> None:
        self.depth -= 1
        self._builder.end(tag)

    def data(self, data: str) -> None:
        self._builder.data(data)

    def doctype(self, name: Any, pubid: Any, system: Any) -> None:
        self.refuse(XmlError("DOCTYPE is not allowed", name, condition="restricted-xml"))

    def pi(self, target: Any, data: Any = None) -> None:
        self.refuse(XmlError("processing instructions are not allowed", target,
                             condition="restricted-xml"))

    def comment(self, text: Any) -> None:
        self.refuse(XmlError("comments are not allowed", condition="restricted-xml"))

    def close(self) -> etree._Element | None:
        if self.error is not None or self.depth:
            return None
        try:
            return self._builder.close()
        except etree.XMLSyntaxError:
            return None


def parse(data: bytes, max_size: int = MAX_STANZA, max_depth: int = MAX_DEPTH) -> etree._Element:
    """The root element of the XML document ``data``; raises XmlError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise XmlError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise XmlError(f"document of {len(data)} bytes is over the {max_size} limit",
                       condition="policy-violation")
    target = GuardedTarget(max_depth)
    parser = hardened_parser(target)
    try:
        parser.feed(bytes(data))
        root = parser.close()
    except (XmlError, etree.LxmlError, ValueError) as exc:
        if target.error is not None:
            raise target.error from None
        raise XmlError(f"not well-formed XML ({exc})", bytes(data),
                       condition="not-well-formed") from None
    if target.error is not None:
        raise target.error
    if root is None:
        raise XmlError("incomplete XML document", bytes(data), condition="not-well-formed")
    return root


# --------------------------------------------------------------------------- events


def event_to_bytes(event: Event, max_size: int = MAX_STANZA) -> bytes:
    """The PsEPR XML of ``event`` (UTF-8, no declaration); raises XmlError."""
    data = etree.tostring(event_to_element(event), encoding="utf-8")
    if len(data) > max_size:
        raise XmlError(f"event {event.id} is {len(data)} bytes, over the {max_size} limit",
                       condition="policy-violation")
    return data


def event_from_bytes(data: bytes, max_size: int = MAX_STANZA) -> Event:
    """The event in the XML document ``data``; raises XmlError on anything else."""
    return event_from_element(parse(data, max_size))


def event_to_element(event: Event) -> etree._Element:
    """A new ``<event>`` element for ``event``; raises XmlError if it cannot be encoded."""
    root = etree.Element(EVENT_TAG, nsmap=_NSMAP)
    root.set(_ID, _safe("id", event.id, 128))
    root.set(_SEQ, str(_meta_int("seq", event.seq)))
    root.set(_EPOCH, str(_meta_int("epoch", event.epoch)))
    if type(event.ts) not in (float, int) or isinstance(event.ts, bool):
        raise XmlError("ts must be a float", event.ts)
    root.set(_TS, repr(float(event.ts)))
    if event.retain:
        root.set(_RETAIN, "true")
    to = etree.SubElement(root, _TO)
    try:
        channel = channels.validate(event.channel)
    except ChannelError as exc:
        raise XmlError(str(exc), event.channel) from None
    etree.SubElement(to, _CHANNEL).text = _safe("channel", channel)
    if event.to is not None:
        _address_to(to, event.to)
    if not isinstance(event.sender, Address):
        raise XmlError("sender must be an Address", event.sender)
    _address_to(etree.SubElement(root, _FROM), event.sender)
    root.append(_payload_to_element(event.type, event.payload))
    return root


def event_from_element(el: etree._Element) -> Event:
    """The event that the ``<event>`` element ``el`` carries; raises XmlError."""
    if el.tag != EVENT_TAG:
        raise XmlError(f"expected {{{EVENT_NS}}}event", el.tag)
    found: dict[str, etree._Element] = {}
    for child in el.iterchildren("*"):
        # The payload element is in the namespace of the event type, not ours.
        tag = _PAYLOAD if etree.QName(child).localname == "payload" else child.tag
        if tag in (_TO, _FROM, _PAYLOAD):
            if tag in found:
                raise XmlError(f"more than one {etree.QName(tag).localname} element")
            found[tag] = child
    for tag in (_TO, _FROM, _PAYLOAD):
        if tag not in found:
            raise XmlError(f"event without {etree.QName(tag).localname} element")
    channel, to = _to_from(found[_TO])
    sender = _address_from(found[_FROM], "from")
    if sender is None:
        raise XmlError("from without service")
    type_, payload = _payload_from_element(found[_PAYLOAD])
    id_ = el.get(_ID)
    if id_ is None:
        id_ = uuid.uuid4().hex
    elif not 0 < len(id_) <= 128:
        raise XmlError("id must have 1..128 chars", id_)
    return Event(
        channel=channel,
        type=type_,
        sender=sender,
        payload=payload,
        id=id_,
        seq=_read_meta_int(el, _SEQ),
        epoch=_read_meta_int(el, _EPOCH),
        ts=_read_ts(el),
        retain=_read_retain(el),
        to=to,
    )


def _meta_int(name: str, value: object) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_INT:
        raise XmlError(f"{name} must be an int in 0..2**63-1", value)
    return value


def _read_meta_int(el: etree._Element, attr: str) -> int:
    text = el.get(attr)
    if text is None:
        return 0
    if not _INT_RE.fullmatch(text) or not 0 <= int(text) <= _MAX_INT:
        raise XmlError(f"{etree.QName(attr).localname} must be an int in 0..2**63-1", text)
    return int(text)


def _read_ts(el: etree._Element) -> float:
    text = el.get(_TS)
    if text is None:
        return time.time()
    return _parse_float("ts", text)


def _read_retain(el: etree._Element) -> bool:
    text = el.get(_RETAIN)
    if text is None or text in ("false", "0"):
        return False
    if text in ("true", "1"):
        return True
    raise XmlError("retain must be true or false", text)


def _address_to(parent: etree._Element, address: Address) -> None:
    etree.SubElement(parent, _SERVICE).text = _safe("service", address.service, 256)
    if address.instance is not None:
        etree.SubElement(parent, _INSTANCE).text = _safe("instance", address.instance, 256)


def _to_from(el: etree._Element) -> tuple[str, Address | None]:
    channel_el = el.find(_CHANNEL)
    if channel_el is None:
        raise XmlError("to without channel")
    try:
        channel = channels.validate(_text(channel_el))
    except ChannelError as exc:
        raise XmlError(str(exc), channel_el.text) from None
    return channel, _address_from(el, "to")


def _address_from(el: etree._Element, what: str) -> Address | None:
    service_el, instance_el = el.find(_SERVICE), el.find(_INSTANCE)
    if service_el is None:
        if instance_el is not None:
            raise XmlError(f"{what} has an instance but no service")
        return None
    service = _bounded(f"{what} service", _text(service_el), 256)
    instance = None if instance_el is None else _bounded(
        f"{what} instance", _text(instance_el), 256)
    return Address(service, instance)


# --------------------------------------------------------------------------- payloads


def _payload_to_element(type_: object, payload: Any) -> etree._Element:
    if type(type_) is not str or not 0 < len(type_) <= 512 or XML_UNSAFE.search(type_):
        raise XmlError("type must be a namespace URI of 1..512 chars", type_)
    if type_ == ATTRIBUTE:
        return _attribute_to(payload)
    if type_ == LEASE:
        return _lease_to(payload)
    if type_.startswith(RECORD_PREFIX):
        el = _new_payload(type_)
        _value_to(el, payload, type_, 1)
        return el
    return _raw_to(type_, payload)


def _payload_from_element(el: etree._Element) -> tuple[str, Any]:
    type_ = etree.QName(el).namespace
    if not type_:
        raise XmlError("payload without a namespace (the event type)")
    if type_ == ATTRIBUTE:
        return type_, _attribute_from(el)
    if type_ == LEASE:
        return type_, _lease_from(el)
    if type_.startswith(RECORD_PREFIX):
        values = list(el)
        if len(values) != 1 or (el.text or "").strip():
            raise XmlError("a typed record payload holds exactly one value element")
        return type_, _value_from(values[0], type_)
    return type_, _raw_from(el)


def _new_payload(type_: str) -> etree._Element:
    try:
        return etree.Element(f"{{{type_}}}payload", nsmap={None: type_})
    except ValueError as exc:
        raise XmlError(f"type is not a usable namespace URI ({exc})", type_) from None


def _attribute_to(payload: Any) -> etree._Element:
    _check_keys("attribute", payload, {"field", "value"}, {"expire"})
    el = _new_payload(ATTRIBUTE)
    _child(el, ATTRIBUTE, "field", _safe("attribute field", payload["field"]))
    _child(el, ATTRIBUTE, "value", _safe("attribute value", payload["value"], empty=True))
    expire = payload.get("expire")
    if expire is not None:
        _child(el, ATTRIBUTE, "expire", _seconds("attribute expire", expire))
    return el


def _attribute_from(el: etree._Element) -> dict[str, Any]:
    fields = _children_by_name(el, {"field", "value", "expire"})
    for name in ("field", "value"):
        if name not in fields:
            raise XmlError(f"attribute payload without {name}")
    expire = fields.get("expire")
    return {
        "field": fields["field"],
        "value": fields["value"],
        "expire": None if expire is None else _parse_seconds("attribute expire", expire),
    }


def _lease_to(payload: Any) -> etree._Element:
    _check_keys("lease", payload, {"op", "identifier", "duration"}, {"type"})
    if type(payload["op"]) is not str or payload["op"] not in LEASE_OPS:
        raise XmlError(f"lease op must be one of {sorted(LEASE_OPS)}", payload["op"])
    el = _new_payload(LEASE)
    _child(el, LEASE, "duration", _seconds("lease duration", payload["duration"]))
    _child(el, LEASE, "identifier", _safe("lease identifier", payload["identifier"]))
    _child(el, LEASE, "op", payload["op"])
    if payload.get("type") is not None:
        _child(el, LEASE, "type", _safe("lease type", payload["type"], 512))
    return el


def _lease_from(el: etree._Element) -> dict[str, Any]:
    fields = _children_by_name(el, {"duration", "identifier", "op", "type"})
    op = fields.get("op", "").strip()
    if op not in LEASE_OPS:
        raise XmlError(f"lease op must be one of {sorted(LEASE_OPS)}", op)
    if not fields.get("identifier"):
        raise XmlError("lease payload without identifier")
    duration = fields.get("duration")
    if duration is None and op != "unregister":
        raise XmlError(f"lease {op} without duration")
    return {
        "op": op,
        "identifier": fields["identifier"],
        "duration": 0.0 if duration is None else _parse_seconds("lease duration", duration),
        "type": fields.get("type") or None,
    }


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


# --------------------------------------------------------------------------- typed records


def _value_to(parent: etree._Element, value: Any, ns: str, depth: int,
              key: str | None = None) -> None:
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
        el.text = _float_text(float(value))
    elif isinstance(value, str):
        el = _record(parent, ns, "s")
        if XML_UNSAFE.search(value):
            el.set("e", "b64")
            el.text = _b64(value.encode("utf-8", "surrogatepass"))
        else:
            el.text = str(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        el = _record(parent, ns, "b")
        el.text = _b64(bytes(value))
    elif isinstance(value, (list, tuple)):
        el = _record(parent, ns, "l")
        for item in value:
            _value_to(el, item, ns, depth + 1)
    elif isinstance(value, Mapping):
        el = _record(parent, ns, "m")
        for k, item in value.items():
            if not isinstance(k, str):
                raise XmlError("map keys must be str", k)
            _value_to(el, item, ns, depth + 1, k)
    else:
        raise XmlError(f"cannot encode a {type(value).__name__} in a typed record", value)
    if key is not None:
        if XML_UNSAFE.search(key):
            el.set("k64", _b64(key.encode("utf-8", "surrogatepass")))
        else:
            el.set("k", str(key))


def _value_from(el: etree._Element, ns: str) -> Any:
    qname = etree.QName(el) if isinstance(el.tag, str) else None
    if qname is None or qname.namespace != ns:
        raise XmlError(f"typed record value must be an element in {ns}", el.tag)
    name = qname.localname
    if name in ("l", "m"):
        if (el.text or "").strip():
            raise XmlError(f"text directly inside <{name}>", el.text)
        if name == "l":
            return [_value_from(child, ns) for child in el]
        result: dict[str, Any] = {}
        for child in el:
            key = _record_key(child)
            if key in result:
                raise XmlError("duplicate map key", key)
            result[key] = _value_from(child, ns)
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
            return _unb64(text).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise XmlError("escaped string is not UTF-8", text) from None
    if name == "i":
        if not _INT_RE.fullmatch(text) or not _INT_RANGE[0] <= int(text) <= _INT_RANGE[1]:
            raise XmlError("not an int in -2**63..2**64-1", text)
        return int(text)
    if name == "d":
        return _parse_float("float", text)
    if name == "b":
        return _unb64(text)
    if text.strip():
        raise XmlError(f"<{name}> must be empty", text)
    if name == "n":
        return None
    if name in ("t", "f"):
        return name == "t"
    raise XmlError("unknown typed record element", name)


def _record(parent: etree._Element, ns: str, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{ns}}}{name}")


def _record_key(el: etree._Element) -> str:
    key, key64 = el.get("k"), el.get("k64")
    if (key is None) == (key64 is None):
        raise XmlError("a map entry needs exactly one of k and k64", el.tag)
    if key is not None:
        return key
    try:
        return _unb64(key64).decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise XmlError("escaped map key is not UTF-8", key64) from None


# --------------------------------------------------------------------------- scalars


def _float_text(value: float) -> str:
    if value != value:
        bits = struct.unpack("<Q", struct.pack("<d", value))[0]
        return "nan" if bits == _DEFAULT_NAN_BITS else f"nan:{bits:016x}"
    return repr(value)


def _parse_float(what: str, text: str) -> float:
    match = _NAN_BITS_RE.fullmatch(text)
    if match:
        return struct.unpack("<d", struct.pack("<Q", int(match.group(1), 16)))[0]
    if not _FLOAT_RE.fullmatch(text.strip()):
        raise XmlError(f"{what} is not a float", text)
    try:
        return float(text)
    except ValueError:
        raise XmlError(f"{what} is not a float", text) from None


def _seconds(what: str, value: Any) -> str:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise XmlError(f"{what} must be a finite number of seconds >= 0", value)
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _parse_seconds(what: str, text: str) -> float:
    value = _parse_float(what, text)
    if not math.isfinite(value) or value < 0:
        raise XmlError(f"{what} must be a finite number of seconds >= 0", text)
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise XmlError("not base64", text) from None


def _safe(what: str, value: object, limit: int | None = None, empty: bool = False) -> str:
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


def _bounded(what: str, value: str, limit: int) -> str:
    if not 0 < len(value) <= limit:
        raise XmlError(f"{what} must have 1..{limit} chars", value)
    return value


def _text(el: etree._Element) -> str:
    if len(el):
        raise XmlError(f"<{etree.QName(el).localname}> must hold text only")
    return el.text or ""


def _child(parent: etree._Element, ns: str, name: str, text: str) -> None:
    etree.SubElement(parent, f"{{{ns}}}{name}").text = text


def _children_by_name(el: etree._Element, names: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for child in el.iterchildren("*"):
        name = etree.QName(child).localname
        if name in names:
            if name in found:
                raise XmlError(f"more than one {name} in {etree.QName(el).namespace} payload")
            found[name] = _text(child)
    return found


def _check_keys(what: str, payload: Any, required: set[str], optional: set[str]) -> None:
    if not isinstance(payload, Mapping):
        raise XmlError(f"{what} payload must be a map", payload)
    keys = set(payload)
    if not required <= keys or not keys <= required | optional:
        raise XmlError(
            f"{what} payload must have keys {sorted(required)} and optionally {sorted(optional)}",
            sorted(map(str, keys)))
