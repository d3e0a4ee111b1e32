"""The world view: which slivers of the slice are alive, late, or dead, from their heartbeats.

Pure logic with an injectable clock (:class:`dsmt.clock.Clock`;
:class:`dsmt.testing.FakeClock` in tests); the coordinator feeds it the
heartbeats it reads and its own lateness, and asks it which slivers may run
instances. Not thread-safe: one owner (the coordinator's thread).

**Silence and slack.** A member's silence is the time since its newest beat
was *sent* (a beat carries its age: the sender's wall time vs ours, clamped
at 0, so an old retained heartbeat read at start does not look fresh). A
member is overdue when its silence reaches ``k * heartbeat + slack``, where
``slack`` is what this view measured of the delivery path over the last
``2 k`` heartbeat periods: the largest transit time of a beat (sent →
read by our reader thread) plus the largest lateness of this sliver itself
(its own beats and ticks going out late, events waiting in its mailbox;
:meth:`WorldView.late`). On a quiet machine the slack is milliseconds; when
every process is starved, beats arrive seconds late and the threshold grows
with them, instead of every sliver declaring every other dead.

**Suspicion vs death.** Only a dead member's instances are taken over
(:meth:`WorldView.placeable` keeps suspected members); an overdue member is
declared dead only on evidence that the silence is its own:

=========  ==========================================  =====================
state      when                                        placement
=========  ==========================================  =====================
alive      not overdue                                 runs instances
suspected  overdue, but the silence may be ours or     keeps its share
           the slice's (see *systemic* below)          (nothing moves)
dead       overdue and not systemic; or overdue for    none (its share moves);
           ``dead_after`` more seconds while this      shown as dead until it
           sliver is itself on time; or it said it is  beats again
           leaving
=========  ==========================================  =====================

*Systemic* (:meth:`WorldView.systemic`, shown in ``summary``/``inspect``):
this sliver is late itself (by a heartbeat period or more within the
window), or more than half of the other members that are not dead are
overdue at once (at least two). One sliver killed among many is overdue
alone and dies at ``k`` heartbeats plus the slack; a starved machine or a
stalled router makes many overdue together and nobody's share moves until
the beats come back (or, after ``dead_after``, if this sliver is on time).
Deviation, and why: DESIGN.md has "dead after k missed heartbeats"; a slow
sliver that concludes everyone else is dead runs the whole slice's
instances (measured: 80-90 instead of 3 with 30 slivers installing at once
on 2 cores), so death needs evidence and late beats widen the threshold.

**Cost.** Every peer's beat asks for the threshold, so the two window
maxima behind the slack are kept as :class:`WindowMax` (a monotonic deque):
a beat costs the same with 10 peers or 1,000 (``python -m benchmarks
world``), where a scan of the window's samples made it grow with the
slice -- and a node's view cost grow with its square.

This sliver (``own``) is never overdue in its own view. Transition table
(:data:`TRANSITIONS`): a beat re-admits a suspected or dead member (counted
in ``readmitted``); time only moves a member towards dead.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping

from dsmt.clock import Clock

ALIVE, SUSPECTED, DEAD = "alive", "suspected", "dead"

TRANSITIONS: Mapping[str, frozenset[str]] = {
    ALIVE: frozenset({SUSPECTED, DEAD}),
    SUSPECTED: frozenset({ALIVE, DEAD}),
    DEAD: frozenset({ALIVE}),
}


class WindowMax:
    """The largest value added in the last ``window`` seconds (0.0 if none), O(1) amortized.

    The sliding-window maximum: a new sample drops every older sample not
    larger than it (none of those can be the maximum again: the new one
    outlives them), so the samples kept decrease from the front, and the
    front is the maximum once the expired ones are dropped. Samples must
    be added in time order.
    """

    def __init__(self, window: float) -> None:
        self.window = window
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, at: float, value: float) -> None:
        samples = self._samples
        while samples and samples[-1][1] <= value:
            samples.pop()
        samples.append((at, value))

    def max(self, now: float) -> float:
        samples = self._samples
        while samples and now - samples[0][0] > self.window:
            samples.popleft()
        return samples[0][1] if samples else 0.0


@dataclass
class Member:
    """What the view knows of one sliver: its last beat (payload) and liveness."""

    sliver: str
    last: float                     # monotonic time the newest beat was sent (by its age)
    beat: dict[str, Any] = field(default_factory=dict)
    state: str = ALIVE
    since: float = 0.0
    readmitted: int = 0
    epoch: Any = None
    transit: float | None = None    # seconds the newest beat took to reach our reader

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.beat.get("labels") or ())

    @property
    def ready(self) -> dict[str, int]:
        """Instances per service its last beat says are ready (a beat of an older DSMT,
        without ``ready``: what it runs)."""
        return dict(self.beat.get("ready", self.beat.get("services")) or {})

    def summary(self, now: float) -> dict[str, Any]:
        return {"state": self.state, "age": round(now - self.last, 3),
                "plan_version": self.beat.get("plan_version"), "labels": list(self.labels),
                "services": dict(self.beat.get("services") or {}),
                "ready": self.ready,
                "quarantined": self.beat.get("quarantined"), "readmitted": self.readmitted,
                "epoch": self.epoch, "late": self.beat.get("late"),
                "transit": None if self.transit is None else round(self.transit, 3)}


class WorldView:
    """Liveness of the slivers of one slice (see the module docstring)."""

    def __init__(self, clock: Clock, heartbeat: float = 1.0, suspect_after: int = 3,
                 dead_after: float = 10.0, own: str | None = None) -> None:
        self.clock = clock
        self.heartbeat = heartbeat
        self.suspect_after = suspect_after
        self.dead_after = dead_after
        self.own = own
        self.window = 2 * suspect_after * heartbeat
        self.members: dict[str, Member] = {}
        self._transits = WindowMax(self.window)
        self._lateness = WindowMax(self.window)

    # --- inputs ----------------------------------------------------------------------------

    def beat(self, sliver: str, payload: Mapping[str, Any], age: float = 0.0,
             transit: float | None = None) -> tuple[str, str] | None:
        """Record a heartbeat ``age`` seconds old; returns ``(old, new)`` on a state change.

        ``transit``: the seconds it took from its sender to our reader (feeds the slack).
        """
        now = self.clock.monotonic()
        when = now - max(0.0, age)
        if transit is not None and sliver != self.own:
            self._transits.add(now, max(0.0, transit))
        member = self.members.get(sliver)
        if member is None:
            member = self.members[sliver] = Member(sliver, when, dict(payload), DEAD, now)
            old = None
        else:
            if when < member.last:
                return None  # older than what we have (a late retained copy)
            member.last, member.beat = when, dict(payload)
            old = member.state
        member.epoch = payload.get("epoch", member.epoch)
        if transit is not None:
            member.transit = max(0.0, transit)
        new = DEAD if payload.get("leaving") else (
            ALIVE if sliver == self.own or not self._overdue(member, now) else member.state)
        if old is None:  # an old copy heard first (overdue) leaves it dead until it beats
            member.state = new
            return (DEAD, new) if new != DEAD else None
        if new != old and (new == ALIVE and old != ALIVE):
            member.readmitted += 1
        return self._move(member, new, now)

    def late(self, seconds: float) -> None:
        """Record how late this sliver itself was (a beat, a tick, an event in its mailbox)."""
        if seconds > 0:
            self._lateness.add(self.clock.monotonic(), seconds)

    def check(self) -> list[tuple[str, str, str]]:
        """Age every member; returns the ``(sliver, old, new)`` changes."""
        now = self.clock.monotonic()
        systemic = self.systemic()
        own_late = self._own_late(now) >= self.heartbeat
        threshold = self.threshold()
        changes = []
        for member in self.members.values():
            if member.beat.get("leaving") or member.sliver == self.own or member.state == DEAD:
                continue
            silent = now - member.last
            if silent < threshold:
                continue  # only a beat brings a member back
            if systemic is None or (silent >= threshold + self.dead_after and not own_late):
                due = DEAD
            else:
                due = SUSPECTED
            old = member.state
            if self._move(member, due, now):
                changes.append((member.sliver, old, due))
        return changes

    # --- queries ---------------------------------------------------------------------------

    def slack(self) -> float:
        """Seconds added to ``k`` heartbeats: the worst transit plus our own worst lateness."""
        now = self.clock.monotonic()
        return self._transits.max(now) + self._own_late(now)

    def threshold(self) -> float:
        """The silence after which a member is overdue."""
        return self.suspect_after * self.heartbeat + self.slack()

    def systemic(self) -> str | None:
        """Why an overdue member is only suspected now (None: overdue means dead)."""
        now = self.clock.monotonic()
        own_late = self._own_late(now)
        if own_late >= self.heartbeat:
            return f"this sliver is late itself ({own_late:.2f}s)"
        threshold = self.threshold()
        others = [m for m in self.members.values()
                  if m.sliver != self.own and m.state != DEAD and not m.beat.get("leaving")]
        overdue = [m for m in others if now - m.last >= threshold]
        if len(overdue) >= 2 and 2 * len(overdue) > len(others):
            return f"{len(overdue)} of {len(others)} peers silent at once"
        return None

    def state(self, sliver: str) -> str | None:
        member = self.members.get(sliver)
        return None if member is None else member.state

    def live(self) -> dict[str, tuple[str, ...]]:
        """The alive members: name → labels."""
        return {m.sliver: m.labels for m in self.members.values() if m.state == ALIVE}

    def placeable(self) -> dict[str, tuple[str, ...]]:
        """The members that keep their share (alive or only suspected): name → labels."""
        return {m.sliver: m.labels for m in self.members.values() if m.state != DEAD}

    def running(self) -> dict[str, dict[str, int]]:
        """Per placeable member, the instances per service its last beat says it runs."""
        return {m.sliver: dict(m.beat.get("services") or {}) for m in self.members.values()
                if m.state != DEAD}

    def ready(self) -> dict[str, dict[str, int]]:
        """Per placeable member, the instances per service its last beat says are ready."""
        return {m.sliver: m.ready for m in self.members.values() if m.state != DEAD}

    def suspected(self) -> list[str]:
        return sorted(m.sliver for m in self.members.values() if m.state == SUSPECTED)

    def dead(self) -> list[str]:
        return sorted(m.sliver for m in self.members.values() if m.state == DEAD)

    def quarantined(self) -> dict[str, str]:
        """Placeable members that say they are quarantined: name → reason."""
        return {m.sliver: str(m.beat["quarantined"]) for m in self.members.values()
                if m.state != DEAD and m.beat.get("quarantined")}

    def summary(self) -> dict[str, dict[str, Any]]:
        now = self.clock.monotonic()
        return {name: m.summary(now) for name, m in sorted(self.members.items())}

    def health(self) -> dict[str, Any]:
        """The view's own figures: threshold, slack and its parts, and why deaths wait."""
        now = self.clock.monotonic()
        return {"threshold": round(self.threshold(), 3),
                "transit_max": round(self._transits.max(now), 3),
                "own_late_max": round(self._own_late(now), 3),
                "systemic": self.systemic()}

    # --- internals -------------------------------------------------------------------------

    def _overdue(self, member: Member, now: float) -> bool:
        return now - member.last >= self.threshold()

    def _own_late(self, now: float) -> float:
        return self._lateness.max(now)

    def _move(self, member: Member, new: str, now: float) -> tuple[str, str] | None:
        old = member.state
        if new == old:
            return None
        if new not in TRANSITIONS[old]:
            raise ValueError(f"{member.sliver}: {old} -> {new} is not a view transition")
        member.state, member.since = new, now
        return old, new
