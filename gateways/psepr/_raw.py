"""Where each stanza of a stream starts and ends in the bytes received.

Private to :class:`gateways.psepr.inbound.StreamParser`, which specifies it
("Raw stanzas" in its module docstring). A router forwards a ``<message>``
as the bytes it arrived in instead of serializing the parsed tree again;
libxml2 reports no byte offsets, so the boundaries are found here, and only
where they are certain:

- the end tags that can close a stanza (``</message>``, ``</iq>``,
  ``</presence>``, unprefixed) are found in the bytes kept since the
  last boundary, so one split across two reads is found too
  (:meth:`Boundaries.cuts`);
- libxml2 reports an element's end as soon as the ``>`` of its end tag is
  fed (a test pins it), so each unprefixed stanza of those names with
  content (not ``<message/>``, whose end is no such tag) ends at one of the end tags
  found in the piece of bytes whose feeding reported its end. When every
  stanza that ended in a piece is such a stanza and the piece holds as many
  of those end tags as stanzas ended, they pair up in order and are
  certain: each stanza runs from the end of the one before, after
  whitespace, to its end tag (:meth:`Boundaries.ended`). An end tag nested
  in a stanza or inside CDATA makes the counts differ;
- otherwise the next start is unknown, so the stanza after it gets no
  bytes; the first stanza after the stream header gets none either.
  Certainty returns after the next piece whose ends are certain.

A stanza's bytes rely on nothing declared outside it only if the stream
element declares nothing but the default namespace and ``stream`` and the
stanza does not use the ``stream`` prefix; :func:`self_contained` then
declares the stream's default namespace on a stanza that inherits it.
"""

from __future__ import annotations

import bisect
import re

from lxml import etree

_CUT = re.compile(rb"</(?:message|iq|presence)[ \t\r\n]*>")
_SPACE = b" \t\r\n"


class Boundaries:
    """The bytes of one stream since its last certain stanza boundary."""

    def __init__(self, stanzas: frozenset[str]) -> None:
        self.buf = bytearray()
        self.start: int | None = None  # where the stanza in progress starts in buf, if known
        self._stanzas = stanzas        # the tags of stanzas whose end tags are found
        self._base = 0                 # where the data of the current feed starts in buf
        self._cuts: list[int] = []     # offsets in that data right after such end tags

    def cuts(self, data: bytes) -> None:
        """Keep ``data`` and find the end tags in it that may close a stanza."""
        buf = self.buf
        base = self._base = len(buf)
        opened = buf.rfind(b"<")  # an end tag cut by the end of the last read starts there
        buf += data
        self._cuts = [m.end() - base for m in _CUT.finditer(buf, base if opened < 0 else opened)
                      if m.end() > base]

    def ended(self, begin: int, at: int,
              stanzas: list[etree._Element]) -> list[bytes | None] | None:
        """The bytes of ``stanzas``, which ended in the piece fed from data offset ``begin``
        to ``at`` (not empty). Each is None where not certain; all are None if none is.
        """
        cuts = self._cuts
        first, last = bisect.bisect_right(cuts, begin), bisect.bisect_right(cuts, at)
        if last - first != len(stanzas) or not all(
                len(s) and s.tag in self._stanzas and s.prefix is None for s in stanzas):
            self.start = None
            return None
        view, base, start = memoryview(self.buf), self._base, self.start
        found = []
        for cut in cuts[first:last]:
            end = base + cut
            if start is None:
                found.append(None)
            else:
                while view[start] in _SPACE:  # whitespace between stanzas
                    start += 1
                found.append(bytes(view[start:end]))
            start = end
        view.release()
        self.start = start
        return found

    def trim(self) -> None:
        """Forget what is behind the boundary (call after each feed)."""
        buf = self.buf
        if self.start is not None:
            del buf[:self.start]
            self.start = 0
            blank = len(buf) - len(buf.lstrip(_SPACE))
            del buf[:blank]
        else:  # only a stanza end tag cut by the end of this read matters
            opened = buf.rfind(b"<")
            del buf[:len(buf) if opened < 0 else opened]


def self_contained(data: bytes, tag: bytes, inherits: bytes | None) -> bytes | None:
    """``data`` (a stanza ``<tag …>…``) declaring ``inherits`` as its default namespace
    (None: it declares its own), or None if it may use the stream's ``stream`` prefix."""
    n = len(tag)
    if not (data.startswith(tag) and data[n:n + 1] in (b" ", b"\t", b"\r", b"\n", b">")):
        return None  # a prefixed stanza: left to the parsed tree
    if b"stream:" in data:
        return None
    if inherits is None:
        return data
    return b"%s xmlns=\"%s\"%s" % (tag, inherits, data[n:])
