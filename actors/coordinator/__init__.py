"""The coordinator: the slice's plan, the world view, placement and scaling on one sliver.

===========  ===================================================================
module       concept
===========  ===================================================================
actor        :class:`Coordinator`, the actor that composes the parts below and
             runs this sliver's share (placement, quarantine, plan commands)
plans        :class:`PlanKeeper`: load, persist, adopt and derive plans;
             anti-entropy pacing; :func:`to_toml`
beats        the heartbeat record and :class:`Beater`, the thread that sends it
scaler       :class:`Scaler`: scaling decisions merged across the slice
quarantine   :class:`Quarantine`: out of placement after failed installs
reader       :func:`start_reader`: the thread that reads plan and heartbeat events
===========  ===================================================================

The world view (:mod:`actors.world`), placement (:mod:`actors.placement`),
scaling policies (:mod:`actors.scaling`) and metric sampling
(:mod:`actors.metrics`) are pure modules of their own, shared with tests
and the CLI.
"""

from actors.coordinator.actor import Coordinator
from actors.coordinator.beats import Beater
from actors.coordinator.plans import PLAN_FILE, PlanKeeper, to_toml
from actors.coordinator.quarantine import Quarantine
from actors.coordinator.reader import Seen, start_reader
from actors.coordinator.scaler import Scaler

__all__ = ["PLAN_FILE", "Beater", "Coordinator", "PlanKeeper", "Quarantine", "Scaler",
           "Seen", "start_reader", "to_toml"]
