"""The router goes away for 30 s and comes back: the sliver's current state reaches PsEPR again."""

from __future__ import annotations

import os
import signal
import time

import zmq

from actors.localslice import SERVICE
from dsmt.bus import Bus
from dsmt.hub import Endpoints
from dsmt.testing import wait_for
from gateways.view import SliceView

from tests.e2e.conftest import http_get

DOWN = float(os.environ.get("DSMT_E2E_ROUTER_DOWN", "30"))


def test_a_router_outage_loses_no_retained_status(local_slice, demo_plan):
    slice_ = local_slice(slivers=1, plan=demo_plan)
    slice_.start()
    member = slice_.members[0]
    port = wait_for(slice_.member("s1").app_port, timeout=90, message="the app to listen")
    wait_for(lambda: http_get(port, "/health"), timeout=30, message="the app to answer")

    run = member.run_dir
    context = zmq.Context()
    try:
        endpoints = Endpoints.ipc(run)
        hub = Bus(context, endpoints).subscriber(slice_.layout.base, snapshot=True)
        latest = {}

        def seen(component: str, predicate) -> bool:
            while (event := hub.recv(timeout=0.05)) is not None:
                where = slice_.layout.parse_status(event.channel)
                if where is not None:
                    latest[where[0]] = event.payload
            return component in latest and predicate(latest[component])

        wait_for(lambda: seen("app.demo-app.0", lambda p: p["state"] == "running"), timeout=30,
                 message="the instance running, on the sliver's hub")
        old_pid = latest["app.demo-app.0"]["pid"]

        slice_.router.send_signal(signal.SIGTERM)
        slice_.router.wait(timeout=30)
        down_since = time.monotonic()
        wait_for(lambda: seen("bridge", lambda p: p["state"] != "running"), timeout=30,
                 message="the bridge to notice the router is gone")

        # While the router is away the sliver's state changes: the app is killed and restarted.
        os.kill(old_pid, signal.SIGKILL)
        wait_for(lambda: seen("app.demo-app.0", lambda p: p["state"] == "running"
                              and p["pid"] not in (None, old_pid)), timeout=30,
                 message="a new app process while the router is down")
        new_pid = latest["app.demo-app.0"]["pid"]
        wait_for(lambda: time.monotonic() - down_since >= DOWN, timeout=DOWN + 5,
                 message=f"the router to have been down {DOWN}s")

        slice_.start_router()
        with SliceView([slice_.address], SERVICE, slice_.password, slice_.layout) as view:
            wait_for(lambda: (view.status("s1", "app.demo-app.0") or {}).get("pid") == new_pid,
                     timeout=30, message=lambda: "the new pid seen through the router, saw "
                     f"{view.status('s1', 'app.demo-app.0')}")
            # The bridge's own "reconnecting" states were buffered while the router was away
            # and arrive first; its "running" follows once the flush is through.
            for component in ("bridge", "deployment-agent.agent"):
                wait_for(lambda: (view.status("s1", component) or {}).get("state") == "running",
                         timeout=30, message=lambda: f"{component} running through the router, "
                         f"saw {view.status('s1', component)}")
        hub.close()
    finally:
        context.destroy(linger=0)
