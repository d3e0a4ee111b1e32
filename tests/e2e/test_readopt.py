"""A `dsmt node` killed with -9 and started again re-adopts its running app instead of
duplicating it."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil
import pytest

from dsmt.testing import wait_for

from tests.e2e.conftest import Watcher, http_get

pytestmark = pytest.mark.timeout(240)


def demo_servers(root: Path) -> list[int]:
    """Pids of the demo-app server processes working under the slice's folder."""
    root_text = str(root.resolve())
    found = []
    for process in psutil.process_iter(["cwd", "cmdline", "status"]):
        cwd = process.info.get("cwd") or ""
        if process.info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        if (cwd == root_text or cwd.startswith(root_text + os.sep)) and \
                any(part.endswith("server.py") for part in process.info.get("cmdline") or ()):
            found.append(process.pid)
    return found


def health(port: int) -> dict | None:
    body = http_get(port, "/health")
    return None if body is None else json.loads(body)


def test_a_node_killed_with_sigkill_re_adopts_its_app_on_restart_and_still_restarts_it_on_exit(
        local_slice, demo_plan):
    slice_ = local_slice(slivers=1, plan=demo_plan)
    slice_.write()
    slice_.start_router()
    watcher = Watcher(slice_, slice_.layout.base)
    instance = slice_.layout.status("app.demo-app.0", "s1")

    def running_after(index: int, pid_ok) -> dict | None:
        return next((e.payload for e in watcher.on(instance)[index:]
                     if e.payload.get("state") == "running" and pid_ok(e.payload.get("pid"))),
                    None)

    try:
        member = slice_.start_sliver("s1")
        port = wait_for(slice_.member("s1").app_port, timeout=90, message="the app to listen")
        wait_for(lambda: health(port), timeout=30, message="/health")
        first = wait_for(lambda: running_after(0, bool), timeout=30,
                         message="the instance running, as seen on the router")
        pid = first["pid"]
        assert demo_servers(slice_.root) == [pid]

        os.kill(member.process.pid, signal.SIGKILL)  # the node only: the app has its own session
        member.process.wait(timeout=10)
        assert health(port)["status"] == "ok"  # it serves (and logs each request) without a node
        assert demo_servers(slice_.root) == [pid]

        seen = len(watcher.on(instance))
        slice_.start_sliver("s1")
        adopted = wait_for(lambda: running_after(seen, lambda p: p == pid), timeout=90,
                           message=lambda: f"the restarted node to re-adopt pid {pid}: "
                                           f"{[e.payload for e in watcher.on(instance)[seen:]]}")
        assert adopted["adopted"] is True and adopted["reason"] == "adopted"
        app_channel = slice_.layout.status("app", "s1")
        wait_for(lambda: any(e.payload.get("services", {}).get("demo-app", {}).get("adopted")
                             == [0] for e in watcher.on(app_channel)), timeout=30,
                 message="the app's status to list instance 0 as adopted")
        assert demo_servers(slice_.root) == [pid]  # no duplicate
        assert health(port)["status"] == "ok" and slice_.member("s1").app_port() == port
        # Nothing after the adoption moved it: the agent's Deploy of the active version
        # restarted nothing.
        assert all(e.payload.get("pid") == pid for e in watcher.on(instance)[seen:])

        seen = len(watcher.on(instance))
        os.kill(pid, signal.SIGKILL)  # its exit is seen through a pidfd: it is not our child
        again = wait_for(lambda: running_after(seen, lambda p: p not in (None, pid)),
                         timeout=60, message="a new process for the adopted instance")
        wait_for(lambda: demo_servers(slice_.root) == [again["pid"]], timeout=30,
                 message="exactly one demo server, the new one")
        wait_for(lambda: health(port), timeout=30, message="/health of the new process")
        assert "adopted" not in again
    finally:
        watcher.close()
