"""Install monitors: follow one component, re-emit its status, restart it when it stalls.

One :class:`InstallMonitor` per component of a sliver (container manager,
deployment agent, application supervisor), as the original DSMT had. It is
given the component's **path** and follows whichever actor holds it:

- **Following.** The monitor observes the path in the node registry
  (:meth:`dsmt.registry.Registry.observe`), so every
  :meth:`dsmt.actor.Actor.change_state` of the component — and of each new
  actor its supervisor starts for it after a crash — is told to the monitor
  as a :class:`dsmt.actor.StateChanged`. On start it asks the current actor
  for its state without waiting on it (a proxy call whose future it drops).
  A late message from an incarnation that has been replaced is ignored.
- **Re-emitting.** Every ``emit_rate`` seconds it publishes the component's
  last known state, retained, on the component's own status channel, with
  the original DSMT fields (:func:`dsmt.actor.status_payload`) plus
  ``attempt`` (the incarnation of the component it follows, from 1), the
  component's own detail (pid, version, ...) and ``timings`` (``since``,
  seconds ``in_state``, the state's ``timeout``). Nothing is emitted before
  the component's state is known.
- **Stalls.** A component longer than ``timeouts[state]`` seconds in one
  state (None or absent: forever) is reported as ``failed`` with reason
  ``stalled in <state>`` and made to fail with :class:`Stalled` through
  :func:`dsmt.actor.fail`. That is OTP's ``exit(Pid, {stalled, State})``
  from a watchdog: the component crashes (``on_failure`` runs, so a
  supervisor component stops its children) and *its* supervisor applies the
  restart type, strategy, intensity and backoff of its spec, exactly as for
  any crash. (Calling ``terminate_child`` + ``restart_child`` instead would
  bypass the intensity and the strategy's scope.)
- **Escalation.** A thread cannot be interrupted: a component stuck *inside*
  a handler only sees the failure when the handler returns. If the same
  actor still holds the path ``kill_after`` seconds after the stall, the
  monitor asks the component's supervisor (the actor at the parent path) to
  ``terminate_child`` then ``restart_child`` it, by the last element of its
  path; the supervisor stops it within its ``shutdown`` spec, frees the path
  and starts a new actor (the stuck thread ends whenever its handler
  returns). Neither call is waited for; a refusal (a simple_one_for_one
  child, an id that is not a string) is only logged by pykka.

Timers are ``ctx.clock.call_later`` callbacks that tell the monitor, so its
mailbox never waits and tests drive it with a fake clock. The monitor's own
state follows the component lifecycle (``running`` once started) on its own
status channel. It is meant to live *beside* its component (a sibling, or
elsewhere in the tree), not under it: it survives the component's restarts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import pykka

from dsmt.actor import Actor, Origin, StateChanged, fail, status_payload
from dsmt.clock import Timer
from dsmt.event import STATUS
from dsmt.states import (FAILED, INITIATED, INSTALLING, INSTANTIATED, REQUESTED, RUNNING,
                         SELECTED)

log = logging.getLogger(__name__)

#: Seconds a component may stay in a transitional state; other states never stall.
DEFAULT_TIMEOUTS: Mapping[str, float | None] = {
    REQUESTED: 60.0,
    INITIATED: 300.0,
    INSTANTIATED: 300.0,
    SELECTED: 60.0,
    INSTALLING: 1800.0,
}


class Stalled(Exception):
    """Raised in a component's thread by its monitor: it stayed too long in one state."""


@dataclass(frozen=True)
class _Emit:
    """The monitor's tick: re-emit the component's status."""


@dataclass(frozen=True)
class _Stall:
    """The stall timer of one stay in a state (``token``) ran out."""

    token: int


@dataclass(frozen=True)
class _Escalate:
    """``kill_after`` passed since the stall of incarnation ``actor``."""

    actor: str


def _teller(ref: Any, message: Any) -> Callable[[], None]:
    def tell() -> None:
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            pass  # the monitor stopped: its timers die with it
    return tell


