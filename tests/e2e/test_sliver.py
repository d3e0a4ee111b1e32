"""A router and two `dsmt node` processes install and run the demo app from a plan."""

from __future__ import annotations

import json
import resource

import psutil

from actors.container import Limits
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

        # The container's limits are on the app's process (node.toml's [limits]: the
        # defaults here), and its resource reports measure that process.
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nofile = Limits().nofile if hard == resource.RLIM_INFINITY else min(Limits().nofile, hard)
        for member in slice_.members:
            instance = slice_.layout.status("app.demo-app.0", member.name)
            pid = wait_for(lambda: next((e.payload["pid"] for e in reversed(watcher.on(instance))
                                         if e.payload.get("state") == "running"), None),
                           timeout=30, message=f"the running instance of {member.name}")
            assert psutil.Process(pid).rlimit(psutil.RLIMIT_NOFILE) == (nofile, nofile)
            resources = slice_.layout.resources(member.name)
            row = wait_for(lambda: next((p for e in reversed(watcher.on(resources))
                                         for p in e.payload["processes"] if p["pid"] == pid),
                                        None),
                           timeout=30, message=f"a resource report of {member.name} naming {pid}")
            assert row["service"] == "demo-app" and row["alive"] and row["rss"] > 0
    finally:
        watcher.close()
