"""The world view: which slivers of the slice are alive, from their heartbeats.

Pure logic with an injectable clock (:class:`dsmt.clock.Clock`;
:class:`dsmt.testing.FakeClock` in tests); the coordinator feeds it the
heartbeats it reads and asks it for the live slivers. Not thread-safe: one
owner (the coordinator's thread).

A member's state, from the time since its last beat (``heartbeat`` seconds
apart; ``k`` = ``suspect_after`` missed beats; ``grace`` = ``dead_after``):

=========  ===================================  ===========================
state      when                                 placement
=========  ===================================  ===========================
alive      a beat within the last k periods     runs instances
suspected  k periods without a beat             none (its share moves)
dead       k periods + grace without a beat,    none; shown as dead until
           or it said it is leaving             it beats again
=========  ===================================  ===========================

Transition table (:data:`TRANSITIONS`): a beat re-admits a suspected or
dead member (counted in ``readmitted``); time only moves a member towards
dead. A beat carries its age (sender's wall time vs ours, clamped at 0), so
an old retained heartbeat read at start does not look fresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from dsmt.clock import Clock

ALIVE, SUSPECTED, DEAD = "alive", "suspected", "dead"

TRANSITIONS: Mapping[str, frozenset[str]] = {
    ALIVE: frozenset({SUSPECTED, DEAD}),
    SUSPECTED: frozenset({ALIVE, DEAD}),
    DEAD: frozenset({ALIVE}),
}


@dataclass
class Member:
    """What the view knows of one sliver: its last beat (payload) and liveness."""

    sliver: str
    last: float                     # monotonic time of the last beat (adjusted by its age)
    beat: dict[str, Any] = field(default_factory=dict)
    state: str = ALIVE
    since: float = 0.0
    readmitted: int = 0
    epoch: Any = None

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.beat.get("labels") or ())

    def summary(self, now: float) -> dict[str, Any]:
        return {"state": self.state, "age": round(now - self.last, 3),
                "plan_version": self.beat.get("plan_version"), "labels": list(self.labels),
                "services": dict(self.beat.get("services") or {}),
                "quarantined": self.beat.get("quarantined"), "readmitted": self.readmitted,
                "epoch": self.epoch}


class WorldView:
    """Liveness of the slivers of one slice (see the module docstring)."""

    def __init__(self, clock: Clock, heartbeat: float = 1.0, suspect_after: int = 3,
                 dead_after: float = 10.0) -> None:
        self.clock = clock
        self.heartbeat = heartbeat
        self.suspect_after = suspect_after
        self.dead_after = dead_after
        self.members: dict[str, Member] = {}

    def beat(self, sliver: str, payload: Mapping[str, Any], age: float = 0.0
             ) -> tuple[str, str] | None:
        """Record a heartbeat ``age`` seconds old; returns ``(old, new)`` on a state change."""
        now = self.clock.monotonic()
        when = now - max(0.0, age)
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
        new = DEAD if payload.get("leaving") else self._due(member, now)
        if old is None:
            member.state = new
            return (DEAD, new) if new != DEAD else None
        if new != old and (new == ALIVE and old != ALIVE):
            member.readmitted += 1
        return self._move(member, new, now)

    def check(self) -> list[tuple[str, str, str]]:
        """Age every member; returns the ``(sliver, old, new)`` changes."""
        now = self.clock.monotonic()
        changes = []
        for member in self.members.values():
            if member.beat.get("leaving"):
                continue
            due = self._due(member, now)
            if due != member.state and due != ALIVE:  # only a beat brings a member back
                old = member.state
                if self._move(member, due, now):
                    changes.append((member.sliver, old, due))
        return changes

    def state(self, sliver: str) -> str | None:
        member = self.members.get(sliver)
        return None if member is None else member.state

    def live(self) -> dict[str, tuple[str, ...]]:
        """The alive members: name → labels."""
        return {m.sliver: m.labels for m in self.members.values() if m.state == ALIVE}

    def quarantined(self) -> dict[str, str]:
        """Alive members that say they are quarantined: name → reason."""
        return {m.sliver: str(m.beat["quarantined"]) for m in self.members.values()
                if m.state == ALIVE and m.beat.get("quarantined")}

    def summary(self) -> dict[str, dict[str, Any]]:
        now = self.clock.monotonic()
        return {name: m.summary(now) for name, m in sorted(self.members.items())}

    # --- internals -------------------------------------------------------------------------

    def _due(self, member: Member, now: float) -> str:
        silent = now - member.last
        suspect = self.suspect_after * self.heartbeat
        if silent < suspect:
            return ALIVE
        if silent < suspect + self.dead_after:
            return SUSPECTED
        return DEAD

    def _move(self, member: Member, new: str, now: float) -> tuple[str, str] | None:
        old = member.state
        if new == old:
            return None
        if new not in TRANSITIONS[old]:
            raise ValueError(f"{member.sliver}: {old} -> {new} is not a view transition")
        member.state, member.since = new, now
        return old, new
