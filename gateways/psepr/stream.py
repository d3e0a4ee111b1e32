"""The PsEPR client stream, sans I/O: parse what a peer sends, build what we send.

This docstring is the wire specification of the client↔router stream
(DESIGN.md §4); it is the 2005 PsEPR wire, an XMPP-style stream::

    C: <?xml version='1.0'?>
       <stream:stream xmlns='jabber:client'
                      xmlns:stream='http://etherx.jabber.org/streams' to='HOST'>
    S: <?xml version='1.0'?>
       <stream:stream xmlns='jabber:client'
                      xmlns:stream='http://etherx.jabber.org/streams' from='HOST' id='ID'>
    C: <iq type='get' id='a1'><query xmlns='jabber:iq:auth'><username>SVC</username></query></iq>
    S: <iq type='result' id='a1'><query xmlns='jabber:iq:auth'>
         <username>SVC</username><password/><resource/></query></iq>
    C: <iq type='set' id='a2'><query xmlns='jabber:iq:auth'>
         <username>SVC</username><password>PW</password><resource>INST</resource></query></iq>
    S: <iq type='result' id='a2'/>                                   logged in, or
    S: <iq type='error' id='a2'><error code='401' type='auth'>
         <not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>
    C: <message to='psepr_registry@HOST'>
         <x xmlns='jabber:x:expire' seconds='60'/>
         <event xmlns='http://psepr.org/xs/event'>…</event>           (gateways.psepr.xml)
       </message>
    S: <message to='SVC@HOST/INST'>…one event…</message>            grants, routed events
    either: <stream:error><CONDITION xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>
              <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>why</text></stream:error>
    either: </stream:stream>

The username is the service name, the resource its instance. The iq get is
optional (XEP-0078 §3); a 2005 client sends it.

Reading a stream is :class:`gateways.psepr.inbound.StreamParser` (its
docstring says what it refuses and how); this module builds and reads stanzas.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from lxml import etree

from dsmt.errors import DsmtError
from dsmt.event import Event
from gateways.psepr import xml
from gateways.psepr.xml import MAX_STANZA, XmlError

__all__ = [
    "STREAMS_NS", "CLIENT_NS", "AUTH_NS", "EXPIRE_NS", "STREAM_ERRORS_NS", "STANZA_ERRORS_NS",
    "REGISTRY", "PORT", "MESSAGE", "IQ", "PRESENCE", "STREAM", "STREAM_ERROR",
    "STREAM_END", "CONDITIONS", "StreamError", "StreamHeader",
    "AuthRequest", "AuthReply", "stream_header", "stream_error", "parse_stream_error",
    "auth_get", "auth_set", "auth_fields", "auth_ok", "auth_refused", "iq_error", "parse_auth",
    "parse_auth_reply", "registry_jid", "message_stanza", "message_event", "message_envelope",
    "event_from_message", "message_expire", "message_error",
]

STREAMS_NS = "http://etherx.jabber.org/streams"
CLIENT_NS = "jabber:client"
AUTH_NS = "jabber:iq:auth"
EXPIRE_NS = "jabber:x:expire"
STREAM_ERRORS_NS = "urn:ietf:params:xml:ns:xmpp-streams"
STANZA_ERRORS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
REGISTRY = "psepr_registry"
PORT = 23345

MESSAGE = f"{{{CLIENT_NS}}}message"
IQ = f"{{{CLIENT_NS}}}iq"
PRESENCE = f"{{{CLIENT_NS}}}presence"
STREAM = f"{{{STREAMS_NS}}}stream"
STREAM_ERROR = f"{{{STREAMS_NS}}}error"
STREAM_END = b"</stream:stream>"

# RFC 6120 §4.9.3 stream error conditions.
CONDITIONS = frozenset({
    "bad-format", "bad-namespace-prefix", "conflict", "connection-timeout", "host-gone",
    "host-unknown", "improper-addressing", "internal-server-error", "invalid-from",
    "invalid-namespace", "invalid-xml", "not-authorized", "not-well-formed",
    "policy-violation", "remote-connection-failed", "reset", "resource-constraint",
    "restricted-xml", "see-other-host", "system-shutdown", "undefined-condition",
    "unsupported-encoding", "unsupported-feature", "unsupported-stanza-type",
    "unsupported-version",
})
# Legacy (pre-RFC 3920) error codes that 2005 clients read, by stanza error condition.
_LEGACY_CODES = {
    "bad-request": 400, "not-authorized": 401, "forbidden": 403, "item-not-found": 404,
    "not-allowed": 405, "not-acceptable": 406, "conflict": 409, "internal-server-error": 500,
    "feature-not-implemented": 501, "service-unavailable": 503,
}


class StreamError(DsmtError):
    """The stream is broken or refused; ``condition`` is the RFC 6120 condition.

    The right answer is ``stream_error(exc.condition, exc.text) + STREAM_END``
    and closing the connection.
    """

    def __init__(self, condition: str, text: str = "") -> None:
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition
        self.text = text


@dataclass(frozen=True, slots=True)
class StreamHeader:
    """The opening ``<stream:stream>``: its attributes (``to``, ``from``, ``id``, …)."""

    attrs: dict[str, str]

    @property
    def to(self) -> str | None:
        return self.attrs.get("to")

    @property
    def from_(self) -> str | None:
        return self.attrs.get("from")

    @property
    def id(self) -> str | None:
        return self.attrs.get("id")


# --------------------------------------------------------------------------- writers


def stream_header(*, to: str | None = None, from_: str | None = None, id: str | None = None,
                  version: str | None = None, namespace: str = CLIENT_NS) -> bytes:
    """The XML declaration and opening ``<stream:stream>`` tag (left open)."""
    el = etree.Element(STREAM, nsmap={None: namespace, "stream": STREAMS_NS})
    for name, value in (("to", to), ("from", from_), ("id", id), ("version", version)):
        if value is not None:
            el.set(name, value)
    tag = etree.tostring(el, encoding="utf-8")
    return b"<?xml version='1.0'?>" + tag[:-2] + b">"


def stream_error(condition: str, text: str | None = None) -> bytes:
    """A ``<stream:error>``; send it, then :data:`STREAM_END`, then close."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown stream error condition {condition!r}")
    el = etree.Element(STREAM_ERROR, nsmap={"stream": STREAMS_NS})
    etree.SubElement(el, f"{{{STREAM_ERRORS_NS}}}{condition}", nsmap={None: STREAM_ERRORS_NS})
    if text:
        etree.SubElement(el, f"{{{STREAM_ERRORS_NS}}}text",
                         nsmap={None: STREAM_ERRORS_NS}).text = _printable(text)
    return etree.tostring(el, encoding="utf-8")


