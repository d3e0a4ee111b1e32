"""Scaling decisions of one coordinator, agreed with the slice through the heartbeats.

A :class:`Scaler` turns the metrics the live slivers broadcast into the
replicas of each service that has ``[scaling]`` in the plan, with a
:class:`actors.scaling.ThresholdPolicy` per service. Pure logic, no actor,
no bus, no clock of its own (the caller passes the wall time). Not
thread-safe: one owner (the coordinator's thread).

How the slice agrees (see also :mod:`actors.scaling`): every beat carries
the slice's latest decision per service (:meth:`Scaler.beat_entries`:
``{service: {replicas, changed, plan}}``, ``changed`` a wall time);
:meth:`Scaler.merge` takes a peer's when it is later than ours (the latest
wins), and :meth:`Scaler.step` decides from the merged one, so the cooldown
runs from the last step anyone took. A decision counts under the plan
version it was taken with: :meth:`Scaler.forget_changed` drops the decision
of a service the new plan changed (``dsmt scale``), which then starts again
from its ``replicas``, clamped into ``[min, max]``.

Contract of :meth:`Scaler.step`: sets :attr:`replicas` ``[service]`` (what
placement uses) and returns True when this coordinator took a new step.
Before the coordinator has settled (heard its peers) it takes no step of
its own, only clamps the slice's current decision. The decisions (``at``,
``from``, ``to``, ``value``, ``by``) are kept, the last
:data:`DECISIONS_KEPT` per service, in :meth:`Scaler.detail`.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from actors import plan as plans
from actors.scaling import ThresholdPolicy

log = logging.getLogger(__name__)

DECISIONS_KEPT = 20


class Scaler:
    """Per-service replicas from the slice's metrics and its merged latest decisions."""

    def __init__(self, owner: str = "") -> None:
        self.owner = owner
        self.policies: dict[str, ThresholdPolicy] = {}
        self.scaled: dict[str, tuple[int, float]] = {}  # the slice's latest (replicas, wall time)
        self.decisions: dict[str, list[dict[str, Any]]] = {}
        self.replicas: dict[str, int] = {}

    def forget_changed(self, old: plans.Plan, new: plans.Plan) -> None:
        """Drop the decisions of services that ``new`` changed (they restart from the plan)."""
        for name in list(self.scaled):
            if old.services.get(name) != new.services.get(name):
                del self.scaled[name]

    def step(self, service: plans.Service, beats: Iterable[Mapping[str, Any]], settled: bool,
             wall: float, by: str) -> bool:
        """Set ``replicas[service]`` from the slice's decision, stepping it if due; True if stepped.

        ``beats`` are the live slivers' heartbeats (in a stable order), whose
        ``metrics`` feed the policy.
        """
        rule = service.scaling
        assert rule is not None
        policy = self.policies.get(service.name)
        if policy is None or policy.rule != rule:
            policy = self.policies[service.name] = ThresholdPolicy(rule)
        initial = service.replicas if isinstance(service.replicas, int) else rule.min
        current, changed = self.scaled.get(service.name, (initial, None))
        values = sorted(float(v) for beat in beats
                        for v in metric_values(beat, service.name, rule.metric))
        if not settled:  # still hearing the peers' decisions: take none of our own
            self.replicas[service.name] = min(rule.max, max(rule.min, current))
            return False
        policy.last_change = changed
        replicas = policy.decide(current, values, wall)
        self.replicas[service.name] = replicas
        if replicas == current:
            return False
        self.scaled[service.name] = (replicas, wall)
        record = {"at": round(wall, 3), "from": current, "to": replicas,
                  "value": None if policy.last_value is None else round(policy.last_value, 4),
                  "by": by}
        self._keep(service.name, record)
        log.info("%s: %s scaled %d -> %d (%s %s over %d instances)", self.owner, service.name,
                 current, replicas, rule.metric, record["value"], len(values))
        return True

    def merge(self, plan: plans.Plan, name: str, entry: Any) -> bool:
        """Take a peer's scaling decision if it is later than ours; True if taken."""
        service = plan.services.get(name)
        if service is None or service.scaling is None or not isinstance(entry, dict):
            return False
        replicas, changed = entry.get("replicas"), entry.get("changed")
        if type(replicas) is not int or not isinstance(changed, (int, float)) \
                or entry.get("plan") != plan.version:
            return False  # a decision under another plan does not count
        ours = self.scaled.get(name)
        if ours is not None and (ours[1], ours[0]) >= (changed, replicas):
            return False
        if ours is not None and ours[0] != replicas:
            self._keep(name, {"at": round(changed, 3), "from": ours[0], "to": replicas,
                              "value": None, "by": entry.get("by") or "peer"})
        self.scaled[name] = (replicas, float(changed))
        return True

    def beat_entries(self, plan_version: int) -> dict[str, dict[str, Any]]:
        """What a heartbeat carries: the slice's latest decision per service."""
        return {name: {"replicas": r, "changed": t, "plan": plan_version}
                for name, (r, t) in self.scaled.items()}

    def detail(self) -> dict[str, Any]:
        """For the status detail and ``inspect()``: decisions and the metric's last value."""
        return {name: {"replicas": r, "changed": t,
                       "value": getattr(self.policies.get(name), "last_value", None),
                       "decisions": list(self.decisions.get(name, ()))}
                for name, (r, t) in self.scaled.items()}

    def _keep(self, name: str, record: dict[str, Any]) -> None:
        kept = self.decisions.setdefault(name, [])
        kept.append(record)
        del kept[:-DECISIONS_KEPT]


def metric_values(beat: Mapping[str, Any], service: str, metric: str) -> list[float]:
    """The values of ``metric`` a beat reports for ``service`` (one per instance)."""
    metrics = beat.get("metrics")
    values = metrics.get(service, {}) if isinstance(metrics, dict) else {}
    values = values.get(metric) if isinstance(values, dict) else None
    return [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)] \
        if isinstance(values, list) else []
