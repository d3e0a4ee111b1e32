"""A router and two `dsmt node` processes install and run the demo app from a plan."""

from __future__ import annotations

import json

from dsmt.testing import wait_for

from tests.e2e.conftest import Watcher, http_get

STAGES = ["fetch", "verify", "unpack", "install", "activate"]


def test_two_slivers_install_the_plan_and_serve_http_with_every_stage_seen_in_order(
        local_slice, demo_plan):
    slice_ = local_slice(slivers=2, plan=demo_plan)
    slice_.write()
    slice_.start_router()
    watcher = Watcher(slice_, slice_.layout.base)
    try:
        for member in slice_.members:
            slice_.start_sliver(member.name)
        for member in slice_.members:
            port = wait_for(lambda: member.app_port(), timeout=90,
                            message=f"the demo app of {member.name} to listen")
            body = wait_for(lambda: http_get(port, "/health"), timeout=30,
                            message=f"/health of {member.name}")
            health = json.loads(body)
            assert health["sliver"] == member.name and health["version"] == "1.0.0"

        for member in slice_.members:
            channel = slice_.layout.status("deployment-agent.agent", member.name)
            wait_for(lambda: any(e.payload.get("state") == "running"
                                 for e in watcher.on(channel)), timeout=30,
                     message=f"the agent of {member.name} running, as seen on the router")
            events = watcher.on(channel)
            stages = []
            for event in events:
                stage = event.payload.get("stage")
                if stage and (not stages or stages[-1] != stage):
                    stages.append(stage)
            assert stages == STAGES, stages
            by_epoch = {}
            for event in events:
                by_epoch.setdefault(event.epoch, []).append(event.seq)
            for epoch, seqs in by_epoch.items():
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), \
                    f"gap in the agent's events of {member.name}: {seqs}"
    finally:
        watcher.close()
