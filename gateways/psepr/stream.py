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

:class:`StreamParser` turns bytes, in chunks of any size, into items: one
:class:`StreamHeader`, then each complete top-level stanza as a detached lxml
element, then :data:`END` when ``</stream:stream>`` arrives. It drives one
:func:`gateways.psepr.xml.hardened_parser` (libxml2 builds the tree in C;
Python only reads the parser's start/end events) over the whole stream:
each complete stanza is taken out of the stream's tree before it is
returned, and whitespace between stanzas is dropped, so the stream's tree
holds at most the one stanza in progress and memory does not grow with the
length of the stream. A stanza that relies on the stream's default
namespace is returned as a copy that declares it (``<message
xmlns="jabber:client">``, never a made-up prefix). It refuses, with a
:class:`StreamError` carrying the RFC 6120 condition:

- ``not-well-formed``: malformed XML, undefined entity references, anything
  after ``</stream:stream>`` but whitespace; bytes that are not UTF-8 and
  control characters XML cannot carry, as soon as they arrive (a multi-byte
  UTF-8 sequence cut by the end of a chunk is judged when the rest comes);
- ``restricted-xml``: DOCTYPE (so entity declarations: billion laughs, XXE)
  and comments or processing instructions before the stream element are
  refused from the raw bytes before libxml2 sees them
  (:class:`gateways.psepr.xml.Prolog`); comments and processing
  instructions inside the stream when the parser reports them (a DOCTYPE
  there is not well-formed);
- ``policy-violation``: a stanza over ``max_stanza`` bytes (default 64 KiB),
  elements nested deeper than ``max_depth`` (the stream element counts as
  depth 1; also when libxml2 stops first at its own limit of 256). lxml
  reports no byte offsets, so bytes are counted in slices of :data:`SLICE`
  bytes fed to libxml2 one at a time: a stanza of at most ``max_stanza``
  bytes always passes, one of more than ``max_stanza + 2 * SLICE`` never
  does, and libxml2 never buffers more than that of one stanza. The same
  cap applies to the header (and the bytes before it) and to anything else
  that arrives without completing a stanza;
- ``invalid-namespace``: a root that is not ``stream`` in
  ``http://etherx.jabber.org/streams``, or a default namespace other than
  the parser's content namespace (``jabber:client``);
- ``unsupported-stanza-type``: a top-level element that is neither
  ``message``/``iq``/``presence`` in the content namespace nor an element in
  the streams namespace (``stream:error``, ``stream:features``);
- ``bad-format``: text other than whitespace between stanzas.

Raw stanzas: with ``raw=True`` (the router's connections),
:meth:`StreamParser.raw` gives a ``<message>`` of the last ``feed()`` as
the bytes it arrived in, so the router forwards it without serializing the
tree again (and byte for byte as its publisher wrote it). The bytes are
self-contained: a message inheriting the stream's default namespace gets
``xmlns="jabber:client"`` added to its start tag. They are given only where
certain (:mod:`gateways.psepr._raw` says how boundaries are found without
byte offsets from libxml2), and only when the stream element declares
nothing but the default namespace and ``stream`` and the message does not
use the ``stream`` prefix; otherwise None, and the caller serializes the
element. The first stanza after the stream header (normally the login
iq) is one of those; the messages after a login iq get their bytes.

After a StreamError the parser is dead: every later ``feed()`` raises it
again. Stanzas completed in the same ``feed()`` call before the error are
not returned. Nothing but StreamError escapes ``feed()``.

Known limit: lxml interns element and attribute names in a dictionary per
thread that is never emptied, so a peer that keeps inventing new names
grows it (about 36 bytes per distinct name); the router's per-connection
rate limits bound how fast.
"""

from __future__ import annotations

import codecs
import copy
from dataclasses import dataclass

from lxml import etree

from dsmt.errors import DsmtError
from dsmt.event import Event
from gateways.psepr import _raw, xml
from gateways.psepr.xml import MAX_DEPTH, MAX_STANZA, XmlError

__all__ = [
    "STREAMS_NS", "CLIENT_NS", "AUTH_NS", "EXPIRE_NS", "STREAM_ERRORS_NS", "STANZA_ERRORS_NS",
    "REGISTRY", "PORT", "SLICE", "MESSAGE", "IQ", "PRESENCE", "STREAM", "STREAM_ERROR",
    "STREAM_END", "CONDITIONS", "END", "StreamError", "StreamHeader", "StreamParser",
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
SLICE = 1024  # bytes per parser.feed(): the granularity of the stanza size cap

MESSAGE = f"{{{CLIENT_NS}}}message"
IQ = f"{{{CLIENT_NS}}}iq"
PRESENCE = f"{{{CLIENT_NS}}}presence"
STREAM = f"{{{STREAMS_NS}}}stream"
STREAM_ERROR = f"{{{STREAMS_NS}}}error"
STREAM_END = b"</stream:stream>"
_CONTROL = bytes(b for b in range(0x20) if b not in b"\t\n\r")  # never in XML 1.0

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


class _End:
    def __repr__(self) -> str:
        return "stream.END"


END = _End()  # the item for </stream:stream>


class StreamParser:
    """Incremental parser of one inbound stream; feed it bytes as they arrive."""

    def __init__(self, *, max_stanza: int = MAX_STANZA, max_depth: int = MAX_DEPTH,
                 namespace: str = CLIENT_NS, raw: bool = False) -> None:
        self.max_stanza = max_stanza
        self.max_depth = max_depth
        self.namespace = namespace
        self.header: StreamHeader | None = None
        self.ended = False
        self._stanzas = frozenset(
            f"{{{namespace}}}{name}" for name in ("message", "iq", "presence"))
        self._parser = xml.hardened_parser()
        self._prolog: xml.Prolog | None = xml.Prolog()
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._utf8_open = False  # the decoder holds the start of a multi-byte sequence
        self._root: etree._Element | None = None
        self._depth = 0
        self._declares = False   # the next stanza declares its own default namespace
        self._own_ns = False     # the open stanza does
        self._pending = 0
        self._error: StreamError | None = None
        self._bounds = _raw.Boundaries(self._stanzas) if raw else None
        self._raws: dict[etree._Element, bytes] = {}
        self._inheritors: set[etree._Element] = set()  # stanzas of the last feed that
        # do not declare the default namespace themselves
        self._inherits: bytes | None = None  # the default namespace, if stanzas may rely on it

    def raw(self, stanza: etree._Element) -> bytes | None:
        """The bytes a ``<message>`` of the last ``feed()`` arrived in, if certain.

        Only with ``raw=True``; the bytes declare the stream's default
        namespace if the stanza inherits it, so they can be sent on as they
        are ("Raw stanzas"). None for other stanzas, and where not certain.
        """
        return self._raws.get(stanza)

    def forget(self) -> None:
        """Drop what :meth:`raw` holds (it keeps the last feed's messages alive until then)."""
        if self._raws or self._inheritors:
            self._raws, self._inheritors = {}, set()

    def feed(self, data: bytes) -> list[StreamHeader | etree._Element | _End]:
        """The items completed by ``data``, in order; raises StreamError."""
        if self._error is not None:
            raise self._error
        items: list = []
        self.forget()
        try:
            self._check_bytes(data)
            if self._prolog is not None:
                held = self._prolog.feed(data)
                if held is None:
                    if len(self._prolog.held) > self.max_stanza:
                        raise XmlError(f"stream header over {self.max_stanza} bytes",
                                       condition="policy-violation")
                    return items
                self._prolog = None
                data = held
            bounds = self._bounds
            if bounds is not None:
                bounds.cuts(data)
            for start in range(0, len(data), SLICE):
                piece = data[start:start + SLICE]
                done = len(items)
                if self._feed(piece, items):
                    self._pending = 0
                else:
                    self._pending += len(piece)
                    if self._pending > self.max_stanza:
                        raise XmlError(f"stanza over {self.max_stanza} bytes",
                                       condition="policy-violation")
                if bounds is not None and len(items) > done:
                    ended = [i for i in items[done:]
                             if i.__class__ is not StreamHeader and i is not END]
                    if ended:
                        self._bounded(ended, bounds.ended(start, start + len(piece), ended))
            if bounds is not None:
                bounds.trim()
        except Exception as exc:  # lxml raises several types on garbage; all end the stream
            self._error = _stream_error(exc)
            raise self._error from None
        if items:
            if isinstance(items[0], StreamHeader):
                self.header = items[0]
            if items[-1] is END:
                self.ended = True
        return items

    def _check_bytes(self, data: bytes) -> None:
        """Refuse bytes that can never be XML at once, not when more input follows."""
        if len(data.translate(None, _CONTROL)) != len(data):
            raise XmlError("a control character XML cannot carry", data[:64],
                           condition="not-well-formed")
        if data.isascii() and not self._utf8_open:
            return  # ASCII is UTF-8: the common case needs no decoding
        try:
            text = self._utf8.decode(data)
        except UnicodeDecodeError as exc:
            raise XmlError(f"not UTF-8 ({exc.reason})", data[:64],
                           condition="not-well-formed") from None
        self._utf8_open = bool(self._utf8.getstate()[0])  # a sequence cut by the chunk's end
        if "\ufffe" in text or "\uffff" in text:
            raise XmlError("a character XML cannot carry", data[:64],
                           condition="not-well-formed")

    def _feed(self, piece: bytes, items: list) -> bool:
        """Parse ``piece``; True if it completed a stanza, the header or a keepalive."""
        try:
            self._parser.feed(piece)
        except etree.XMLSyntaxError:
            self._take(items)  # a refusal among the events before the error explains it
            raise
        return self._take(items)

    def _bounded(self, stanzas: list, found: list[bytes | None] | None) -> None:
        """Keep the bytes of the messages that just ended, where certain and self-contained."""
        if found is None or self._inherits is None:
            return
        for stanza, data in zip(stanzas, found):
            if data is not None and stanza.tag == MESSAGE:
                data = _raw.self_contained(
                    data, b"<message", self._inherits if stanza in self._inheritors else None)
                if data is not None:
                    self._raws[stanza] = data

    def _take(self, items: list) -> bool:
        boundary = False
        depth = self._depth
        for event, el in self._parser.read_events():
            if event == "start":
                depth += 1
                if depth == 2:
                    if el.tag not in self._stanzas:
                        self._check_stanza(el.tag)
                    self._own_ns, self._declares = self._declares, False
                elif depth > self.max_depth:
                    raise xml.too_deep(self.max_depth, el.tag)
                elif depth == 1:
                    self._open_stream(el, items)
                    boundary = True
            elif event == "end":
                depth -= 1
                if depth == 1:
                    stanza = self._detach(el)
                    items.append(stanza)
                    if not self._own_ns and self._bounds is not None:
                        self._inheritors.add(stanza)
                    boundary = True
                elif depth == 0:
                    items.append(END)
                    boundary = True
            elif event == "start-ns":
                if depth == 1 and not el[0]:
                    self._declares = True
            else:
                raise xml.restricted(event)
        self._depth = depth
        root = self._root
        if root is not None and depth and root.text is not None:
            # Text between stanzas: only whitespace (keepalives), never kept.
            if root.text.strip():
                raise XmlError("text between stanzas", root.text[:64], condition="bad-format")
            root.text = None
            boundary = True
        return boundary

    def _open_stream(self, root: etree._Element, items: list) -> None:
        if root.tag != STREAM:
            raise XmlError(f"the stream must open with {{{STREAMS_NS}}}stream", root.tag,
                           condition="invalid-namespace")
        default = root.nsmap.get(None)
        if default != self.namespace:
            raise XmlError(f"the default namespace must be {self.namespace}", default,
                           condition="invalid-namespace")
        self._root = root
        if root.nsmap == {None: self.namespace, "stream": STREAMS_NS}:
            self._inherits = self.namespace.encode()
        items.append(StreamHeader(dict(root.attrib)))

    def _check_stanza(self, tag: str) -> None:
        if tag.__class__ is str and tag.startswith(f"{{{STREAMS_NS}}}"):
            return
        raise XmlError("unsupported stanza", tag, condition="unsupported-stanza-type")

    def _detach(self, el: etree._Element) -> etree._Element:
        """Take a complete stanza out of the stream's tree (which so stays empty)."""
        tail = el.tail
        if tail is not None and tail.strip():
            raise XmlError("text between stanzas", tail[:64], condition="bad-format")
        if not self._own_ns:
            # Detached, a stanza that inherits the stream's default namespace would be
            # written with a made-up prefix (ns0:message); a copy declares it.
            stanza = copy.deepcopy(el)
        else:
            stanza = el
        self._root.remove(el)
        stanza.tail = None
        return stanza


def _stream_error(exc: BaseException) -> StreamError:
    if isinstance(exc, StreamError):
        return exc
    if isinstance(exc, XmlError):
        return StreamError(exc.condition, str(exc))
    if isinstance(exc, etree.XMLSyntaxError):
        return StreamError("not-well-formed", str(exc))
    return StreamError("not-well-formed", f"{type(exc).__name__}: {exc}")


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
