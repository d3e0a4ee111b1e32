"""Loss detection on the subscriber side: per-sender sequence gaps and restarts.

Every event carries its sender's ``epoch`` and ``seq`` (:class:`dsmt.event.Sequencer`):
``seq`` rises by exactly one per event within an epoch, and a restarted
sender starts a new, greater epoch at seq 1. A :class:`GapDetector` keeps,
per sender ``(service, instance)``, the epoch and the last seq seen and turns
each observed event into at most one report:

- :class:`Gap` -- seqs ``first..last`` of this epoch never arrived (dropped by
  a high-water mark, or published on a channel outside the subscription);
- :class:`EpochChange` -- the sender restarted (a greater epoch); whatever the
  old epoch still had in flight is unknowable, so this is reported, not
  counted as missing;
- :class:`Stale` -- an event at or below the last seq of the current epoch, or
  from an older epoch: a duplicate or a reordering. ZeroMQ never reorders or
  duplicates one sender's events through one hub, so seeing this means two
  senders share an address or an event was forwarded twice.

The first event of a sender is never a gap: a late joiner cannot know what it
missed before it subscribed (that is what snapshots are for).

Caveat, by construction: ``seq`` is per sender, not per channel. Gap reports
are exact for a sender whose every channel is under the subscription (``/``
subscribers such as the bridge, or a sender that publishes under one prefix);
for a subscriber that sees only part of a sender's channels, a gap may be an
event it never subscribed to.

A detector is plain state, not thread-safe: its owner (a subscriber) uses it
from one thread. Memory is bounded by :data:`MAX_SENDERS` (beyond it, the
sender tracked for the longest without a report is forgotten) and by
:data:`MAX_REPORTS` (the newest reports are kept).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from dsmt.event import Address, Event

MAX_SENDERS = 65_536
MAX_REPORTS = 1_000


@dataclass(frozen=True, slots=True)
class Gap:
    """Seqs ``first..last`` (inclusive) of ``sender`` in ``epoch`` never arrived."""

    sender: Address
    epoch: int
    first: int
    last: int

    @property
    def missing(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class EpochChange:
    """``sender`` restarted: events now come from ``new`` instead of ``old``."""

    sender: Address
    old: int
    new: int
    seq: int


@dataclass(frozen=True, slots=True)
class Stale:
    """An event of ``sender`` at or before what was already seen (duplicate or reorder)."""

    sender: Address
    epoch: int
    seq: int
    last_epoch: int
    last_seq: int


Report = Gap | EpochChange | Stale


class GapDetector:
    """Tracks epoch and last seq per sender; see the module docstring for the rules."""

    def __init__(self, max_senders: int = MAX_SENDERS, max_reports: int = MAX_REPORTS) -> None:
        # [epoch, last seq], updated in place on the common path (no tuple, no dict write)
        self._last: dict[tuple[str, str | None], list[int]] = {}
        self._max_senders = max_senders
        self.reports: deque[Report] = deque(maxlen=max_reports)
        self.missing = 0
        self.gaps = 0
        self.epoch_changes = 0
        self.stale = 0

    def observe(self, event: Event) -> Report | None:
        """Record ``event``; return the report it causes, if any (also kept in ``reports``)."""
        sender = event.sender
        # Keyed by a plain tuple: hashing it is C code, a dataclass's hash is Python.
        key = (sender.service, sender.instance)
        epoch, seq = event.epoch, event.seq
        last = self._last.get(key)
        if last is not None and last[0] == epoch and seq == last[1] + 1:
            last[1] = seq  # the common case, kept fast
            return None
        report: Report | None
        if last is None:
            if len(self._last) >= self._max_senders:
                del self._last[next(iter(self._last))]
            report = None
        elif epoch == last[0]:
            if seq <= last[1]:
                self.stale += 1
                report = Stale(sender, epoch, seq, last[0], last[1])
                self.reports.append(report)
                return report  # keep the newer position
            report = Gap(sender, epoch, last[1] + 1, seq - 1)
            self.gaps += 1
            self.missing += report.missing
        elif epoch > last[0]:
            report = EpochChange(sender, last[0], epoch, seq)
            self.epoch_changes += 1
        else:
            self.stale += 1
            report = Stale(sender, epoch, seq, last[0], last[1])
            self.reports.append(report)
            return report
        # Re-insert: senders that just reported move to the end of the eviction order.
        self._last.pop(key, None)
        self._last[key] = [epoch, seq]
        if report is not None:
            self.reports.append(report)
        return report

    def position(self, sender: Address) -> tuple[int, int] | None:
        """``(epoch, last seq)`` seen from ``sender``, or None if never heard from."""
        last = self._last.get((sender.service, sender.instance))
        return None if last is None else (last[0], last[1])

    def counters(self) -> dict[str, int]:
        return {"gaps": self.gaps, "missing": self.missing,
                "epoch_changes": self.epoch_changes, "stale": self.stale,
                "senders": len(self._last)}
