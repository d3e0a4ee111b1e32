"""The DSMT actor: a pykka thread with a path, a state machine and an exit report.

Every actor of a sliver is an :class:`Actor`: a ``pykka.ThreadingActor`` with

- a stable **path** (``/<sliver>/app/web/0``) given by its :class:`Origin`;
  the status channel's component is the path after the sliver joined by
  ``.`` (``app.web.0``; ``sliver`` for the root);
- one :meth:`Actor.change_state` that checks the class's state machine
  (:data:`dsmt.states.COMPONENT` by default), records the state and publishes
  a retained status event; :meth:`Actor.update_detail` re-publishes the same
  state with new detail (a fact that changes without a move, e.g. a running
  process's readiness);
- :meth:`Actor.inspect`, a plain-dict snapshot;
- **observers** of its path (kept in the node registry, see
  :meth:`dsmt.registry.Registry.observe`): after every state change (and
  every :meth:`Actor.update_detail`) each is told a :class:`StateChanged`;
  :meth:`Actor.report_state` tells one of them the current state on request
  (how an install monitor follows a component);
- an **exit report**: when the actor's thread ends, its parent receives a
  :class:`ChildExit` whose reason is :data:`NORMAL` (the actor stopped
  itself), :data:`SHUTDOWN` (someone else stopped it), :data:`KILLED`
  (brutally killed, see :func:`kill`) or an :class:`Error` (an exception in
  ``on_start``, in a ``tell()`` handler, or in ``on_stop``, or one sent by
  :func:`fail`).

Threads: ``__init__`` runs in the starting thread; everything else (the
hooks, handlers, ``change_state``, the exit report) runs in the actor's own
thread. The actor opens its publisher and registers its path in its own
thread before ``on_start`` and undoes both after its last hook, so a
subclass never has to.

pykka semantics kept as they are: an exception raised by a handler of an
``ask()`` (or a proxy call) goes back to the caller and the actor lives on;
only an exception in a ``tell()`` handler or a hook stops it (pykka then
calls ``on_failure`` instead of ``on_stop``). pykka actors cannot be
restarted: a supervisor restarts a child by starting a *new* actor for the
same path.

Deviation, and why: pykka offers no exit notification, so this module
overrides five private pykka methods (``_actor_loop``, ``_handle_failure``,
``_stop``, ``_handle_receive`` and the loop steps they call); they are stable
across pykka 4.x, and ``tests/dsmt/test_actor.py`` fails loudly if they change.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar, Hashable, Mapping

import pykka

from dsmt._exit import (
    ERROR,
    KILLED,
    NORMAL,
    SHUTDOWN,
    ChildExit,
    Error,
    ExitReason,
    Lifeline,
    exit_kind,
)
from dsmt.context import Context, Publisher
from dsmt.event import STATUS, Address
from dsmt.states import COMPONENT, FAILED, TERMINATED, Machine

__all__ = [
    "ERROR", "KILLED", "NORMAL", "SHUTDOWN", "Actor", "ChildExit", "Error", "ExitReason",
    "Lifeline", "Origin", "StateChanged", "exit_kind", "fail", "kill", "status_payload", "tell",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Origin:
    """Where an actor sits in the tree: its node context, path, parent and child id."""

    ctx: Context
    path: str
    parent: Any = None
    child_id: Hashable = None
    lifeline: Lifeline = field(default_factory=Lifeline, compare=False)

    @classmethod
    def root(cls, ctx: Context) -> Origin:
        """The origin of a sliver's root actor, at ``/<sliver>``."""
        return cls(ctx, f"/{ctx.sliver}")

    def child(self, child_id: Hashable, parent: Any) -> Origin:
        """The origin of child ``child_id`` of the actor at this path, with a fresh lifeline."""
        return Origin(self.ctx, f"{self.path}/{child_id}", parent, child_id)

    @property
    def component(self) -> str:
        """The status channel's component name: the path after the sliver, joined by '.'."""
        elements = self.path.strip("/").split("/")[1:]
        return ".".join(elements) if elements else "sliver"


@dataclass(frozen=True, slots=True)
class StateChanged:
    """Told to the observers of ``path`` after each state change of the actor there.

    ``since`` is the wall time the state was entered; ``actor`` is the urn of
    the actor that sent it, so an observer tells one incarnation of a path
    from the next.
    """

    path: str
    state: str
    since: float
    reason: str | None
    detail: Mapping[str, Any]
    actor: str = ""


