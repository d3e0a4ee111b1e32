"""Scaling policies: how many replicas a service should have, from the metrics the slice reports.

A policy is any object with ``decide(current, values, now) -> int``:
``current`` is the replicas in force, ``values`` the metric as reported by
the live slivers (their heartbeats), ``now`` a monotonic time. It must be
deterministic in its inputs and its own history, so coordinators fed the
same beats decide alike.

:class:`ThresholdPolicy` (the plan's ``[services.X.scaling]``): the mean of
``values`` above ``high`` adds one replica, below ``low`` removes one, never
outside ``[min, max]``, and at most one change per ``cooldown`` seconds. No
values: keep ``current`` (clamped into ``[min, max]``).

How coordinators agree (:mod:`actors.coordinator.scaler`): the
inputs are broadcast, and so is the history. ``values`` are the app's own
metric, one value per running instance slice-wide, as the slivers' beats
report it (:mod:`actors.metrics`); ``current`` and ``last_change`` are the
slice's latest decision, ``(replicas, wall time)``, which every beat carries
and every coordinator merges (the latest wins). A coordinator sets
``last_change`` from that merged decision before it calls :meth:`decide`,
so a step taken by any coordinator starts the cooldown everywhere, and two
coordinators that decide the same step a beat apart decide the same
replicas.

Deviation, and why: the cooldown is measured in wall time across slivers
(the decision's time travels in the beats), so it assumes clocks that agree
to well under ``cooldown``; two coordinators whose views differ for a beat
may still decide a beat apart, and the latest decision wins everywhere.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from actors.plan import Scaling


class Policy(Protocol):
    def decide(self, current: int, values: Sequence[float], now: float) -> int: ...


class ThresholdPolicy:
    """Step replicas up above ``high`` and down below ``low``, once per ``cooldown``."""

    def __init__(self, rule: Scaling) -> None:
        self.rule = rule
        self.last_change: float | None = None  # the slice's, when a coordinator runs it
        self.last_value: float | None = None

    def decide(self, current: int, values: Sequence[float], now: float) -> int:
        rule = self.rule
        bounded = min(rule.max, max(rule.min, current))
        if not values:
            return bounded
        value = self.last_value = sum(values) / len(values)
        if bounded != current:
            return self._changed(bounded, now)
        if self.last_change is not None and now - self.last_change < rule.cooldown:
            return current
        if value > rule.high and current < rule.max:
            return self._changed(current + 1, now)
        if value < rule.low and current > rule.min:
            return self._changed(current - 1, now)
        return current

    def _changed(self, replicas: int, now: float) -> int:
        self.last_change = now
        return replicas
