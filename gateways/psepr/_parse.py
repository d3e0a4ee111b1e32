"""The hardened XML parser of the PsEPR gateway: untrusted bytes to lxml trees.

Private to :mod:`gateways.psepr.xml` (which re-exports it and specifies it
in its docstring, "Parsing"); :mod:`gateways.psepr.stream` drives the same
parser incrementally.
"""

from __future__ import annotations

import re

from lxml import etree

from gateways.psepr._scalars import XmlError

MAX_STANZA = 65536
MAX_DEPTH = 64
PULL_EVENTS = ("start", "end", "start-ns", "comment", "pi")
_BOM = b"\xef\xbb\xbf"
_SPACE = re.compile(rb"[ \t\r\n]*")


def hardened_parser() -> etree.XMLPullParser:
    """An lxml pull parser for untrusted bytes: feed it, then ``read_events()``.

    It reports :data:`PULL_EVENTS`; the caller refuses comments and PIs and
    counts depth (see :func:`parse`), and sends the bytes before the root
    element through a :class:`Prolog` first. The parser itself never loads a
    DTD or an external entity, touches the network or lifts libxml2's limits.
    """
    return etree.XMLPullParser(
        events=PULL_EVENTS,
        encoding="utf-8",
        resolve_entities="internal",  # only &amp; and char refs: a DOCTYPE never gets through
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        collect_ids=False,
        remove_blank_text=False,
    )


class Prolog:
    """The bytes before a document's root element, held until known harmless.

    Allowed: a UTF-8 byte order mark, the XML declaration, whitespace.
    :meth:`feed` returns every byte received so far once the root element's
    ``<`` is among them (the parser may have them all), None while it is
    not; it raises XmlError (``restricted-xml``) on a DOCTYPE, comment or
    processing instruction. Scanning is incremental: each byte is looked at
    about once, however the input is cut. Anything else that starts with
    ``<`` is passed on for libxml2 to judge; anything that does not is
    refused at once (``not-well-formed``): libxml2 may wait for more input
    before refusing it, so the answer would depend on how the input is cut.
    """

    def __init__(self) -> None:
        self.held = bytearray()
        self._pos = 0           # bytes before this are known harmless
        self._declared = False  # BOM and XML declaration are behind _pos

    def feed(self, data: bytes) -> bytes | None:
        buf = self.held
        buf += data
        if not self._declared and not self._declaration(buf):
            return None
        pos = self._pos = _SPACE.match(buf, self._pos).end()
        if pos + 1 >= len(buf):
            return None
        if buf[pos] == 0x3C:  # "<"
            after = buf[pos + 1]
            if after == 0x21:  # "<!"
                what = "DOCTYPE is" if buf.startswith(b"<!DOCTYPE", pos) else "comments are"
                raise XmlError(f"{what} not allowed", bytes(buf[pos:pos + 32]),
                               condition="restricted-xml")
            if after == 0x3F:  # "<?"
                raise XmlError("processing instructions are not allowed",
                               bytes(buf[pos:pos + 32]), condition="restricted-xml")
        else:
            raise XmlError("not XML: no element where the document starts",
                           bytes(buf[pos:pos + 32]), condition="not-well-formed")
        return bytes(buf)

    def _declaration(self, buf: bytearray) -> bool:
        """Skip the BOM and XML declaration; False while they may be incomplete."""
        start = 3 if buf.startswith(_BOM) else 0
        if start == 0 and len(buf) < 3 and _BOM.startswith(buf):
            return False
        head = bytes(buf[start:start + 6])
        if len(head) < 6 and b"<?xml".startswith(head[:5]):
            return False
        if head[:5] == b"<?xml" and head[5:] in (b" ", b"\t", b"\r", b"\n"):
            end = buf.find(b"?>", max(start + 6, self._pos))
            if end < 0:
                self._pos = max(start + 6, len(buf) - 1)
                return False
            start = end + 2
        self._pos = start
        self._declared = True
        return True


def parse(data: bytes, max_size: int = MAX_STANZA, max_depth: int = MAX_DEPTH) -> etree._Element:
    """The root element of the XML document ``data``; raises XmlError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise XmlError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise XmlError(f"document of {len(data)} bytes is over the {max_size} limit",
                       condition="policy-violation")
    data = bytes(data)
    Prolog().feed(data)
    parser = hardened_parser()
    try:
        parser.feed(data)
        root = parser.close()
    except (etree.LxmlError, ValueError) as exc:
        check_events(parser.read_events(), max_depth)  # a refusal explains the failure
        raise XmlError(f"not well-formed XML ({exc})", data,
                       condition="not-well-formed") from None
    check_events(parser.read_events(), max_depth)
    return root


def check_events(events, max_depth: int, depth: int = 0) -> int:
    """Refuse comments, PIs and nesting past ``max_depth`` among parser events.

    Returns the depth after ``events``; raises XmlError.
    """
    for event, el in events:
        if event == "start":
            depth += 1
            if depth > max_depth:
                raise too_deep(max_depth, el.tag)
        elif event == "end":
            depth -= 1
        elif event != "start-ns":
            raise restricted(event)
    return depth


def too_deep(max_depth: int, tag: object) -> XmlError:
    return XmlError(f"elements nested deeper than {max_depth}", tag,
                    condition="policy-violation")


def restricted(event: str) -> XmlError:
    what = "comments are" if event == "comment" else "processing instructions are"
    return XmlError(f"{what} not allowed", condition="restricted-xml")
