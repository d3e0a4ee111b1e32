"""Resuming an install after a crash: in any stage, midway through a download, after a
corrupt or stale archive or a lost version directory, and in a new agent process."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys

import pytest

from dsmt.testing import wait_for

from actors.deploy import journal as j
from actors.deploy.errors import ChecksumError
from actors.deploy.installer import Installer, InstallRequest
from actors.deploy.journal import Journal
from actors.deploy.verify import sha256_file

from tests.actors.conftest import Crash, Events

pytestmark = pytest.mark.timeout(30)


def _request(archive, sha, version="2.0", name="app"):
    return InstallRequest(name, version, archive.as_uri(), sha)


@pytest.mark.parametrize("stage", j.STAGES)
def test_an_install_interrupted_in_any_stage_resumes_there(workspace, app_package, make_manifest,
                                                           stage):
    archive, sha = app_package(make_manifest(version="1.0", install=["python", "-c", "pass"]))
    request = _request(archive, sha, version="1.0")

    def die(s, detail):
        if (s, detail) == (stage, "started"):
            raise Crash()

    with Journal(workspace.state_db) as first:
        with pytest.raises(Crash):
            Installer(workspace, first, progress=die).install(request)
        assert first.resume_point("app", "1.0") == stage
        assert first.stages("app", "1.0")[-1].status == j.RUNNING
    events = Events()
    with Journal(workspace.state_db) as second:
        assert [r.resume_at for r in second.unfinished()] == [stage]
        Installer(workspace, second, progress=events).install(request)
        assert second.resume_point("app", "1.0") is None
    assert events[0] == (stage, f"resuming app 1.0 at {stage}")
    assert events.stages("resuming after interruption") == [stage]
    assert events.stages("started") == list(j.STAGES[j.STAGES.index(stage) + 1:])
    assert workspace.current("app") == "1.0"


def test_a_download_interrupted_midway_resumes_with_a_range_request(
        workspace, app_package, make_manifest, http_server):
    blob = base64.b64encode(os.urandom(600_000))
    archive, sha = app_package(make_manifest(version="1.0"), {"data.txt": blob})
    shutil.copy(archive, http_server.root / archive.name)
    request = InstallRequest("app", "1.0", http_server.url(archive.name), sha)

    def die_after_some_bytes(stage, detail):
        if stage == j.FETCH and detail not in ("started",) and not detail.startswith("0.0"):
            raise Crash()

    with Journal(workspace.state_db) as journal:
        with pytest.raises(Crash):
            Installer(workspace, journal, progress=die_after_some_bytes).install(request)
        part = workspace.packages / "app-1.0.tar.gz.part"
        got = part.stat().st_size
        assert 0 < got < archive.stat().st_size
        Installer(workspace, journal).install(request)
    assert http_server.requests[-1] == (f"/{archive.name}", f"bytes={got}-")
    assert (workspace.current_link("app") / "data.txt").read_bytes() == blob


def test_a_corrupt_download_is_fetched_again_on_the_next_attempt(
        workspace, journal, app_package, make_manifest, http_server):
    archive, sha = app_package(make_manifest(version="1.0"))
    (http_server.root / archive.name).write_bytes(b"corrupted in transit")
    request = InstallRequest("app", "1.0", http_server.url(archive.name), sha)
    installer = Installer(workspace, journal)
    with pytest.raises(ChecksumError):
        installer.install(request)
    shutil.copy(archive, http_server.root / archive.name)
    installer.install(request)
    assert workspace.current("app") == "1.0"
    assert [r.attempts for r in journal.stages("app", "1.0")][:2] == [1, 1]


def test_a_stale_archive_of_the_same_version_is_fetched_again(workspace, journal, app_package,
                                                              make_manifest):
    (workspace.packages / "app-1.0.tar.gz").write_bytes(b"an older build of 1.0")
    archive, sha = app_package(make_manifest(version="1.0"))
    Installer(workspace, journal).install(_request(archive, sha, version="1.0"))
    assert sha256_file(workspace.packages / "app-1.0.tar.gz") == sha


def test_a_version_directory_lost_after_install_is_unpacked_again(v1, events, tmp_path):
    events.clear()
    shutil.rmtree(v1.workspace.version_dir("app", "1.0"))
    v1.workspace.current_link("app").unlink()
    archive = tmp_path / "dist" / "app-1.0.tar.gz"  # what the v1 fixture installed
    v1.install(_request(archive, sha256_file(archive), version="1.0"))
    assert v1.workspace.current("app") == "1.0"
    assert events[0] == (j.UNPACK, "resuming app 1.0 at unpack")
    assert events.stages("started") == [j.UNPACK, j.INSTALL, j.ACTIVATE]


AGENT = """
import sys
from actors.deploy.installer import Installer, InstallRequest
from actors.deploy.journal import Journal
from actors.workspace import Workspace
ws = Workspace.create(sys.argv[1])
with Journal(ws.state_db) as journal:
    Installer(ws, journal).install(InstallRequest("app", "1.0", sys.argv[2], sys.argv[3]))
"""

# First run: records its pid and blocks (the agent is killed meanwhile); a resumed run passes.
BLOCKING_INSTALL = """
import os, signal
if os.path.exists("install.pid"):
    raise SystemExit(0)
with open("install.pid.tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace("install.pid.tmp", "install.pid")
signal.pause()
"""


def test_an_agent_killed_during_install_resumes_in_a_new_process(
        workspace, app_package, make_manifest):
    archive, sha = app_package(make_manifest(version="1.0", install=["python", "install.py"]),
                               {"install.py": BLOCKING_INSTALL})
    agent = subprocess.Popen([sys.executable, "-c", AGENT, str(workspace.root), archive.as_uri(),
                              sha])
    pidfile = workspace.version_dir("app", "1.0") / "install.pid"
    try:
        wait_for(pidfile.exists, timeout=15, message="the install command to start")
    finally:
        agent.kill()
        agent.wait(5)
    # The orphaned install step, in its own session.
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    with Journal(workspace.state_db) as journal:
        [pending] = journal.unfinished()
        assert (pending.resume_at, pending.failed) == (j.INSTALL, False)
        events = Events()
        Installer(workspace, journal, progress=events).install(
            InstallRequest("app", "1.0", pending.source, pending.sha256))
    assert events[0] == (j.INSTALL, "resuming app 1.0 at install")
    assert workspace.current("app") == "1.0"