class _Kill:
    """Wakes a brutally killed actor so its loop sees the stop flag."""


def kill(ref: Any) -> None:
    """Brutally kill the actor behind ``ref``: no further message, no ``on_stop``.

    What threads allow: the actor stops *after the handler it is running now*
    returns (Python cannot interrupt a thread), processes no further message
    and runs neither ``on_stop`` nor ``on_failure``; its publisher is still
    closed and its path unregistered by its own thread. Returns at once, never
    waits. Callable from any thread; a dead actor is ignored.
    """
    try:
        ref.tell(_Kill())
    except pykka.ActorDeadError:
        return
    ref.actor_stopped.set()


@dataclass(frozen=True, slots=True)
class _Fail:
    """Makes the receiving actor raise ``exc`` in its own thread (see :func:`fail`)."""

    exc: Exception


def fail(ref: Any, exc: Exception) -> None:
    """Make the actor behind ``ref`` fail with ``exc``, as if a ``tell()`` handler raised it.

    The actor raises ``exc`` in its own thread once the messages queued before
    this one are handled: ``on_failure`` runs (a supervisor stops its
    children) and the parent is told an :class:`Error` exit, so the restart
    type, strategy and intensity of its supervisor decide what follows (OTP's
    ``exit(Pid, Reason)``). Returns at once; a dead actor is ignored.
    """
    try:
        ref.tell(_Fail(exc))
    except pykka.ActorDeadError:
        pass


def tell(ref: Any, message: Any) -> bool:
    """``ref.tell(message)``; False (not an error) if the actor is already gone."""
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        return False
    return True


