"""Keep a group of actors running: the Erlang/OTP supervisor, on pykka threads.

Principles (as OTP's ``supervisor`` module states them):

- Children start in the order of their specs and stop in reverse order.
  A child has started when its ``on_start`` has returned.
- When a child exits, :data:`dsmt._restart.RESTART` decides from its restart
  type and exit kind whether it comes back; the strategy
  (:data:`dsmt._restart.SCOPE`) decides which siblings are stopped (reverse
  order) and started again (start order) with it: ``one_for_one`` only the
  child, ``one_for_all`` all, ``rest_for_one`` the child and those started
  after it, ``simple_one_for_one`` (many children of one spec, started by
  :meth:`Supervisor.start_child`) only the child. A temporary sibling taken
  down this way is not restarted but deleted.
- Intensity: one restart more than ``intensity`` within ``period`` seconds
  (default 1 in 5 s) makes the supervisor give up: it stops all children
  (reverse order), publishes why, calls ``on_give_up`` and exits with
  ``Error("shutdown", "reached_max_restart_intensity")``, which its own
  parent sees as an abnormal exit. (OTP exits with ``shutdown``, which a
  *transient* parent spec would treat as normal; DESIGN.md §2 asks for an
  escalating error, so a transient supervisor child is restarted here.)
- Nothing blocks the mailbox between attempts: a restart that fails, or
  one that waits for its backoff, is retried by the supervisor telling
  itself (OTP's ``try_again_restart``), through ``ctx.clock.call_later``
  when there is a delay. Every retry counts against the intensity.
  Starting and stopping one child does block, as in OTP: the supervisor
  waits for ``on_start`` (up to ``start_timeout``) and for the exit (up to
  ``shutdown``).
- Significant children and ``auto_shutdown`` (OTP 24): when a significant
  child exits by itself and is not restarted, ``any_significant`` shuts the
  supervisor down at once and ``all_significant`` when no significant child
  is left alive; the supervisor exits with :data:`dsmt.actor.SHUTDOWN`.
  Terminating a child through the API never triggers it.
- DSMT extension: a spec's :class:`dsmt.childspec.Backoff` delays each
  restart; meanwhile the child's state is ``backoff`` and ``inspect()`` shows
  the wall time of the next attempt and the restarts left in the window.
  ``backoff`` and ``fatal`` (gave up) are published on the child's own status
  channel, because no actor of the child exists then to speak for it.

``brutal_kill`` with threads: see :func:`dsmt.actor.kill`. The supervisor
does not wait, forgets the child at once and frees its path; the old thread
ends when its current handler returns, without ``on_stop``. A timeout that
expires degrades to the same kill.

The API (``start_child``, ``terminate_child``, ``restart_child``,
``delete_child``, ``which_children``, ``count_children``: the mixin
:class:`dsmt._child_api.ChildAPI`) runs in the supervisor's thread; call it
through a proxy, e.g. ``ref.proxy().start_child(spec).get(timeout=5)``.
Refusals raise :class:`dsmt.errors.SupervisorError` in the caller (pykka
returns exceptions of proxy calls to the caller and the supervisor lives on).
This module holds the life cycle, the restart decisions and the child records.
"""

from __future__ import annotations

import itertools
import logging
import random
from typing import Any, Callable, Hashable, Sequence

from dsmt import _restart
from dsmt._child import Child, await_stop, publish_record, signal_stop, start_actor
from dsmt._child_api import ChildAPI
from dsmt._restart import TryAgain, backoff_delay, tell_quietly
from dsmt.actor import NORMAL, SHUTDOWN, Actor, ChildExit, Error, ExitReason, Origin, exit_kind
from dsmt.childspec import (NEVER, ONE_FOR_ONE, SIMPLE_ONE_FOR_ONE, TEMPORARY, ChildSpec,
                            check_supervisor)
from dsmt.errors import SupervisorError
from dsmt.states import (BACKOFF, EXITED, FAILED, FATAL, INITIATED, INSTANTIATED, PROCESS,
                         REQUESTED, RUNNING, STOPPED, STOPPING, TERMINATED)

log = logging.getLogger(__name__)

MAX_INTENSITY = "reached_max_restart_intensity"
_PUBLISHED_FOR_CHILD = frozenset({BACKOFF, FATAL})  # states where no child actor can speak


