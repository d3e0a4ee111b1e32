"""Heartbeats: what a sliver tells the slice about itself every period.

Every ``heartbeat`` seconds the coordinator publishes, on
``layout.heartbeat(sliver)`` (retained), the record :func:`build` makes::

    {sliver, epoch, plan_version, labels,
     services:    {service: instances running here},
     assigned:    {service: this sliver's share},
     load:        {"load": 1-minute load average per CPU},
     metrics:     {service: {metric: [value per instance]}},
     scaling:     {service: {replicas, changed, plan}},
     quarantined: reason | None,
     restarts:    share changes so far,
     leaving:     true            (only in the goodbye of a graceful stop)}

Every coordinator reads everyone's into an :class:`actors.world.WorldView`.
Pure functions; the caller owns the publishing.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping


def build(*, sliver: str, epoch: str, plan_version: int, labels: Iterable[str],
          services: Mapping[str, int], assigned: Mapping[str, int],
          metrics: Mapping[str, Any], scaling: Mapping[str, Any], quarantined: str | None,
          restarts: int, leaving: bool = False) -> dict[str, Any]:
    """The heartbeat record (see the module docstring)."""
    beat = {"sliver": sliver, "epoch": epoch, "plan_version": plan_version,
            "labels": list(labels), "services": dict(services), "assigned": dict(assigned),
            "load": {"load": load()}, "metrics": dict(metrics), "scaling": dict(scaling),
            "quarantined": quarantined, "restarts": restarts}
    if leaving:
        beat["leaving"] = True
    return beat


def load() -> float | None:
    """This machine's 1-minute load average per CPU, or None where it is not known."""
    try:
        return round(os.getloadavg()[0] / (os.cpu_count() or 1), 3)
    except OSError:
        return None
