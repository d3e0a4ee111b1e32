"""The coordinator: decides what this sliver runs, and tells the deployment agent.

Today it applies the plan named in the node configuration at start: every
service with replicas > 0 is installed and run on this sliver. The slice-wide
part of DESIGN.md §5 — the plan on the plan channel with anti-entropy,
heartbeats and the world view, leaderless placement, scaling — builds on
this actor (issue "The slice").

Status: ``requested`` → ``initiated`` (plan loaded, ``plan_version`` in the
detail) → ``instantiated`` → ``running`` (agent told); ``failed`` if the plan file is wrong,
with the file/key/what error as the reason. A wrong plan is a user error,
not a crash: the actor stays up so the rest of the sliver keeps serving.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dsmt.actor import Actor, Origin
from dsmt.errors import DsmtError
from dsmt.states import FAILED, INITIATED, INSTANTIATED, REQUESTED, RUNNING

from actors import plan as plans
from actors.messages import Deploy

log = logging.getLogger(__name__)


class Coordinator(Actor):
    def __init__(self, origin: Origin, *, plan: str | Path | None = None,
                 agent: str, **config: Any) -> None:
        super().__init__(origin, plan=None if plan is None else str(plan), agent=agent, **config)
        self.plan_path = None if plan is None else Path(plan)
        self.agent_path = agent
        self.plan: plans.Plan = plans.EMPTY

    def on_start(self) -> None:
        self.change_state(REQUESTED)
        if self.plan_path is None:
            self.change_state(INITIATED, "no plan configured", plan_version=0)
            self.change_state(INSTANTIATED, "no plan configured", plan_version=0)
            self.change_state(RUNNING, "no plan configured", plan_version=0)
            return
        try:
            self.plan = plans.load(self.plan_path)
        except DsmtError as exc:
            log.error("%s: %s", self.path, exc)
            self.change_state(FAILED, str(exc))
            return
        self.change_state(INITIATED, plan_version=self.plan.version)
        wanted = [s.name for s in self.plan.services.values() if s.replicas != 0]
        agent = self.ctx.registry.get(self.agent_path)
        if agent is None:
            self.change_state(FAILED, f"no deployment agent at {self.agent_path}")
            return
        agent.tell(Deploy(self.plan, wanted))
        self.change_state(INSTANTIATED, plan_version=self.plan.version, services=wanted)
        self.change_state(RUNNING, plan_version=self.plan.version, services=wanted)

    def inspect(self) -> dict[str, Any]:
        snapshot = super().inspect()
        snapshot["plan_version"] = self.plan.version
        snapshot["services"] = sorted(self.plan.services)
        return snapshot