class Actor(pykka.ThreadingActor):
    """Base of every DSMT actor; start with ``MyActor.start(origin, **config)``."""

    machine: ClassVar[Machine] = COMPONENT
    emit_rate: ClassVar[float | None] = None
    managed: ClassVar[bool] = True
    # The state published when the thread ends, per exit kind, if the machine allows it.
    exit_states: ClassVar[Mapping[str, str]] = {
        NORMAL: TERMINATED, SHUTDOWN: TERMINATED, ERROR: FAILED}

    def __init__(self, origin: Origin, **config: Any) -> None:
        """Runs in the starting thread; keep it to plain assignments."""
        super().__init__()
        self.origin = origin
        self.ctx = origin.ctx
        self.path = origin.path
        self.parent = origin.parent
        self.child_id = origin.child_id
        self.component = origin.component
        self.config = dict(config)
        self.state = self.machine.initial
        self.since = self.ctx.clock.wall()
        self.reason: str | None = None
        self.detail: dict[str, Any] = {}
        self.counters: dict[str, int] = {}
        self._publisher: Publisher | None = None
        self._exit_reason: ExitReason | None = None
        self._error: Error | None = None

    # --- public API (actor thread) -----------------------------------------

    def change_state(self, new: str, reason: str | None = None, **detail: Any) -> None:
        """Move to ``new`` if the machine allows it, record it and publish the status.

        Raises :class:`dsmt.errors.TransitionError` on an illegal transition
        (nothing is recorded or published then). Call it from the actor's
        thread only: the publisher belongs to that thread.
        """
        new = self.machine.check(self.state, new)
        self.state, self.reason, self.detail = new, reason, detail
        self.since = self.ctx.clock.wall()
        self.count("transitions")
        self._announce()

    def update_detail(self, **detail: Any) -> None:
        """Merge ``detail`` into the current state's and say so, as :meth:`change_state` does.

        Not a transition: the state, its reason and ``since`` stay; the status
        is re-published and the observers told. Actor thread only.
        """
        self.detail = {**self.detail, **detail}
        self._announce()

    def _announce(self) -> None:
        self.publish_status()
        for observer in self.ctx.registry.observers(self.path):
            self.report_state(observer)

    def report_state(self, observer: Any) -> None:
        """Tell ``observer`` the current state as a :class:`StateChanged` (actor thread).

        An observer that is gone is dropped from the path's observers. Another
        actor asks for the state without waiting on this one by calling it
        through a proxy and ignoring the future.
        """
        message = StateChanged(self.path, self.state, self.since, self.reason,
                               dict(self.detail), self.actor_urn)
        try:
            observer.tell(message)
        except pykka.ActorDeadError:
            self.ctx.registry.unobserve(self.path, observer)

    def publish_status(self) -> None:
        """(Re-)publish the current state as a retained status event (actor thread)."""
        if self._publisher is None:
            return
        self._publisher.publish(
            self.ctx.layout.status(self.component, self.ctx.sliver),
            STATUS,
            status_payload(self.ctx, self.component, self.state, self.reason, self.detail,
                           managed=self.managed, emit_rate=self.emit_rate, path=self.path),
            retain=True,
        )

    @property
    def publisher(self) -> Publisher | None:
        """This actor's publisher, or None when the context publishes nothing (actor thread)."""
        return self._publisher

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def inspect(self) -> dict[str, Any]:
        """A plain snapshot: path, state, since (wall time), reason, counters, config, children."""
        return {
            "path": self.path,
            "class": type(self).__name__,
            "state": self.state,
            "since": self.since,
            "reason": self.reason,
            "detail": dict(self.detail),
            "counters": dict(self.counters),
            "config": dict(self.config),
            "children": self.inspect_children(),
        }

    def inspect_children(self) -> list[dict[str, Any]]:
        """Snapshots of the children; a supervisor overrides this."""
        return []

    def stop(self, reason: ExitReason = NORMAL) -> None:  # type: ignore[override]
        """Stop after the current message; the parent is told ``reason`` (actor thread).

        ``ref.stop()`` from another thread reports :data:`SHUTDOWN` instead.
        """
        if self._exit_reason is None:
            self._exit_reason = reason
        super().stop()

    # --- pykka internals: the exit report ------------------------------------

    def _actor_loop(self) -> None:
        try:
            try:
                self._publisher = self._open_publisher()
                self.ctx.registry.register(self.path, self.actor_ref)
            except Exception:
                self._handle_failure(*sys.exc_info())
            else:
                self._actor_loop_setup()
                if not self.actor_stopped.is_set():
                    self.origin.lifeline.mark_started()
                    self._actor_loop_running()
            self._actor_loop_teardown()
        finally:
            self._exit()

    def _open_publisher(self) -> Publisher | None:
        factory = self.ctx.publishers
        return None if factory is None else factory(Address(self.component, self.ctx.sliver))

    def _handle_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._error is None:
            self._error = Error.from_exc_info(exc_type, exc, tb)
        super()._handle_failure(exc_type, exc, tb)

    def _stop(self) -> None:
        if self._exit_reason is None:
            self._exit_reason = SHUTDOWN
        super()._stop()

    def _handle_receive(self, message: Any) -> Any:
        if isinstance(message, _Kill):
            if self._exit_reason is None:
                self._exit_reason = KILLED
            self.actor_stopped.set()
            return None
        if isinstance(message, _Fail):
            raise message.exc
        return super()._handle_receive(message)

    def _exit(self) -> None:
        """Last code of the actor thread: final status, close, unregister, report."""
        reason: ExitReason = self._error or self._exit_reason or KILLED
        final = self.exit_states.get(exit_kind(reason))
        try:
            if final and final != self.state and self.machine.allowed(self.state, final):
                text = None if reason == NORMAL else str(reason)
                self.change_state(final, text)
        except Exception:
            log.exception("%s: publishing the final state failed", self.path)
        try:
            if self._publisher is not None:
                self._publisher.close()
        except Exception:
            log.exception("%s: closing the publisher failed", self.path)
        self.ctx.registry.unregister(self.path, self.actor_ref)
        pykka.ActorRegistry.unregister(self.actor_ref)
        if self.parent is not None:
            try:
                self.parent.tell(ChildExit(self.child_id, self.actor_ref, reason))
            except pykka.ActorDeadError:
                pass  # the parent is gone: nobody left to report to
        self.origin.lifeline.mark_exited(reason)


def status_payload(
    ctx: Context,
    component: str,
    state: str,
    reason: str | None,
    detail: Mapping[str, Any],
    *,
    managed: bool = True,
    emit_rate: float | None = None,
    path: str | None = None,
) -> dict[str, Any]:
    """The status record: the original DSMT fields, then reason, path and typed detail.

    Raises ValueError if ``detail`` would overwrite one of the fixed fields.
    """
    payload: dict[str, Any] = {
        "hostname": ctx.hostname,
        "component": component,
        "slice": ctx.layout.slice,
        "state": state,
        "managed": managed,
        "emit-rate": emit_rate,
        "reason": reason,
        "path": path,
    }
    clash = payload.keys() & detail.keys()
    if clash:
        raise ValueError(f"status detail may not set {sorted(clash)}")
    payload.update(detail)
    return payload
