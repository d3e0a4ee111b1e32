"""One child as its supervisor sees it: spec, current actor, state, restart history.

A :class:`Child` belongs to its supervisor and is touched only in the
supervisor's thread. Its state follows :data:`dsmt.states.PROCESS`
(``stopped, starting, running, backoff, stopping, exited, fatal``): the
child *record* keeps a state even while no actor exists for it.

:func:`signal_stop` and :func:`await_stop` are the two halves of stopping one
child under its ``shutdown`` spec, split so a simple_one_for_one supervisor
can signal every child first and then wait (OTP stops dynamic children
concurrently). :func:`start_actor` starts one and waits for its ``on_start``;
:func:`publish_record` speaks for a child that has no actor (backoff, fatal).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any, Hashable

from dsmt.actor import Error, ExitReason, Lifeline, Origin, kill, status_payload
from dsmt.childspec import BRUTAL_KILL, ChildSpec
from dsmt.clock import Timer
from dsmt.context import Context, Publisher
from dsmt.event import STATUS
from dsmt.registry import Registry
from dsmt.states import EXITED, PROCESS, RUNNING, STARTING, STOPPED

log = logging.getLogger(__name__)


@dataclass
class Child:
    spec: ChildSpec
    id: Hashable
    path: str
    extra: dict[str, Any] = field(default_factory=dict)  # simple_one_for_one start_child kwargs
    ref: Any = None
    lifeline: Lifeline | None = None
    state: str = STOPPED
    since: float = 0.0
    reason: str | None = None
    restarts: int = 0
    attempt: int = 0  # backoff attempts since the last stable run
    started_at: float | None = None  # monotonic
    next_attempt: float | None = None  # wall time of the pending restart
    pending: int | None = None  # token of the pending try-again, if any
    timer: Timer | None = None

    def move(self, new: str, now_wall: float, reason: str | None = None) -> bool:
        """Validate and record ``new`` (a no-op if already there); True if it changed."""
        if new == self.state:
            return False
        self.state = PROCESS.check(self.state, new)
        self.since = now_wall
        self.reason = reason
        return True

    def cancel_pending(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None
        self.pending = None
        self.next_attempt = None

    @property
    def alive(self) -> bool:
        return self.ref is not None

    def snapshot(self, restarts_left: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "state": self.state,
            "since": self.since,
            "reason": self.reason,
            "restart": self.spec.restart,
            "type": self.spec.type,
            "significant": self.spec.significant,
            "restarts": self.restarts,
            "attempt": self.attempt,
            "next_attempt": self.next_attempt,
            "restarts_left": restarts_left,
            "alive": self.alive,
        }


def start_actor(child: Child, ctx: Context, parent: Any) -> bool | ExitReason:
    """Start an actor for ``child`` and wait for its ``on_start`` (supervisor thread).

    True once it runs (the record holds its ref); otherwise the reason it did
    not start: the factory's exception, the actor's start failure, or a
    timeout after ``start_timeout`` (the late starter is then killed).
    """
    now = ctx.clock.wall
    child.move(STARTING, now())
    origin = Origin(ctx, child.path, parent, child.id)
    kwargs = {**child.spec.kwargs, **child.extra}
    start = child.spec.start
    try:
        ref = start.start(origin, **kwargs) if isinstance(start, type) else start(origin, **kwargs)
    except Exception:
        outcome: bool | ExitReason = Error.from_exc_info(*sys.exc_info())
        log.error("%s: starting child failed", child.path, exc_info=True)
    else:
        outcome = origin.lifeline.wait_started(child.spec.start_timeout)
        if outcome is True:
            child.ref, child.lifeline = ref, origin.lifeline
            child.started_at = ctx.clock.monotonic()
            child.move(RUNNING, now())
            return True
        if outcome is None:
            kill(ref)
            ctx.registry.unregister(child.path, ref)
            outcome = Error("TimeoutError",
                            f"on_start did not return within {child.spec.start_timeout}s")
    child.move(EXITED, now(), str(outcome))
    return outcome


def signal_stop(child: Child, registry: Registry) -> tuple[Any, Lifeline | None]:
    """Detach the child's actor and ask it to stop; returns what :func:`await_stop` needs.

    The record forgets the ref first, so the actor's own exit report arrives
    as stale and is ignored: an exit the supervisor caused is not a failure.
    """
    ref, lifeline = child.ref, child.lifeline
    child.ref = child.lifeline = None
    if ref is None:
        return None, None
    if child.spec.shutdown == BRUTAL_KILL:
        kill(ref)
        # The killed thread may still be inside a handler: free its path now
        # so the replacement can register; its own late unregister is a no-op.
        registry.unregister(child.path, ref)
    else:
        ref.stop(block=False)
    return ref, lifeline


def await_stop(child: Child, ref: Any, lifeline: Lifeline | None, registry: Registry) -> None:
    """Wait up to the child's shutdown timeout; past it, kill it as OTP does."""
    if ref is None or lifeline is None or child.spec.shutdown == BRUTAL_KILL:
        return
    if lifeline.wait_exited(child.spec.shutdown) is None:  # type: ignore[arg-type]
        log.warning("%s did not stop within %ss; killing it", child.path, child.spec.shutdown)
        kill(ref)
        registry.unregister(child.path, ref)


def publish_record(publisher: Publisher, ctx: Context, child: Child, restarts_left: int,
                   supervisor: str) -> None:
    """Publish the child's record on the child's own status channel (supervisor thread).

    Used for ``backoff`` and ``fatal``: no actor of the child exists then to
    speak for itself, and a silent stop is what DSMT never does.
    """
    component = Origin(ctx, child.path).component
    detail = {"next_attempt": child.next_attempt, "restarts_left": restarts_left,
              "attempt": child.attempt, "restarts": child.restarts, "supervisor": supervisor}
    publisher.publish(
        ctx.layout.status(component, ctx.sliver),
        STATUS,
        status_payload(ctx, component, child.state, child.reason, detail, path=child.path),
        retain=True,
    )
