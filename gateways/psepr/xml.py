"""PsEPR XML events: the wide-area wire format of a DSMT event (DESIGN.md §3.3).

This docstring is the wire specification; this module is the only place
that encodes or decodes a PsEPR XML event (its private parts
:mod:`gateways.psepr._record` and :mod:`gateways.psepr._scalars` hold the
typed record encoding and the scalar rules), and it owns the hardened
parser that :mod:`gateways.psepr.stream` uses too.

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
satisfy :func:`dsmt.channels.validate`; a lease event (type
:data:`dsmt.event.LEASE`) may also be on ``/``, which means everything
(:func:`dsmt.channels.validate_subscription`). Unknown extra children of
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
    DSMT addition: an optional child ``echo`` (``true`` | ``false``, key
    ``"echo": bool`` only when present); ``false`` asks the router not to
    send the lease holder the events it publishes itself (see
    :mod:`gateways.psepr.routes`). A router that does not know it ignores
    it, as 2005 routers ignore unknown children: the holder then gets its
    own events back, as before.

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

Decoding: :func:`event_from_element` builds the :class:`dsmt.event.Event`;
:func:`envelope` validates exactly as much (same errors) but builds only
what routing needs — channel, type, ``to``, sender, id — and decodes the
payload of lease events only; :meth:`Envelope.event` completes it when the
whole event is needed.

Parsing (:func:`hardened_parser`, :class:`Prolog`, :func:`parse`): libxml2
through lxml, building the tree natively (no Python callback per element),
with no DTD loading, no external entities, no network, ``huge_tree`` off
(so libxml2 keeps its own hard limits, such as 256 levels of nesting) and
input forced to UTF-8. Restricted XML is refused with ``restricted-xml``:

- a DOCTYPE (so entity declarations: billion laughs, XXE), comment or
  processing instruction before the root element is refused by
  :class:`Prolog`, which reads the raw bytes before the root element and
  holds them back until they are known to be harmless, so libxml2 never
  sees a declaration. A DOCTYPE cannot appear anywhere else in a
  well-formed document, so the only references that can appear are the
  five predefined entities and character references (an undefined one is
  not well-formed); they are resolved;
- comments and processing instructions after that are reported by the
  parser as events and refused (they were parsed, but mean nothing).

Elements nested deeper than ``max_depth`` (default :data:`MAX_DEPTH`, the
root counts as 1) are refused with ``policy-violation``, also when libxml2
stops first at its own limit. Documents over ``max_size`` bytes (default
:data:`MAX_STANZA`, 64 KiB) are refused before parsing. Every bad input
raises :class:`XmlError` naming what is wrong; its ``condition`` is the
XMPP stream error condition that fits.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from lxml import etree

from dsmt import channels
from dsmt.errors import ChannelError
from dsmt.event import LEASE, Address, Event

from gateways.psepr import _payloads
from gateways.psepr._parse import (
    MAX_DEPTH, MAX_STANZA, PULL_EVENTS, Prolog, check_events, hardened_parser, parse,
    restricted, too_deep)
from gateways.psepr._payloads import LEASE_OPS, RECORD_PREFIX
from gateways.psepr._record import MAX_RECORD_DEPTH
from gateways.psepr._scalars import (
    MAX_META_INT, XML_UNSAFE, XmlError, bounded, meta_int, parse_float, safe)

__all__ = [
    "EVENT_NS", "META_NS", "RECORD_PREFIX", "MAX_STANZA", "MAX_DEPTH", "MAX_RECORD_DEPTH",
    "EVENT_TAG", "XML_UNSAFE", "XmlError", "hardened_parser", "Prolog", "parse",
    "event_to_element", "event_to_bytes", "event_from_element", "event_from_bytes",
    "Envelope", "envelope", "PULL_EVENTS", "check_events", "too_deep", "restricted",
    "LEASE_OPS",
]

EVENT_NS = "http://psepr.org/xs/event"
META_NS = "http://dsmt.org/xs/event-meta"

EVENT_TAG = f"{{{EVENT_NS}}}event"
_TO, _FROM, _PAYLOAD = (f"{{{EVENT_NS}}}{n}" for n in ("to", "from", "payload"))
_CHANNEL, _SERVICE, _INSTANCE = (f"{{{EVENT_NS}}}{n}" for n in ("channel", "service", "instance"))
_ID, _SEQ, _EPOCH, _TS, _RETAIN = (
    f"{{{META_NS}}}{n}" for n in ("id", "seq", "epoch", "ts", "retain"))
_NSMAP = {None: EVENT_NS, "d": META_NS}

# Channels and addresses repeat: remember valid channels and share Address objects.
_CACHE = 4096
_valid_channels: dict[str, None] = {}
_addresses: dict[tuple[str, str | None], Address] = {}


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
    root.set(_ID, safe("id", event.id, 128))
    root.set(_SEQ, str(_meta_int("seq", event.seq)))
    root.set(_EPOCH, str(_meta_int("epoch", event.epoch)))
    if type(event.ts) not in (float, int) or isinstance(event.ts, bool):
        raise XmlError("ts must be a float", event.ts)
    root.set(_TS, repr(float(event.ts)))
    if event.retain:
        root.set(_RETAIN, "true")
    to = etree.SubElement(root, _TO)
    etree.SubElement(to, _CHANNEL).text = safe("channel", _channel(event.channel, event.type))
    if event.to is not None:
        _address_to(to, event.to)
    if not isinstance(event.sender, Address):
        raise XmlError("sender must be an Address", event.sender)
    _address_to(etree.SubElement(root, _FROM), event.sender)
    root.append(_payloads.to_element(event.type, event.payload))
    return root


def event_from_element(el: etree._Element) -> Event:
    """The event that the ``<event>`` element ``el`` carries; raises XmlError."""
    return envelope(el).event()


class Envelope:
    """A received ``<event>``, validated like a full decode, with what routing needs.

    ``channel``, ``type``, ``to``, ``sender``, ``id`` and ``payload`` are
    decoded; :meth:`event` adds the metadata and builds the Event.
    """

    __slots__ = ("channel", "type", "to", "sender", "id", "payload", "element")

    def __init__(self, channel: str, type: str, to: Address | None, sender: Address, id: str,
                 payload: Any, element: etree._Element) -> None:
        self.channel = channel
        self.type = type
        self.to = to
        self.sender = sender
        self.id = id
        self.payload = payload
        self.element = element

    def __repr__(self) -> str:
        return f"<Envelope {self.id} {self.type} on {self.channel} from {self.sender}>"

    def event(self) -> Event:
        """The whole event (the metadata was validated by :func:`envelope`)."""
        get = self.element.get
        ts = get(_TS)
        return Event(
            channel=self.channel, type=self.type, sender=self.sender, payload=self.payload,
            id=self.id, seq=meta_int("seq", get(_SEQ)), epoch=meta_int("epoch", get(_EPOCH)),
            ts=time.time() if ts is None else parse_float("ts", ts),
            retain=_retain(get(_RETAIN, "false")), to=self.to)


def envelope(el: etree._Element) -> Envelope:
    """Validate the ``<event>`` element ``el`` and read what routing needs; raises XmlError."""
    if el.tag != EVENT_TAG:
        raise XmlError(f"expected {{{EVENT_NS}}}event", el.tag)
    to_el = from_el = payload_el = None
    for child in el:
        tag = child.tag
        if tag == _TO:
            if to_el is not None:
                raise XmlError("more than one to element")
            to_el = child
        elif tag == _FROM:
            if from_el is not None:
                raise XmlError("more than one from element")
            from_el = child
        elif tag.__class__ is str and (tag[-8:] == "}payload" or tag == "payload"):
            # The payload element is in the namespace of the event type, not ours.
            if payload_el is not None:
                raise XmlError("more than one payload element")
            payload_el = child
    if to_el is None:
        raise XmlError("event without to element")
    if from_el is None:
        raise XmlError("event without from element")
    if payload_el is None:
        raise XmlError("event without payload element")
    tag = payload_el.tag
    type_ = tag[1:tag.index("}")] if tag[0] == "{" else ""
    if not type_:
        raise XmlError("payload without a namespace (the event type)")
    channel_el, to = _address_from(to_el, "to", True)
    if channel_el is None:
        raise XmlError("to without channel")
    channel = _channel(_text(channel_el), type_)
    sender = _address_from(from_el, "from", False)[1]
    if sender is None:
        raise XmlError("from without service")
    payload = _payloads.from_element(type_, payload_el)
    id_ = _check_meta(el)
    if id_ is None:
        id_ = uuid.uuid4().hex
    return Envelope(channel, type_, to, sender, id_, payload, el)


def _check_meta(el: etree._Element) -> str | None:
    """Refuse malformed metadata without building it; returns ``d:id``."""
    id_ = None
    for name, text in el.items():
        if name == _ID:
            if not 0 < len(text) <= 128:
                raise XmlError("id must have 1..128 chars", text)
            id_ = text
        elif name == _SEQ or name == _EPOCH:
            # Up to 18 ASCII digits is always in range: the common case needs no regex.
            if not (len(text) < 19 and text.isdigit() and text.isascii()):
                meta_int(name[len(META_NS) + 2:], text)
        elif name == _TS:
            parse_float("ts", text)
        elif name == _RETAIN:
            _retain(text)
    return id_


def _channel(channel: object, type_: object) -> str:
    """``channel`` if an event of ``type_`` may be on it, else XmlError."""
    if type(channel) is str and channel in _valid_channels:
        return channel
    try:
        if type_ == LEASE and channel == channels.EVERYTHING:
            return channels.EVERYTHING  # a lease on "/" receives everything
        channels.validate(channel)
    except ChannelError as exc:
        raise XmlError(str(exc), channel) from None
    if len(_valid_channels) >= _CACHE:
        _valid_channels.clear()
    _valid_channels[channel] = None
    return channel


def _meta_int(name: str, value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_META_INT:
        raise XmlError(f"{name} must be an int in 0..2**63-1", value)
    return value


def _retain(text: str) -> bool:
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise XmlError("retain must be true or false", text)


def _address_to(parent: etree._Element, address: Address) -> None:
    etree.SubElement(parent, _SERVICE).text = safe("service", address.service, 256)
    if address.instance is not None:
        etree.SubElement(parent, _INSTANCE).text = safe("instance", address.instance, 256)


def _address_from(el: etree._Element, what: str, with_channel: bool
                  ) -> tuple[etree._Element | None, Address | None]:
    """The ``channel`` child (if asked for) and the address in ``el`` (None: no service)."""
    channel_el = service_el = instance_el = None
    for child in el:  # the first of each counts
        tag = child.tag
        if tag == _SERVICE:
            if service_el is None:
                service_el = child
        elif tag == _INSTANCE:
            if instance_el is None:
                instance_el = child
        elif tag == _CHANNEL and with_channel and channel_el is None:
            channel_el = child
    if service_el is None:
        if instance_el is not None:
            raise XmlError(f"{what} has an instance but no service")
        return channel_el, None
    service = bounded(f"{what} service", _text(service_el), 256)
    instance = None if instance_el is None else bounded(
        f"{what} instance", _text(instance_el), 256)
    key = (service, instance)
    address = _addresses.get(key)
    if address is None:
        if len(_addresses) >= _CACHE:
            _addresses.clear()
        address = _addresses[key] = Address(service, instance)
    return channel_el, address


def _text(el: etree._Element) -> str:
    if len(el):
        raise XmlError(f"<{etree.QName(el).localname}> must hold text only")
    return el.text or ""
