"""The application supervisor in a real tree: restarts, give-ups, ports, upgrades and rollbacks.

Real demo-app packages and processes under the app's per-service OTP
supervisors; bounded waits only, and no process outlives its test (see
:mod:`tests.actors.sliver_tree`).
"""

from __future__ import annotations

import os
import signal

import pytest

from dsmt.childspec import Backoff
from tests.actors.sliver_tree import *  # noqa: F401,F403 - fixtures
from dsmt.testing import wait_for
from tests.actors.sliver_tree import BOUND, get, service

pytestmark = pytest.mark.timeout(60)


def test_a_process_killed_with_sigkill_is_replaced_by_a_new_one_serving_on_the_same_port(
        sliver, package):
    tree = sliver()
    url, sha = package("1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    [before] = tree.wait_serving("demo-app", "1.0.0")
    os.kill(before["pid"], signal.SIGKILL)
    [after] = tree.wait_serving("demo-app", "1.0.0", exclude={before["pid"]})
    assert after["port"] == before["port"] and after["restarts"] == 1
    exited = tree.events.wait_for(lambda e: e.channel == tree.channel("app.demo-app.0")
                                  and e.payload["state"] == "exited", BOUND)
    assert exited.payload["reason"] == "killed by SIGKILL"


def test_replicas_with_a_port_base_get_base_plus_index_and_their_own_instance(sliver, package):
    tree = sliver()
    url, sha = package("1.0.0")
    base = _free_pair()
    tree.deploy(service("demo-app", url, sha, "1.0.0", replicas=2, port=base))
    rows = tree.wait_serving("demo-app", "1.0.0", count=2)
    assert [(r["instance"], r["port"]) for r in rows] == [(0, base), (1, base + 1)]
    assert rows[0]["pid"] != rows[1]["pid"]
    config = [c for c in tree.app.proxy().inspect().get(timeout=BOUND)["services"]["demo-app"]
              ["instances"]]
    assert [c["port"] for c in config] == [base, base + 1]
    running = tree.events.latest(tree.channel("app.demo-app")).payload
    assert running["ports"] == [base, base + 1] and running["version"] == "1.0.0"


def test_an_always_crashing_service_goes_fatal_with_its_reason_and_nothing_else_dies(
        sliver, package):
    tree = sliver()
    good_url, good_sha = package("1.0.0", name="other")
    bad_url, bad_sha = package("1.0.0", "crash")
    tree.deploy(service("other", good_url, good_sha, "1.0.0"))
    [other] = tree.wait_serving("other", "1.0.0")
    app = tree.app
    tree.deploy(service("demo-app", bad_url, bad_sha, "1.0.0", intensity=2, period=30.0,
                        backoff=Backoff(min=0.05, max=0.05, jitter=0.0, reset_after=None)),
                version=2)

    fatal = tree.events.wait_for(lambda e: e.channel == tree.channel("app.demo-app")
                                 and e.payload["state"] == "fatal", BOUND).payload
    assert fatal["reason"].startswith("gave up: shutdown: reached_max_restart_intensity")
    assert "exit 3" in fatal["reason"] and fatal["version"] == "1.0.0"
    summary = tree.services()
    assert summary["demo-app"]["state"] == "fatal" and summary["other"]["state"] == "running"
    assert tree.app is app and app.is_alive()  # the app did not go down with the service
    assert tree.root.is_alive() and tree.agent.is_alive()
    [still] = tree.instances("other")
    assert still["pid"] == other["pid"] and get(still["port"]) == 200
    assert tree.instances("demo-app")[0]["pid"] is None
    app_status = tree.events.latest(tree.channel("app")).payload
    assert app_status["state"] == "running"
    assert app_status["services"]["demo-app"]["state"] == "fatal"


def test_an_instance_is_counted_ready_once_it_passes_its_health_check_and_not_while_down(
        sliver, package):
    tree = sliver()
    url, sha = package("1.0.0")
    sick_url, sick_sha = package("1.0.0", "unhealthy", name="sick-app")
    tree.deploy(service("demo-app", url, sha, "1.0.0"), service("sick-app", sick_url, sick_sha,
                                                                "1.0.0"))
    [before] = tree.wait_serving("demo-app", "1.0.0")
    wait_for(lambda: tree.services()["demo-app"]["ready"] == 1, BOUND, "demo-app ready")
    ready = tree.events.latest(tree.channel("app.demo-app.0")).payload
    assert ready["state"] == "running" and ready["ready"] is True
    # sick-app answers, but its /health says 503: it runs (startsecs) and is never ready
    wait_for(lambda: any(r["state"] == "running" for r in tree.instances("sick-app")), BOUND,
             "sick-app running")
    assert tree.services()["sick-app"]["ready"] == 0
    assert not any(e.payload.get("ready") for e in tree.events.on(tree.channel("app.sick-app.0")))

    app = tree.channel("app")
    seen = len(tree.events.on(app))
    os.kill(before["pid"], signal.SIGKILL)
    tree.events.wait_for(lambda e: e.channel == app and e in tree.events.on(app)[seen:]
                         and e.payload["services"]["demo-app"]["ready"] == 0, BOUND)
    tree.wait_serving("demo-app", "1.0.0", exclude={before["pid"]})
    wait_for(lambda: tree.services()["demo-app"]["ready"] == 1, BOUND, "demo-app ready again")


def test_an_upgrade_that_passes_its_health_window_replaces_the_old_version(sliver, package):
    tree = sliver()
    for n, version in enumerate(("1.0.0", "2.0.0"), start=1):
        url, sha = package(version)
        tree.deploy(service("demo-app", url, sha, version), version=n)
        tree.wait_serving("demo-app", version)
    assert tree.services()["demo-app"]["reason"] == "upgraded from 1.0.0"


def test_an_unhealthy_upgrade_is_rolled_back_and_the_old_version_runs_again(
        sliver, package, workspace):
    tree = sliver()
    url, sha = package("1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    [old] = tree.wait_serving("demo-app", "1.0.0")
    url2, sha2 = package("2.0.0", "unhealthy")
    tree.deploy(service("demo-app", url2, sha2, "2.0.0"), version=2)

    rolled = tree.wait_agent("running", rolled_back_from="2.0.0")
    assert rolled["reason"].startswith("demo-app rolled back from 2.0.0 to 1.0.0: unhealthy: ")
    assert "503" in rolled["reason"]
    [back] = tree.wait_serving("demo-app", "1.0.0", exclude={old["pid"]})
    assert workspace.current("demo-app") == "1.0.0" and get(back["port"]) == 200
    summary = tree.services()["demo-app"]
    assert summary["rollback"].startswith("rolled back from 2.0.0: unhealthy: ")
    reported = tree.events.latest(tree.channel("app.demo-app")).payload
    assert reported["version"] == "1.0.0" and reported["rollback"] == summary["rollback"]
    # The same plan again does not flap back to the bad version.
    mark = len(tree.agent_events())
    tree.deploy(service("demo-app", url2, sha2, "2.0.0"), version=2)
    assert tree.agent.proxy().inspect().get(timeout=BOUND)["rejected"] == \
        {"demo-app 2.0.0": rolled["rollback"]}
    assert [p["state"] for p in tree.agent_events()[mark:]] == []


def test_a_crashing_upgrade_is_rolled_back_too(sliver, package, workspace):
    tree = sliver()
    url, sha = package("1.0.0")
    fast = dict(intensity=1, backoff=Backoff(min=0.05, max=0.05, jitter=0.0, reset_after=None))
    tree.deploy(service("demo-app", url, sha, "1.0.0", **fast))
    tree.wait_serving("demo-app", "1.0.0")
    url2, sha2 = package("2.0.0", "crash")
    tree.deploy(service("demo-app", url2, sha2, "2.0.0", **fast), version=2)
    rolled = tree.wait_agent("running", rolled_back_from="2.0.0")
    assert "gave up: shutdown: reached_max_restart_intensity" in rolled["reason"]
    tree.wait_serving("demo-app", "1.0.0")
    assert workspace.current("demo-app") == "1.0.0"


def test_the_same_version_installed_again_leaves_the_running_processes_alone(sliver, package):
    tree = sliver()
    url, sha = package("1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    [row] = tree.wait_serving("demo-app", "1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    tree.wait_agent("running", reason="demo-app 1.0.0 installed",
                    after=len(tree.agent_events()))
    # The agent told the app before it published `running`, so the app handles that
    # Installed before this call.
    assert tree.instances("demo-app")[0]["pid"] == row["pid"]


def test_a_new_plan_version_that_changes_only_replicas_leaves_the_local_share_running(
        sliver, package):
    from actors.messages import Assign
    from actors.plan import Placement, Scaling

    tree = sliver()
    url, sha = package("1.0.0")
    tree.app.tell(Assign("demo-app", 1))  # the coordinator's share: one instance here
    tree.deploy(service("demo-app", url, sha, "1.0.0", replicas=3))
    [row] = tree.wait_serving("demo-app", "1.0.0")
    # plan 2 (dsmt scale demo-app 5) and plan 3 (placement and scaling rules): the share
    # here and how an instance runs are the same, so nothing restarts
    tree.deploy(service("demo-app", url, sha, "1.0.0", replicas=5), version=2)
    tree.wait_agent("running", reason="demo-app 1.0.0 installed",
                    after=len(tree.agent_events()))
    tree.deploy(service("demo-app", url, sha, "1.0.0", replicas=5,
                        placement=Placement(max_per_sliver=2),
                        scaling=Scaling("load", 0.8, 0.2, 1, 5)), version=3)
    tree.wait_agent("running", reason="demo-app 1.0.0 installed",
                    after=len(tree.agent_events()))
    [after] = tree.instances("demo-app")
    assert (after["pid"], after["restarts"]) == (row["pid"], 0)
    assert tree.app.proxy().inspect().get(timeout=BOUND)["services"]["demo-app"]["state"] \
        == "running"


def test_a_new_plan_version_that_changes_how_an_instance_runs_restarts_it(sliver, package):
    from actors.messages import Assign

    tree = sliver()
    url, sha = package("1.0.0")
    tree.app.tell(Assign("demo-app", 1))
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    [row] = tree.wait_serving("demo-app", "1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0", env={"GREETING": "hi"}), version=2)
    tree.wait_serving("demo-app", "1.0.0", exclude={row["pid"]})


def _free_pair() -> int:
    """A base port whose successor is free too (bound and released at once)."""
    import socket
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            try:
                with socket.socket() as b:
                    b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two adjacent free ports")


