"""The deployment agent in a real tree: installs, stage events, failures, resume, undeploy.

Real packages (the demo app built into tmp_path), real installs, real
processes under the app supervisor; every wait is bounded and no process
outlives its test (see :mod:`tests.actors.sliver_tree`).
"""

from __future__ import annotations

import hashlib
import os

import pytest

from actors.deploy.installer import Installer, InstallRequest
from actors.deploy.journal import STAGES, Journal
from actors.messages import Undeploy
from dsmt.testing import wait_for
from tests.actors.conftest import manifest_text
from tests.actors.sliver_tree import *  # noqa: F401,F403 - fixtures
from tests.actors.sliver_tree import BOUND, get, service

pytestmark = pytest.mark.timeout(60)


def test_a_deployed_plan_is_installed_and_answers_http_health_on_its_port(sliver, package,
                                                                           workspace):
    tree = sliver()
    url, sha = package("1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    [row] = tree.wait_serving("demo-app", "1.0.0")
    assert workspace.current("demo-app") == "1.0.0"
    assert row["instance"] == 0 and row["state"] == "running" and get(row["port"]) == 200
    done = tree.wait_agent("running", reason="demo-app 1.0.0 installed")
    assert done["app_told"] is True and done["service"] == "demo-app"


def test_every_stage_is_published_in_order_with_typed_detail(sliver, package):
    tree = sliver()
    url, sha = package("1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    tree.wait_agent("running", reason="demo-app 1.0.0 installed")
    steps = [p for p in tree.agent_events() if p["state"] == "initiated" and p.get("job")]
    started = [p["stage"] for p in steps if p["step"] == "started"]
    finished = [p["stage"] for p in steps if p["step"] == "done"]
    assert started == list(STAGES) and finished == list(STAGES)
    for p in steps:
        assert p["service"] == "demo-app" and p["version"] == "1.0.0" and p["job"] == "install"
        assert p["attempt"] >= 1 and p["elapsed"] >= 0
    assert all(p["stage_elapsed"] >= 0 for p in steps if p["step"] == "done")
    states = [p["state"] for p in tree.agent_events()]
    tail = states[states.index("requested", 4):]  # after the agent's own start-up
    assert [s for i, s in enumerate(tail) if i == 0 or s != tail[i - 1]] == \
        ["requested", "initiated", "instantiated", "running"]


def _bad_checksum(package, tar_archive, app_package, closed_port):
    url, sha = package("2.0.0")
    return url, hashlib.sha256(b"something else").hexdigest()


def _path_traversal(package, tar_archive, app_package, closed_port):
    archive = (tar_archive("demo-app-2.0.0.tar.gz")
               .file("demo-app-2.0.0/dsmt-app.toml", manifest_text("demo-app", "2.0.0").encode())
               .file("../../escaped.txt", b"owned").build())
    return archive.as_uri(), hashlib.sha256(archive.read_bytes()).hexdigest()


def _failing_install(package, tar_archive, app_package, closed_port):
    text = manifest_text("demo-app", "2.0.0", install=["python", "-c", "raise SystemExit(5)"])
    archive, sha = app_package(text)
    return archive.as_uri(), sha


def _unreachable(package, tar_archive, app_package, closed_port):
    return f"http://127.0.0.1:{closed_port}/demo-app-2.0.0.tar.gz", "0" * 64


@pytest.mark.parametrize("make, words, stage", [
    (_bad_checksum, "checksum mismatch", "verify"),
    (_path_traversal, "unsafe archive", "unpack"),
    (_failing_install, "install failed", "install"),
    (_unreachable, "fetch failed", "fetch"),
], ids=["checksum-mismatch", "path-traversal", "failing-install", "unreachable-url"])
def test_a_bad_package_fails_with_a_clear_reason_and_the_previous_version_keeps_running(
        sliver, package, workspace, tar_archive, app_package, closed_port, make, words, stage):
    tree = sliver()
    url, sha = package("1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    [before] = tree.wait_serving("demo-app", "1.0.0")
    mark = len(tree.agent_events())

    bad_url, bad_sha = make(package, tar_archive, app_package, closed_port)
    tree.deploy(service("demo-app", bad_url, bad_sha, "2.0.0"), version=2)
    failed = tree.wait_agent("failed", after=mark)
    assert failed["reason"].startswith(f"{stage}: {words}: "), failed["reason"]
    assert failed["service"] == "demo-app" and failed["version"] == "2.0.0"
    assert failed["stage"] == stage
    assert workspace.current("demo-app") == "1.0.0"
    assert not (workspace.root.parent / "escaped.txt").exists()
    [after] = tree.instances("demo-app")
    assert after["pid"] == before["pid"] and get(after["port"]) == 200
    assert tree.services()["demo-app"]["version"] == "1.0.0"


def test_an_agent_started_after_an_interrupted_install_resumes_it_and_says_where(
        sliver, package, workspace):
    url, sha = package("1.0.0")
    with Journal(workspace.state_db) as journal:  # an earlier agent got as far as install
        Installer(workspace, journal).install(InstallRequest("demo-app", "1.0.0", url, sha),
                                              activate=False)
    tree = sliver()
    resumed = tree.wait_agent("requested", resumed_from="activate")
    assert resumed["reason"] == "resuming demo-app 1.0.0 at activate"
    tree.wait_agent("running", reason="demo-app 1.0.0 installed")
    steps = [p["stage"] for p in tree.agent_events() if p.get("step") == "started"]
    assert steps == ["activate"]  # nothing done twice
    # Without a plan the app runs the manifest's defaults: one instance, a free port.
    tree.wait_serving("demo-app", "1.0.0")


def test_undeploy_stops_the_service_and_removes_versions_that_are_not_current(
        sliver, package, workspace):
    tree = sliver()
    for n, version in enumerate(("1.0.0", "2.0.0"), start=1):
        url, sha = package(version)
        tree.deploy(service("demo-app", url, sha, version), version=n)
        [row] = tree.wait_serving("demo-app", version)
    assert workspace.installed("demo-app") == ["1.0.0", "2.0.0"]
    pid = row["pid"]
    tree.agent.tell(Undeploy("demo-app"))
    tree.wait_agent("running", job="uninstall")
    assert workspace.installed("demo-app") == ["2.0.0"] and workspace.current("demo-app") == "2.0.0"
    assert tree.instances("demo-app") == [] and "demo-app" not in tree.services()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_agent_answers_inspect_while_an_install_runs(sliver, app_package):
    tree = sliver()
    text = manifest_text("slow", "1.0.0", install=["python", "-c",
                                                   "import time; time.sleep(1.5)"])
    archive, sha = app_package(text)
    tree.deploy(service("slow", archive.as_uri(), sha, "1.0.0", replicas=0))
    tree.wait_agent("initiated", stage="install")
    snapshot = tree.agent.proxy().inspect().get(timeout=0.5)  # the mailbox is not blocked
    assert snapshot["job"] == {"kind": "install", "service": "slow", "version": "1.0.0",
                               "stage": "install"}
    wait_for(lambda: tree.agent.proxy().inspect().get(timeout=BOUND)["job"] is None, BOUND)
