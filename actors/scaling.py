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

Deviation, and why: each coordinator runs its own policy object, so two
coordinators whose views differ for a beat may decide a beat apart; the
placement they compute converges as soon as their views do.
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
        self.last_change: float | None = None
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