class InstallMonitor(Actor):
    """Follows the component at ``target``: re-emits its status, restarts it when it stalls."""

    def __init__(
        self,
        origin: Origin,
        target: str,
        *,
        emit_rate: float | None = 30.0,
        timeouts: Mapping[str, float | None] | None = None,
        kill_after: float | None = 30.0,
    ) -> None:
        """``emit_rate``: seconds between re-emissions (None: never). ``timeouts``:
        state -> seconds (default :data:`DEFAULT_TIMEOUTS`). ``kill_after``: seconds
        after a stall before the supervisor is asked to restart the component (None: never).
        """
        timeouts = dict(DEFAULT_TIMEOUTS if timeouts is None else timeouts)
        for value in (emit_rate, kill_after, *timeouts.values()):
            if value is not None and not value > 0:
                raise ValueError(f"monitor durations must be > 0 seconds or None, not {value!r}")
        super().__init__(origin, target=target, emit_rate=emit_rate, timeouts=timeouts,
                         kill_after=kill_after)
        self.target = target
        self.emit_rate = emit_rate
        self.timeouts = timeouts
        self.kill_after = kill_after
        self.target_component = Origin(self.ctx, target).component
        self.last: StateChanged | None = None
        self.entered: float | None = None  # monotonic time the last state was entered
        self.attempt = 0
        self.stalls = 0
        self._retired: set[str] = set()
        self._stall_token = 0
        self._stall_timer: Timer | None = None
        self._emit_timer: Timer | None = None
        self._next_emit: float | None = None

    # --- life cycle (monitor thread) ---------------------------------------------

    def on_start(self) -> None:
        self.change_state(REQUESTED)
        self.ctx.registry.observe(self.target, self.actor_ref)
        current = self.ctx.registry.get(self.target)
        if current is not None:
            try:
                current.proxy().report_state(self.actor_ref)  # not waited for
            except pykka.ActorDeadError:
                pass  # gone already: its replacement will tell us
        self.change_state(INITIATED)
        self.change_state(INSTANTIATED)
        self.change_state(RUNNING, target=self.target)
        self._schedule_emit()

    def on_stop(self) -> None:
        self._release()

    def on_failure(self, *exc_info: Any) -> None:
        self._release()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, StateChanged):
            return self._follow(message)
        if isinstance(message, _Emit):
            self.emit()
            return self._schedule_emit()
        if isinstance(message, _Stall):
            if message.token == self._stall_token:
                self._stalled()
            return None
        if isinstance(message, _Escalate):
            return self._escalate(message.actor)
        return super().on_receive(message)

    # --- API (monitor thread, through a proxy) -------------------------------------

    def emit(self) -> dict[str, Any] | None:
        """Publish the component's last known state now; the payload, or None if unknown."""
        if self.last is None:
            return None
        payload = self._payload(self.last.state, self.last.reason)
        if self.publisher is not None:
            self.publisher.publish(self.ctx.layout.status(self.target_component, self.ctx.sliver),
                                   STATUS, payload, retain=True)
        self.count("emits")
        return payload

    def inspect(self) -> dict[str, Any]:
        snapshot = super().inspect()
        last = self.last
        snapshot["component"] = None if last is None else {
            "path": self.target, "state": last.state, "reason": last.reason, "since": last.since,
            "attempt": self.attempt, "stalls": self.stalls, "actor": last.actor,
        }
        return snapshot

    # --- internals ----------------------------------------------------------------

    def _follow(self, message: StateChanged) -> None:
        if message.path != self.target or message.actor in self._retired:
            return  # another path, or a late word from an incarnation already replaced
        if self.last is None or message.actor != self.last.actor:
            if self.last is not None:
                self._retired.add(self.last.actor)
            self.attempt += 1
        self.last = message
        elapsed = max(0.0, self.ctx.clock.wall() - message.since)
        self.entered = self.ctx.clock.monotonic() - elapsed
        self._arm_stall(message.state, elapsed)

    def _arm_stall(self, state: str, elapsed: float) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        self._stall_token += 1
        timeout = self.timeouts.get(state)
        if timeout is not None:
            self._stall_timer = self.ctx.clock.call_later(
                max(0.0, timeout - elapsed), _teller(self.actor_ref, _Stall(self._stall_token)))

    def _stalled(self) -> None:
        assert self.last is not None
        stuck = self.last
        reason = f"stalled in {stuck.state}"
        log.error("%s: %s for more than %ss", self.target, reason, self.timeouts[stuck.state])
        self.stalls += 1
        self.count("stalls")
        # From now on the stuck incarnation's own words (its final "failed") are ignored,
        # so the re-emitted status keeps saying why until the new one speaks.
        self.last = StateChanged(stuck.path, FAILED, self.ctx.clock.wall(), reason,
                                 stuck.detail, stuck.actor)
        self.entered = self.ctx.clock.monotonic()
        self._retired.add(stuck.actor)
        self._arm_stall(FAILED, 0.0)
        self.emit()
        ref = self.ctx.registry.get(self.target)
        if ref is not None and ref.actor_urn == stuck.actor:
            fail(ref, Stalled(reason))
            if self.kill_after is not None:
                self.ctx.clock.call_later(self.kill_after,
                                          _teller(self.actor_ref, _Escalate(stuck.actor)))

    def _escalate(self, actor: str) -> None:
        ref = self.ctx.registry.get(self.target)
        if ref is None or ref.actor_urn != actor:
            return  # it failed and was replaced (or is being restarted): done
        parent_path, child_id, supervisor = self.ctx.registry.supervisor_of(self.target)
        log.error("%s: still stuck %ss after the stall; asking %s to restart it",
                  self.target, self.kill_after, parent_path)
        self.count("escalations")
        if supervisor is None:
            return
        try:
            proxy = supervisor.proxy()
            proxy.terminate_child(child_id)  # neither is waited for: queued in this order
            proxy.restart_child(child_id)
        except pykka.ActorDeadError:
            pass  # the supervisor is gone: its own supervisor takes over

    def _payload(self, state: str, reason: str | None) -> dict[str, Any]:
        assert self.last is not None and self.entered is not None
        detail = {
            "attempt": self.attempt,
            **self.last.detail,
            "timings": {
                "since": self.last.since,
                "in_state": round(self.ctx.clock.monotonic() - self.entered, 3),
                "timeout": self.timeouts.get(state),
            },
            "monitor": self.path,
        }
        return status_payload(self.ctx, self.target_component, state, reason, detail,
                              emit_rate=self.emit_rate, path=self.target)

    def _schedule_emit(self) -> None:
        """Arm the next re-emission (deadline-based: no drift; a late tick is skipped)."""
        if self.emit_rate is None:
            return
        now = self.ctx.clock.monotonic()
        due = (self._next_emit or now) + self.emit_rate
        if due <= now:
            due = now + self.emit_rate
        self._next_emit = due
        self._emit_timer = self.ctx.clock.call_later(due - now, _teller(self.actor_ref, _Emit()))

    def _release(self) -> None:
        self.ctx.registry.unobserve(self.target, self.actor_ref)
        for timer in (self._emit_timer, self._stall_timer):
            if timer is not None:
                timer.cancel()