def parse_stream_error(el: etree._Element) -> StreamError:
    """The StreamError that a received ``<stream:error>`` element reports."""
    condition, text = _error_condition(el, STREAM_ERRORS_NS)
    if condition == "undefined-condition" and not text:
        text = (el.text or "").strip()  # a pre-RFC 3920 server writes text only
    return StreamError(condition, text)


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """A ``jabber:iq:auth`` request: ``type`` "get" (which fields?) or "set" (log in)."""

    type: str
    id: str | None
    username: str | None
    password: str | None
    resource: str | None
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class AuthReply:
    """The router's answer to an auth iq: ``ok``, the fields it asks for, or the error."""

    id: str | None
    ok: bool
    fields: frozenset[str] = frozenset()
    code: int | None = None
    condition: str | None = None


def auth_get(id: str, username: str | None = None, *, to: str | None = None) -> bytes:
    """Client: ask which login fields the router wants (XEP-0078 §3)."""
    return _auth_iq("get", id, to, {"username": username})


def auth_set(id: str, username: str, password: str, resource: str | None = None, *,
             to: str | None = None) -> bytes:
    """Client: log in as service ``username``, instance ``resource``."""
    return _auth_iq("set", id, to, {"username": username, "password": password,
                                    "resource": resource or ""})


