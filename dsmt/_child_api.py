"""The supervisor's child API, OTP's: start, terminate, restart, delete, list, count.

:class:`ChildAPI` is a mixin of :class:`dsmt.supervisor.Supervisor` and of
nothing else: it holds the calls a user makes about children, and their
refusals, while the supervisor keeps the state machine, the restart
decisions and the child records (``_children``, ``_specs``, ``strategy``,
``auto_shutdown``, ``_add``, ``_start``, ``_stop_children``), which these
methods use.

Every method runs in the supervisor's thread; call it through a proxy, e.g.
``ref.proxy().start_child(spec).get(timeout=5)``. Refusals raise
:class:`dsmt.errors.SupervisorError` in the caller (pykka returns exceptions
of proxy calls to the caller and the supervisor lives on).
"""

from __future__ import annotations

from typing import Any, Hashable

from dsmt._child import Child
from dsmt.childspec import (SIMPLE_ONE_FOR_ONE, SUPERVISOR, TEMPORARY, ChildInfo, ChildSpec,
                            Counts, check_in_supervisor)
from dsmt.errors import SupervisorError


class ChildAPI:
    """start_child, terminate_child, restart_child, delete_child, which/count_children."""

    def start_child(self, spec: ChildSpec | None = None, **kwargs: Any) -> Any:
        """Start and supervise a new child; returns its ref.

        Static strategies take a :class:`ChildSpec`, appended last. A
        simple_one_for_one supervisor takes no spec: ``kwargs`` are added to
        its template spec's kwargs and the child id is the next integer.
        Raises SupervisorError: ``already_started`` (detail: the ref),
        ``already_present``, ``bad_spec``, or ``start_failed`` (detail: the exit
        reason; the spec is not kept).
        """
        if self.strategy == SIMPLE_ONE_FOR_ONE:
            if spec is not None:
                raise SupervisorError("bad_spec",
                                      "simple_one_for_one children come from its template")
            child = self._add(self._specs[0].with_id(next(self._dynamic_ids)), kwargs)
        else:
            if spec is None or kwargs:
                raise SupervisorError("bad_spec", "start_child needs a ChildSpec and nothing else")
            check_in_supervisor(spec, self.auto_shutdown)
            existing = self._children.get(spec.id)
            if existing is not None:
                if existing.alive:
                    raise SupervisorError("already_started", existing.ref)
                raise SupervisorError("already_present", spec.id)
            child = self._add(spec)
        outcome = self._start(child)
        if outcome is not True:
            del self._children[child.id]
            raise SupervisorError("start_failed", outcome)
        return child.ref

    def terminate_child(self, child_id: Hashable) -> None:
        """Stop a child (its spec is kept, except temporary and dynamic ones).

        A simple_one_for_one supervisor accepts the child's ref or its id.
        Cancels a pending restart. Raises SupervisorError ``not_found``.
        """
        child = self._find(child_id)
        self._stop_children([child])
        if child.spec.restart == TEMPORARY or self.strategy == SIMPLE_ONE_FOR_ONE:
            del self._children[child.id]

    def restart_child(self, child_id: Hashable) -> Any:
        """Start a stopped child again from its spec; returns the new ref.

        Raises SupervisorError ``running``, ``restarting``, ``not_found``,
        ``simple_one_for_one`` or ``start_failed`` (the spec is kept).
        """
        child = self._static(child_id)
        outcome = self._start(child)
        if outcome is not True:
            raise SupervisorError("start_failed", outcome)
        return child.ref

    def delete_child(self, child_id: Hashable) -> None:
        """Forget the spec of a stopped child.

        Raises SupervisorError ``running``, ``restarting``, ``not_found`` or
        ``simple_one_for_one``.
        """
        child = self._static(child_id)
        del self._children[child.id]

    def which_children(self) -> list[ChildInfo]:
        """Every child in start order (OTP's ``which_children``)."""
        return [
            ChildInfo(c.id, c.ref, c.spec.type, c.pending is not None, c.state)
            for c in self._children.values()
        ]

    def count_children(self) -> Counts:
        """How many specs, live actors, supervisors and workers (OTP's ``count_children``)."""
        children = list(self._children.values())
        supervisors = sum(1 for c in children if c.spec.type == SUPERVISOR)
        return Counts(len(children), sum(1 for c in children if c.alive),
                      supervisors, len(children) - supervisors)

    def _find(self, key: Hashable) -> Child:
        if self.strategy == SIMPLE_ONE_FOR_ONE and hasattr(key, "actor_urn"):
            for child in self._children.values():
                if child.ref is not None and child.ref.actor_urn == key.actor_urn:
                    return child
            raise SupervisorError("not_found", key)
        child = self._children.get(key)
        if child is None:
            raise SupervisorError("not_found", key)
        return child

    def _static(self, child_id: Hashable) -> Child:
        """A child that restart_child/delete_child may act on."""
        if self.strategy == SIMPLE_ONE_FOR_ONE:
            raise SupervisorError("simple_one_for_one", child_id)
        child = self._find(child_id)
        if child.alive:
            raise SupervisorError("running", child_id)
        if child.pending is not None:
            raise SupervisorError("restarting", child_id)
        return child
