"""The container's limits on the application's real processes, and its reports of them.

A real tree -- container manager, deployment agent, application supervisor
with ``container=`` -- installs and runs the demo app; what is checked is
the running process itself (``/proc/<pid>/limits`` through psutil) and the
container's resource report, which finds the processes in the journal.
"""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from actors.agent import DeploymentAgent
from actors.app import AppSupervisor
from actors.container import ContainerManager, Limits
from actors.deploy.fetch import FetchLimits
from dsmt.childspec import ChildSpec
from tests.actors.sliver_tree import *  # noqa: F401,F403 - fixtures
from tests.actors.sliver_tree import BOUND, service

pytestmark = pytest.mark.timeout(60)

CONTAINER = "/s1/container"


@pytest.fixture
def limited(sliver, workspace):
    """``limited(limits, container=True)``: a tree whose app asks ``CONTAINER`` for limits."""
    def start(limits: Limits = Limits(nofile=123), container: bool = True):
        specs = [ChildSpec("container", ContainerManager, {
            "workspace": workspace.root, "limits": limits, "cgroups": False,
            "report_interval": None})] if container else []
        specs += [
            ChildSpec("deployment-agent", DeploymentAgent, {
                "workspace": workspace, "fetch_limits": FetchLimits(tries=1, timeout=2.0)}),
            ChildSpec("app", AppSupervisor, {"logs": workspace.logs, "health_window": 5.0,
                                             "container": CONTAINER}),
        ]
        return sliver(specs)
    return start


def open_files(pid: int) -> tuple[int, int]:
    return psutil.Process(pid).rlimit(psutil.RLIMIT_NOFILE)


def test_every_process_of_the_app_starts_under_the_containers_limits_restarts_included(
        limited, package):
    tree = limited(Limits(nofile=123, core=0))
    url, sha = package("1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    [first] = tree.wait_serving("demo-app", "1.0.0")
    assert open_files(os.getpid()) != (123, 123), "the node itself is not limited"
    assert open_files(first["pid"]) == (123, 123)
    assert psutil.Process(first["pid"]).rlimit(psutil.RLIMIT_CORE) == (0, 0)
    instance = tree.ctx.registry.get("/s1/app/demo-app/0")
    limits = instance.proxy().inspect().get(timeout=BOUND)["limits"]
    assert limits["rlimits"] == {"nofile": [123, 123], "core": [0, 0]}
    assert limits["cgroup"] == "unavailable: disabled by configuration"
    os.kill(first["pid"], signal.SIGKILL)
    [second] = tree.wait_serving("demo-app", "1.0.0", exclude={first["pid"]})
    assert open_files(second["pid"]) == (123, 123), "a restarted instance is limited too"


def test_the_resource_report_names_the_apps_processes_from_the_journal(limited, package):
    tree = limited()
    url, sha = package("1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0", replicas=2, port="auto"))
    rows = tree.wait_serving("demo-app", "1.0.0", count=2)
    container = tree.ctx.registry.get(CONTAINER).proxy()
    report = container.report_now().get(timeout=BOUND)
    assert [(p["service"], p["instance"], p["pid"], p["version"], p["alive"])
            for p in report["processes"]] == [
        ("demo-app", str(r["instance"]), r["pid"], "1.0.0", True) for r in rows]
    assert all(p["rss"] > 0 and p["processes"] >= 1 for p in report["processes"])


def test_no_process_starts_while_the_container_is_deselected(limited, package):
    tree = limited()
    container = tree.ctx.registry.get(CONTAINER).proxy()
    assert container.deselect().get(timeout=BOUND) == "deselected"
    url, sha = package("1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    fatal = tree.events.wait_for(lambda e: e.channel == tree.channel("app.demo-app")
                                 and e.payload["state"] == "fatal", BOUND).payload
    assert "is deselected: no process may start" in fatal["reason"]
    assert container.report_now().get(timeout=BOUND)["processes"] == []


def test_without_a_container_to_ask_no_process_starts_and_the_reason_says_why(
        limited, package):
    tree = limited(container=False)
    url, sha = package("1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    fatal = tree.events.wait_for(lambda e: e.channel == tree.channel("app.demo-app")
                                 and e.payload["state"] == "fatal", BOUND).payload
    assert f"no container manager at {CONTAINER}" in fatal["reason"]