def auth_fields(id: str | None, username: str | None = None) -> bytes:
    """Router: the answer to an auth get: send username, password and resource."""
    iq = _iq("result", id)
    query = etree.SubElement(iq, f"{{{AUTH_NS}}}query", nsmap={None: AUTH_NS})
    for name in ("username", "password", "resource"):
        field = etree.SubElement(query, f"{{{AUTH_NS}}}{name}")
        if name == "username" and username:
            field.text = _printable(username)
    return etree.tostring(iq, encoding="utf-8")


def auth_ok(id: str | None) -> bytes:
    """Router: the login succeeded."""
    return etree.tostring(_iq("result", id), encoding="utf-8")


def auth_refused(id: str | None) -> bytes:
    """Router: the login failed (error 401, not-authorized)."""
    return iq_error(id, "auth", "not-authorized")


def iq_error(id: str | None, type: str, condition: str, text: str | None = None) -> bytes:
    """An ``<iq type='error'>`` with a stanza error (and its legacy code)."""
    iq = _iq("error", id)
    iq.append(_stanza_error(type, condition, text))
    return etree.tostring(iq, encoding="utf-8")


def parse_auth(el: etree._Element) -> AuthRequest | None:
    """The auth request in an ``<iq>`` element, or None if it is not one."""
    type_ = el.get("type")
    query = el.find(f"{{{AUTH_NS}}}query")
    if el.tag != IQ or query is None or type_ not in ("get", "set"):
        return None
    fields = {}
    for child in query.iterchildren("*"):
        qname = etree.QName(child)
        if qname.namespace == AUTH_NS and len(child) == 0:
            fields[qname.localname] = child.text or ""
    return AuthRequest(type_, el.get("id"), fields.get("username"), fields.get("password"),
                       fields.get("resource"), fields.get("digest"))


def parse_auth_reply(el: etree._Element) -> AuthReply | None:
    """Client: the router's answer in an ``<iq>`` result/error, or None if not one."""
    type_ = el.get("type")
    if el.tag != IQ or type_ not in ("result", "error"):
        return None
    if type_ == "result":
        query = el.find(f"{{{AUTH_NS}}}query")
        fields = frozenset() if query is None else frozenset(
            etree.QName(c).localname for c in query.iterchildren("*"))
        return AuthReply(el.get("id"), True, fields)
    error = el.find(f"{{{CLIENT_NS}}}error")
    code, condition = None, None
    if error is not None:
        raw = error.get("code")
        code = int(raw) if raw and raw.isdigit() and len(raw) < 4 else None
        named = [c for c in error.iterchildren("*")
                 if etree.QName(c).namespace == STANZA_ERRORS_NS
                 and etree.QName(c).localname != "text"]
        condition = etree.QName(named[0]).localname if named else None
    return AuthReply(el.get("id"), False, code=code, condition=condition)


def registry_jid(host: str) -> str:
    """Where clients address their events: ``psepr_registry@HOST``."""
    return f"{REGISTRY}@{host}"


def message_stanza(event: Event, to: str, expire: float | None = 60, *,
                   from_: str | None = None, max_size: int = MAX_STANZA) -> bytes:
    """A ``<message>`` carrying ``event``; raises XmlError if it cannot be encoded."""
    message = etree.Element(MESSAGE, nsmap={None: CLIENT_NS})
    message.set("to", _printable(to))
    if from_ is not None:
        message.set("from", _printable(from_))
    if expire is not None:
        x = etree.SubElement(message, f"{{{EXPIRE_NS}}}x", nsmap={None: EXPIRE_NS})
        x.set("seconds", str(int(expire)) if float(expire).is_integer() else repr(float(expire)))
    message.append(xml.event_to_element(event))
    data = etree.tostring(message, encoding="utf-8")
    if len(data) > max_size:
        raise XmlError(f"message for event {event.id} is {len(data)} bytes, "
                       f"over the {max_size} limit", condition="policy-violation")
    return data


def message_event(el: etree._Element) -> Event:
    """The event carried by a received ``<message>``; raises XmlError."""
    return message_envelope(el).event()


