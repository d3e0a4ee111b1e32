"""Reading the PsEPR client stream (:mod:`gateways.psepr.stream`), sans I/O.

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

from lxml import etree

from gateways.psepr import _raw, xml
from gateways.psepr.stream import (
    CLIENT_NS, MESSAGE, STREAM, STREAMS_NS, StreamError, StreamHeader,
)
from gateways.psepr.xml import MAX_DEPTH, MAX_STANZA, XmlError

__all__ = ["SLICE", "END", "StreamParser"]

SLICE = 1024  # bytes per parser.feed(): the granularity of the stanza size cap
_CONTROL = bytes(b for b in range(0x20) if b not in b"\t\n\r")  # never in XML 1.0


class _End:
    def __repr__(self) -> str:
        return "inbound.END"


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
        self._parser_fresh = True  # nothing fed to it yet (see _feed)
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
            if self._parser_fresh:
                # lxml starts libxml2's push parser with up to 4 bytes of the first
                # feed() and parses them only at the next call: a first piece of 4
                # bytes or fewer would wait unjudged where the same bytes cut
                # otherwise are refused. One byte first: every piece is parsed.
                self._parser_fresh = False
                self._parser.feed(piece[:1])
                piece = piece[1:]
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