class Supervisor(ChildAPI, Actor):
    """An OTP supervisor; start with ``Supervisor.start(origin, specs, strategy=..., ...)``."""

    is_supervisor = True

    def __init__(
        self,
        origin: Origin,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: str = ONE_FOR_ONE,
        intensity: int = 1,
        period: float = 5.0,
        auto_shutdown: str = NEVER,
        on_give_up: Callable[[Error], None] | None = None,
        rng: random.Random | None = None,
        **config: Any,
    ) -> None:
        """Validate flags and specs in the caller's thread (raises SupervisorError).

        ``on_give_up(reason)`` runs in the supervisor's thread when it gives up
        (intensity reached, or its children failed to start); a node's root
        supervisor uses it to exit the process non-zero. ``rng`` draws the
        backoff jitter.
        """
        super().__init__(origin, strategy=strategy, intensity=intensity, period=period,
                         auto_shutdown=auto_shutdown, **config)
        specs = check_supervisor(strategy, intensity, period, auto_shutdown, children)
        self.strategy = strategy
        self.auto_shutdown = auto_shutdown
        self._specs = specs
        self._children: dict[Hashable, Child] = {}  # insertion order is start order
        self._window = _restart.RestartWindow(intensity, period)
        self._on_give_up = on_give_up
        self._rng = rng or random.Random()
        self._tokens = itertools.count(1)
        self._dynamic_ids = itertools.count()
        self._closing = False

    # --- life cycle (supervisor thread) ---------------------------------------

    def on_start(self) -> None:
        """Start the static children in order; if one fails, stop the others and fail."""
        self.change_state(REQUESTED)
        self.change_state(INITIATED)
        if self.strategy != SIMPLE_ONE_FOR_ONE:
            for spec in self._specs:
                child = self._add(spec)
                outcome = self._start(child)
                if outcome is not True:
                    self._terminate_all()
                    error = Error("shutdown", f"failed to start child {spec.id!r}: {outcome}")
                    self.change_state(FAILED, str(error), child=str(spec.id))
                    self._call_give_up(error)
                    raise SupervisorError("start_failed", f"child {spec.id!r}: {outcome}")
        self.change_state(INSTANTIATED)
        self.change_state(RUNNING)

    def on_stop(self) -> None:
        self._terminate_all()

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # A bug in the supervisor itself: never leave orphans behind.
        self._terminate_all()

    def on_receive(self, message: Any) -> Any:
        if self._closing and isinstance(message, (ChildExit, TryAgain)):
            # Given up or shutting down: messages queued before the stop restart nothing.
            return None
        if isinstance(message, ChildExit):
            return self._child_exited(message)
        if isinstance(message, TryAgain):
            return self._try_again(message)
        return super().on_receive(message)

    # --- inspection (supervisor thread, through a proxy) -----------------------

    def inspect(self) -> dict[str, Any]:
        snapshot = super().inspect()
        snapshot["restarts_left"] = self._window.left(self.ctx.clock.monotonic())
        return snapshot

    def inspect_children(self) -> list[dict[str, Any]]:
        left = self._window.left(self.ctx.clock.monotonic())
        return [c.snapshot(left) for c in self._children.values()]

    # --- starting and stopping ---------------------------------------------

    def _add(self, spec: ChildSpec, extra: dict[str, Any] | None = None) -> Child:
        child = Child(spec, spec.id, f"{self.path}/{spec.id}", dict(extra or {}),
                      since=self.ctx.clock.wall())
        self._children[spec.id] = child
        return child

    def _start(self, child: Child) -> bool | ExitReason:
        """Start one child and wait for its ``on_start``; True, or why it did not start."""
        child.cancel_pending()
        return start_actor(child, self.ctx, self.actor_ref)

    def _stop_children(self, children: Sequence[Child]) -> None:
        """Stop ``children`` in reverse order (all at once for simple_one_for_one)."""
        ordered = list(reversed(children))
        for child in ordered:
            child.cancel_pending()
        if self.strategy == SIMPLE_ONE_FOR_ONE:
            signals = [(child, *self._signal(child)) for child in ordered]
            for child, ref, lifeline in signals:
                self._await(child, ref, lifeline)
        else:
            for child in ordered:
                self._await(child, *self._signal(child))

    def _signal(self, child: Child) -> tuple[Any, Any]:
        if child.alive:
            self._move(child, STOPPING)
        elif child.state == BACKOFF:
            self._move(child, STOPPED)  # its pending restart was just cancelled
        return signal_stop(child, self.ctx.registry)

    def _await(self, child: Child, ref: Any, lifeline: Any) -> None:
        # Records without an actor keep their state (exited, fatal, stopped).
        await_stop(child, ref, lifeline, self.ctx.registry)
        if child.state == STOPPING:
            self._move(child, STOPPED)

    def _terminate_all(self) -> None:
        self._stop_children(list(self._children.values()))

    # --- exits and restarts ----------------------------------------------------

    def _child_exited(self, message: ChildExit) -> None:
        child = self._children.get(message.child_id)
        if child is None or child.ref is None or child.ref.actor_urn != message.ref.actor_urn:
            return  # an exit we caused, or of an actor already replaced
        child.ref = child.lifeline = None
        kind = exit_kind(message.reason)
        self._move(child, EXITED, None if message.reason == NORMAL else str(message.reason))
        self.count(f"exits_{kind}")
        if _restart.RESTART[child.spec.restart, kind]:
            self._restart(child)
            return
        if child.spec.restart == TEMPORARY or self.strategy == SIMPLE_ONE_FOR_ONE:
            del self._children[child.id]
        if child.spec.significant:
            alive = sum(1 for c in self._children.values() if c.spec.significant and c.alive)
            if _restart.AUTO_SHUTDOWN[self.auto_shutdown](alive):
                self._shut_down(f"auto_shutdown ({self.auto_shutdown}): significant child "
                                f"{child.id!r} exited: {message.reason}")

    def _restart(self, child: Child) -> None:
        """Restart ``child`` and its strategy scope, now or after its backoff."""
        now = self.ctx.clock.monotonic()
        if not self._window.add(now):
            self._give_up(child)
            return
        order = list(self._children.values())
        group = _restart.SCOPE[self.strategy](order, order.index(child))
        siblings = [c for c in group if c is not child]
        self._stop_children([c for c in siblings if c.alive])
        for sibling in siblings:
            if sibling.spec.restart not in _restart.KEPT_AFTER_SIBLING_RESTART:
                del self._children[sibling.id]
        group = [c for c in group if c.id in self._children]
        delay = backoff_delay(child, now, self._rng)
        if delay:
            self._schedule(group, delay, counted=True)
        else:
            self._start_group(group)

    def _start_group(self, group: Sequence[Child]) -> None:
        """Start ``group`` in order; on a failure undo this attempt and try again later."""
        started: list[Child] = []
        for child in group:
            if child.alive:
                continue
            child.restarts += 1
            if self._start(child) is True:
                started.append(child)
                continue
            self._stop_children(started)
            retry = [c for c in group if c.id in self._children]
            self._schedule(retry, backoff_delay(child, self.ctx.clock.monotonic(), self._rng),
                           counted=False)
            return

    def _schedule(self, group: Sequence[Child], delay: float, counted: bool) -> None:
        """Ask ourselves to start ``group`` again after ``delay`` (0: right after this message)."""
        token = next(self._tokens)
        message = TryAgain(tuple(c.id for c in group), token, counted)
        wall = self.ctx.clock.wall() + delay
        for child in group:
            child.cancel_pending()
            child.pending = token
            if delay:
                child.next_attempt = wall
                # A sibling stopped for the group restart stays "stopped" until then.
                if PROCESS.allowed(child.state, BACKOFF):
                    self._move(child, BACKOFF, child.reason or "restarting")
        ref = self.actor_ref
        if delay:
            timer = self.ctx.clock.call_later(delay, lambda: tell_quietly(ref, message))
            for child in group:
                child.timer = timer
        else:
            ref.tell(message)

    def _try_again(self, message: TryAgain) -> None:
        group = [c for c in (self._children.get(i) for i in message.ids)
                 if c is not None and c.pending == message.token]
        if not group:
            return  # cancelled by terminate_child / restart_child / delete_child
        for child in group:
            child.cancel_pending()
        if not message.counted and not self._window.add(self.ctx.clock.monotonic()):
            self._give_up(group[0])
            return
        self._start_group(group)

    # --- giving up --------------------------------------------------------------

    def _give_up(self, child: Child) -> None:
        """Intensity reached: stop everything, say why, escalate."""
        self._closing = True
        cause = child.reason or "exited"
        self._move(child, FATAL, f"{MAX_INTENSITY}: {cause}")
        self._terminate_all()
        error = Error("shutdown", MAX_INTENSITY)
        self.count("give_ups")
        self.change_state(FAILED, f"shutdown: {MAX_INTENSITY}", child=str(child.id),
                          child_reason=cause, intensity=self._window.intensity,
                          period=self._window.period)
        self._call_give_up(error)
        self.stop(error)

    def _shut_down(self, why: str) -> None:
        self._closing = True
        self._terminate_all()
        self.change_state(TERMINATED, why)
        self.stop(SHUTDOWN)

    def _call_give_up(self, error: Error) -> None:
        if self._on_give_up is None:
            return
        try:
            self._on_give_up(error)
        except Exception:
            log.exception("%s: on_give_up hook failed", self.path)

    # --- child records ---------------------------------------------------------

    def _move(self, child: Child, state: str, reason: str | None = None) -> None:
        if child.move(state, self.ctx.clock.wall(), reason) and state in _PUBLISHED_FOR_CHILD:
            self._publish_for(child)

    def _publish_for(self, child: Child) -> None:
        if self.publisher is not None:
            left = self._window.left(self.ctx.clock.monotonic())
            publish_record(self.publisher, self.ctx, child, left, self.path)