def message_envelope(el: etree._Element) -> xml.Envelope:
    """What routing needs from the event in a received ``<message>``; raises XmlError.

    Validates as :func:`message_event` does (:func:`gateways.psepr.xml.envelope`).
    """
    if el.tag != MESSAGE:
        raise XmlError("not a message stanza", el.tag)
    events = [child for child in el if child.tag == xml.EVENT_TAG]
    if len(events) != 1:
        raise XmlError(f"a message carries exactly one event, this one {len(events)}")
    return xml.envelope(events[0])


event_from_message = message_event


def message_expire(el: etree._Element) -> float | None:
    """The ``jabber:x:expire`` seconds of a ``<message>``, or None if absent or unreadable."""
    x = el.find(f"{{{EXPIRE_NS}}}x")
    try:
        return None if x is None else float(x.get("seconds", ""))
    except ValueError:
        return None


def message_error(el: etree._Element, type: str, condition: str,
                  text: str | None = None, *, echo: bool = False) -> bytes:
    """The error answer to a received ``<message>`` (back to its sender).

    With ``echo`` the refused content (the ``<event>``) goes back too, as
    RFC 6120 §8.3.1 allows, so the sender can tell which request failed.
    """
    message = etree.Element(MESSAGE, nsmap={None: CLIENT_NS})
    message.set("type", "error")
    for ours, theirs in (("to", "from"), ("from", "to"), ("id", "id")):
        value = el.get(theirs)
        if value is not None:
            message.set(ours, value)
    if echo:
        for child in el:
            if child.tag != f"{{{EXPIRE_NS}}}x":
                message.append(copy.deepcopy(child))
    message.append(_stanza_error(type, condition, text))
    return etree.tostring(message, encoding="utf-8")


def message_error_reason(el: etree._Element) -> tuple[str, str]:
    """``(condition, text)`` of a received ``<message type="error">``."""
    error = el.find(f"{{{CLIENT_NS}}}error")
    if error is None:
        return "undefined-condition", ""
    return _error_condition(error, STANZA_ERRORS_NS)


def _error_condition(error: etree._Element, namespace: str) -> tuple[str, str]:
    """The RFC 6120 condition element and ``<text>`` under an error element."""
    condition, text = "undefined-condition", ""
    for child in error.iterchildren("*"):
        qname = etree.QName(child)
        if qname.namespace == namespace:
            if qname.localname == "text":
                text = child.text or ""
            else:
                condition = qname.localname
    return condition, text


def _iq(type_: str, id: str | None, to: str | None = None) -> etree._Element:
    iq = etree.Element(IQ, nsmap={None: CLIENT_NS})
    iq.set("type", type_)
    if id is not None:
        iq.set("id", _printable(id))
    if to is not None:
        iq.set("to", _printable(to))
    return iq


def _auth_iq(type_: str, id: str, to: str | None, fields: dict[str, str | None]) -> bytes:
    iq = _iq(type_, id, to)
    query = etree.SubElement(iq, f"{{{AUTH_NS}}}query", nsmap={None: AUTH_NS})
    for name, value in fields.items():
        if value is not None:
            etree.SubElement(query, f"{{{AUTH_NS}}}{name}").text = _printable(value)
    return etree.tostring(iq, encoding="utf-8")


def _stanza_error(type_: str, condition: str, text: str | None) -> etree._Element:
    error = etree.Element(f"{{{CLIENT_NS}}}error")
    error.set("type", type_)
    code = _LEGACY_CODES.get(condition)
    if code is not None:
        error.set("code", str(code))
    etree.SubElement(error, f"{{{STANZA_ERRORS_NS}}}{condition}",
                     nsmap={None: STANZA_ERRORS_NS})
    if text:
        etree.SubElement(error, f"{{{STANZA_ERRORS_NS}}}text",
                         nsmap={None: STANZA_ERRORS_NS}).text = _printable(text)
    return error


def _printable(text: str) -> str:
    """``text`` with the characters XML cannot carry replaced by U+FFFD (for free text)."""
    return xml.XML_UNSAFE.sub("\ufffd", text)
