"""The app after a node restart: journaled instances re-adopted, stale ones replaced or forgotten.

A node killed with -9 leaves its services running and journaled. These
tests stage exactly that without killing the test runner: the version is
installed, its instance started here with the very command the app would
run (or a stand-in process), and the journal says so; then a fresh tree is
started and deployed, as a restarted ``dsmt node`` is. Real processes, bounded
waits; the ``reaper`` fails a test that leaves one behind.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys

import psutil
import pytest

from actors.deploy.installer import Installer, InstallRequest
from actors.deploy.journal import Journal
from actors.process import Command, LogSpec, spawn
from actors.service import free_port, service_spec
from dsmt.testing import wait_for
from tests.actors.sliver_tree import *  # noqa: F401,F403 - fixtures
from tests.actors.sliver_tree import BOUND, get, service

pytestmark = pytest.mark.timeout(60)

PAUSE = Command((sys.executable, "-c", "import signal; signal.pause()"))


def left_running(workspace, journal, reaper, url, sha, version, port):
    """What a killed node leaves: ``version`` installed, instance 0 serving on ``port``,
    journaled."""
    installed = Installer(workspace, journal).install(InstallRequest("demo-app", version, url, sha))
    plan = service("demo-app", url, sha, version)
    spec = service_spec(sliver="s1", plan=plan, manifest=installed.manifest,
                        version_dir=installed.path, ports=[port], incarnation=0,
                        logs=workspace.logs)
    command = spec.kwargs["children"][0].kwargs["command"]
    handle = reaper.track(spawn(command, LogSpec(workspace.logs, "demo-app-0")))
    journal.record_process("demo-app", "0", handle.pid, handle.create_time, version,
                           port=port, pgid=handle.pgid)
    wait_for(lambda: get(port) == 200, BOUND, "the left-over instance to serve")
    return handle


def test_a_journaled_live_instance_of_the_active_version_is_re_adopted_with_its_pid_and_port(
        sliver, package, workspace, journal, reaper):
    url, sha = package("1.0.0")
    port = free_port()
    survivor = left_running(workspace, journal, reaper, url, sha, "1.0.0", port)
    tree = sliver()
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    [row] = tree.wait_serving("demo-app", "1.0.0")
    assert (row["pid"], row["port"], row["adopted"]) == (survivor.pid, port, True)
    assert tree.services()["demo-app"]["adopted"] == [0]
    status = tree.events.latest(tree.channel("app.demo-app.0")).payload
    assert (status["state"], status["pid"], status["adopted"]) == ("running", survivor.pid, True)
    [entry] = journal.processes("demo-app")
    assert (entry.pid, entry.port, entry.version) == (survivor.pid, port, "1.0.0")

    os.kill(survivor.pid, signal.SIGKILL)  # the adopted process's exit is seen (pidfd)
    [after] = tree.wait_serving("demo-app", "1.0.0", exclude={survivor.pid})
    assert after["port"] == port and after["adopted"] is False
    wait_for(lambda: [e.pid for e in journal.processes("demo-app")] == [after["pid"]], BOUND,
             "the journal to name the new process")


def test_a_journaled_instance_whose_process_is_gone_is_forgotten_and_started_afresh(
        sliver, package, journal, reaper):
    gone = spawn(Command((sys.executable, "-c", "pass")))
    gone.exited.result(BOUND)
    journal.record_process("demo-app", "0", gone.pid, gone.create_time, "1.0.0", port=1,
                           pgid=gone.pgid)
    tree = sliver()
    url, sha = package("1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    [row] = tree.wait_serving("demo-app", "1.0.0")
    assert row["pid"] != gone.pid and row["port"] != 1 and row["adopted"] is False
    assert tree.services()["demo-app"]["adopted"] == []
    wait_for(lambda: [(e.pid, e.port) for e in journal.processes("demo-app")]
             == [(row["pid"], row["port"])], BOUND, "the journal to name the fresh process")


def test_a_journaled_pid_reused_by_another_process_is_neither_adopted_nor_signalled(
        sliver, package, journal, reaper):
    stranger = reaper.track(spawn(PAUSE))
    journal.record_process("demo-app", "0", stranger.pid, stranger.create_time - 3600.0, "1.0.0",
                           port=1, pgid=stranger.pgid)
    tree = sliver()
    url, sha = package("1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0"))
    [row] = tree.wait_serving("demo-app", "1.0.0")
    assert row["pid"] != stranger.pid and row["adopted"] is False
    assert stranger.alive and psutil.Process(stranger.pid).status() != psutil.STATUS_ZOMBIE
    os.kill(stranger.pid, signal.SIGKILL)
    stranger.exited.result(BOUND)


def test_a_journaled_process_of_an_older_version_is_stopped_and_the_active_one_takes_its_port(
        sliver, package, workspace, journal, reaper):
    url1, sha1 = package("1.0.0")
    port = free_port()
    old = left_running(workspace, journal, reaper, url1, sha1, "1.0.0", port)
    tree = sliver()
    url2, sha2 = package("2.0.0")
    tree.deploy(service("demo-app", url2, sha2, "2.0.0"))
    assert old.exited.result(BOUND).code == 0  # SIGTERM: the demo app stops cleanly
    [row] = tree.wait_serving("demo-app", "2.0.0", exclude={old.pid})
    assert row["port"] == port and row["adopted"] is False
    reasons = [e.payload["reason"] for e in tree.events.on(tree.channel("app.demo-app.0"))]
    assert "journaled version 1.0.0 is not the active 2.0.0" in reasons
    wait_for(lambda: [(e.pid, e.version) for e in journal.processes("demo-app")]
             == [(row["pid"], "2.0.0")], BOUND, "the journal to name the 2.0.0 process")


def test_a_journaled_instance_beyond_the_plans_replicas_is_stopped_and_forgotten(
        sliver, package, journal, reaper):
    extra = reaper.track(spawn(PAUSE))
    journal.record_process("demo-app", "1", extra.pid, extra.create_time, "1.0.0", port=1,
                           pgid=extra.pgid)
    tree = sliver()
    url, sha = package("1.0.0")
    tree.deploy(service("demo-app", url, sha, "1.0.0", replicas=1))
    assert extra.exited.result(BOUND).signal == signal.SIGTERM
    [row] = tree.wait_serving("demo-app", "1.0.0")
    wait_for(lambda: [(e.instance, e.pid) for e in journal.processes("demo-app")]
             == [("0", row["pid"])], BOUND, "instance 1 forgotten")


def test_a_journal_from_before_ports_were_recorded_gains_the_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE processes (service TEXT NOT NULL, instance TEXT NOT NULL,"
                   " pid INTEGER NOT NULL, started REAL NOT NULL, version TEXT NOT NULL,"
                   " recorded REAL NOT NULL, PRIMARY KEY (service, instance))")
        db.execute("INSERT INTO processes VALUES ('web', '0', 42, 1.5, '1.0', 2.0)")
    db.close()
    with Journal(path) as journal:
        [old] = journal.processes("web")
        assert (old.pid, old.port, old.pgid) == (42, None, None)
        journal.record_process("web", "1", 43, 2.5, "1.0", port=8081, pgid=43)
        assert [(p.instance, p.port) for p in journal.processes("web")] == [("0", None),
                                                                          ("1", 8081)]
        journal.forget_process("web", "1", pid=99)  # another process: left alone
        assert len(journal.processes("web")) == 2
