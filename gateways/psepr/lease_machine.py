"""The client side of a lease: request, grant, renew, retry, renegotiate.

One :class:`ClientLease` per subscription a client holds (DESIGN.md §4)::

    state         event                      next state     effect
    ------------  -------------------------  -------------  --------------------------
    (new)         connected                  requested      send register
    disconnected  connected                  requested      send register
    requested     grant(d)                   granted        due = now + renew_at * d
    requested     due, tries < max_tries     requested      send register again
    requested     due, tries == max_tries    failed         report; no more tries
    granted       due (renew_at of d)        renewing       send register
    renewing      grant(d)                   granted        due = now + renew_at * d
    renewing      due, tries < max_tries     renewing       send register again
    renewing      due, tries == max_tries    failed         report
    requested     refused (forbidden)        refused        report; no more tries
    renewing      refused (forbidden)        refused        report; no more tries
    any           disconnected               disconnected   wait for the next connection
    any           unregister                 (removed)      send unregister if connected

The machine is pure: it is told the time (monotonic seconds) and returns
what to do; the client schedules its timer at :attr:`ClientLease.due`.
Timings (:class:`Timing`) default to the PsEPR values (retry after 20 s,
10 tries, renew at 80 %) and are configurable so tests run fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsmt.states import Machine

NEW = "new"
REQUESTED = "requested"
GRANTED = "granted"
RENEWING = "renewing"
DISCONNECTED = "disconnected"
FAILED = "failed"
REFUSED = "refused"

MACHINE = Machine(
    name="psepr-lease",
    initial=NEW,
    transitions={
        NEW: frozenset({REQUESTED, DISCONNECTED}),
        REQUESTED: frozenset({REQUESTED, GRANTED, FAILED, REFUSED, DISCONNECTED}),
        GRANTED: frozenset({RENEWING, DISCONNECTED}),
        RENEWING: frozenset({RENEWING, GRANTED, FAILED, REFUSED, DISCONNECTED}),
        DISCONNECTED: frozenset({REQUESTED, DISCONNECTED}),
        FAILED: frozenset({REQUESTED, DISCONNECTED}),
        REFUSED: frozenset({REQUESTED, DISCONNECTED}),
    },
    aliases={},
)

# What the owner of a lease must do after a transition.
SEND = "send"          # send a register request
GIVE_UP = "give-up"    # report the lease as failed
NOTHING = "nothing"


@dataclass(frozen=True)
class Timing:
    retry_after: float = 20.0
    max_tries: int = 10
    renew_at: float = 0.8


@dataclass
class ClientLease:
    identifier: str
    prefix: str
    type: str | None
    duration: float
    timing: Timing = Timing()
    state: str = NEW
    tries: int = 0
    granted: float | None = None
    due: float | None = None

    def change_state(self, wanted: str) -> None:
        self.state = MACHINE.check(self.state, wanted)

    def connected(self, now: float) -> str:
        """A (new) connection is authenticated: ask for the lease."""
        self.change_state(REQUESTED)
        self.tries = 0
        return self._send(now)

    def disconnected(self) -> str:
        self.change_state(DISCONNECTED)
        self.due = None
        self.tries = 0
        return NOTHING

    def grant(self, duration: float, now: float) -> str:
        """The router answered op=lease with ``duration`` seconds."""
        if self.state not in (REQUESTED, RENEWING):
            return NOTHING  # a late duplicate answer; the current state stands
        self.change_state(GRANTED)
        self.tries = 0
        self.granted = duration
        self.due = now + self.timing.renew_at * duration
        return NOTHING

    def refuse(self) -> str:
        """The router refused the request (its access list does not allow it)."""
        if self.state not in (REQUESTED, RENEWING):
            return NOTHING
        self.change_state(REFUSED)
        self.due = None
        return GIVE_UP

    def tick(self, now: float) -> str:
        """Time passed; act if :attr:`due` has come."""
        if self.due is None or now < self.due:
            return NOTHING
        if self.state == GRANTED:
            self.change_state(RENEWING)
            self.tries = 0
            return self._send(now)
        if self.tries >= self.timing.max_tries:
            self.change_state(FAILED)
            self.due = None
            return GIVE_UP
        self.change_state(self.state)
        return self._send(now)

    @property
    def active(self) -> bool:
        """True while the router is believed to route events for this lease."""
        return self.state in (GRANTED, RENEWING)

    def _send(self, now: float) -> str:
        self.tries += 1
        self.due = now + self.timing.retry_after
        return SEND
