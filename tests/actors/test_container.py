"""The container manager: workspace, limits on real children, cgroups, resource reports,
deselect."""

from __future__ import annotations

import os
import resource
import select
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from actors.container import ContainerError, ContainerManager, Limits, probe
from actors.container.cgroup import own_cgroup
from actors.deploy.journal import Journal
from dsmt.actor import fail
from dsmt.childspec import ChildSpec
from dsmt.event import RESOURCES, STATUS
from tests.dsmt.conftest import BOUND, Worker, clock, ctx, events, registry, start_tree  # noqa: F401

MiB = 2**20
INTERVAL = 30.0


def start_container(start_tree, tmp_path: Path, *, siblings: tuple[ChildSpec, ...] = (),  # noqa: F811
                    **kwargs: Any):
    """A supervisor with ``siblings`` then the container manager; returns (tree, proxy)."""
    kwargs.setdefault("workspace", tmp_path / "ws")
    kwargs.setdefault("cgroups", False)
    kwargs.setdefault("report_interval", INTERVAL)
    tree = start_tree([*siblings, ChildSpec("container-mgr", ContainerManager, kwargs)])
    return tree, tree.ref_of("container-mgr").proxy()


def get(future: Any) -> Any:
    return future.get(timeout=BOUND)


def status_channel(ctx) -> str:  # noqa: F811
    return ctx.layout.status("container-mgr", "s1")


def reports(events, ctx) -> list[dict[str, Any]]:  # noqa: F811
    return [e.payload for e in events.on(ctx.layout.resources("s1"))]


@pytest.fixture
def spawn():
    """Start ``python -c code`` in its own session and wait for its 'ready' line.

    Killed at teardown.
    """
    started: list[subprocess.Popen] = []

    def start(code: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        started.append(proc)
        readable, _, _ = select.select([proc.stdout], [], [], BOUND)
        assert readable and proc.stdout.readline().strip() == "ready", "child did not get ready"
        return proc

    yield start
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=BOUND)
        proc.stdin.close()
        proc.stdout.close()


HUNGRY_GROUP = f"""
import subprocess, sys, threading
blob = b"x" * (32 * {MiB})
threading.Thread(target=threading.Event().wait, daemon=True).start()
child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                         stdin=subprocess.PIPE)
print("ready", flush=True)
sys.stdin.read()
"""


# --- workspace ------------------------------------------------------------------------

def test_the_workspace_is_created_with_a_private_run_dir_and_a_wal_state_database(
        start_tree, tmp_path, ctx, events):  # noqa: F811
    _, proxy = start_container(start_tree, tmp_path)
    root = tmp_path / "ws"
    for name in ("packages", "versions", "current", "previous", "logs", "run"):
        assert (root / name).is_dir()
    assert stat.S_IMODE((root / "run").stat().st_mode) == 0o700
    with sqlite3.connect(root / "state.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert events.states(status_channel(ctx)) == ["installing", "installed"]
    status = events.latest(status_channel(ctx))
    assert status.type == STATUS and status.retain
    assert status.payload["workspace"] == str(root)
    assert get(proxy.state) == "installed"


def test_an_existing_run_dir_with_loose_modes_is_tightened_to_0700(start_tree, tmp_path):  # noqa: F811
    (tmp_path / "ws" / "run").mkdir(parents=True)
    os.chmod(tmp_path / "ws" / "run", 0o777)
    start_container(start_tree, tmp_path)
    assert stat.S_IMODE((tmp_path / "ws" / "run").stat().st_mode) == 0o700


def test_an_unusable_workspace_leaves_the_container_failed_with_why_and_select_retries(
        start_tree, tmp_path, ctx, events):  # noqa: F811
    (tmp_path / "ws").write_text("a file, not a directory")
    _, proxy = start_container(start_tree, tmp_path)
    assert get(proxy.state) == "failed"
    assert events.latest(status_channel(ctx)).payload["reason"] == (
        f"workspace {tmp_path / 'ws'}: cannot create: File exists")
    (tmp_path / "ws").unlink()
    assert get(proxy.select()) == "installed"
    assert events.states(status_channel(ctx)) == ["installing", "failed", "installing", "installed"]


# --- limits -----------------------------------------------------------------------------

def run_child(limits, code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], preexec_fn=limits.preexec,
                          capture_output=True, text=True, timeout=BOUND, check=True)
    return done.stdout.strip()


def test_rlimits_from_limits_for_process_are_applied_in_a_real_child_before_exec(
        start_tree, tmp_path):  # noqa: F811
    _, proxy = start_container(start_tree, tmp_path,
                               limits=Limits(nofile=256, core=0, address_space=4096 * MiB))
    limits = get(proxy.limits_for_process("web", 0))
    out = run_child(limits, "import resource as r; print(r.getrlimit(r.RLIMIT_NOFILE),"
                            " r.getrlimit(r.RLIMIT_CORE), r.getrlimit(r.RLIMIT_AS))")
    assert out == f"(256, 256) (0, 0) ({4096 * MiB}, {4096 * MiB})"
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] != 256, "the node's own limit is untouched"


def test_a_limit_above_the_nodes_hard_limit_is_clamped_and_says_so(start_tree, tmp_path):  # noqa: F811
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("the node has no hard limit on open files")
    _, proxy = start_container(start_tree, tmp_path, limits=Limits(nofile=hard + 1000))
    limits = get(proxy.limits_for_process("web", 0))
    assert (resource.RLIMIT_NOFILE, hard, hard) in limits.rlimits
    assert any("RLIMIT_NOFILE clamped" in note for note in limits.notes)


def test_invalid_limits_are_refused_when_configured():
    with pytest.raises(ValueError, match="nofile"):
        Limits(nofile=-1)
    with pytest.raises(ValueError, match="cpu_max"):
        Limits(cpu_max=0)


# --- cgroups ----------------------------------------------------------------------------

def fake_cgroupfs(path: Path, controllers: str = "cpuset cpu io memory pids") -> Path:
    """A directory laid out like a delegated cgroup v2 directory."""
    path.mkdir()
    (path / "cgroup.controllers").write_text(controllers + "\n")
    (path / "cgroup.subtree_control").write_text("\n")
    return path


def test_cgroup_availability_on_this_machine_is_detected_and_reported_either_way(
        start_tree, tmp_path, ctx, events):  # noqa: F811
    _, proxy = start_container(start_tree, tmp_path, cgroups=True)
    reported = events.latest(status_channel(ctx)).payload["cgroup"]
    assert reported.startswith(("available: ", "unavailable: "))
    assert reported == probe().status
    if reported.startswith("unavailable: "):
        limits = get(proxy.limits_for_process("web", 0))
        assert limits.cgroup is None and limits.cgroup_status == reported
        assert limits.rlimits, "rlimits still apply without cgroups"
    assert get(proxy.report_now())["cgroup"] == reported


def test_a_delegated_cgroup_gets_a_sub_cgroup_per_instance_with_memory_and_cpu_max(
        start_tree, tmp_path):  # noqa: F811
    base = fake_cgroupfs(tmp_path / "cg")
    _, proxy = start_container(start_tree, tmp_path, cgroups=True, cgroup_base=base,
                               limits=Limits(memory_max=64 * MiB, cpu_max=0.5))
    assert get(proxy.cgroups).status == f"available: {base}"
    assert (base / "cgroup.subtree_control").read_text() == "+memory +cpu"
    instance = base / "dsmt.s1.web.0"
    instance.mkdir()
    (instance / "cgroup.procs").write_text("")  # the kernel makes it with the directory
    limits = get(proxy.limits_for_process("web", 0))
    assert limits.cgroup == instance and limits.cgroup_status == f"available: {instance}"
    assert (instance / "memory.max").read_text() == str(64 * MiB)
    assert (instance / "cpu.max").read_text() == "50000 100000"
    run_child(limits, "pass")
    assert (instance / "cgroup.procs").read_text() == "0", "the child joined its cgroup itself"


def test_controllers_not_offered_to_the_node_make_cgroups_unavailable_with_why(
        start_tree, tmp_path):  # noqa: F811
    base = fake_cgroupfs(tmp_path / "cg", controllers="hugetlb")
    _, proxy = start_container(start_tree, tmp_path, cgroups=True, cgroup_base=base)
    limits = get(proxy.limits_for_process("web", 0))
    assert limits.cgroup is None
    assert limits.cgroup_status == (f"unavailable: controller(s) memory, cpu not offered to {base}"
                                    " (it has: hugetlb)")


def test_a_cgroup_that_is_not_there_is_reported_unavailable_never_raised(tmp_path):
    nowhere = tmp_path / "nowhere"
    assert probe(nowhere).status == f"unavailable: {nowhere} is not a directory"
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text("22 1 0:21 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n")
    cgroup = tmp_path / "cgroup"
    cgroup.write_text("1:cpu:/\n")
    assert own_cgroup(mountinfo, cgroup) == (None, "no cgroup v2 hierarchy is mounted")
    mountinfo.write_text("30 1 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw\n")
    cgroup.write_text("0::/system.slice/dsmt.service\n")
    assert own_cgroup(mountinfo, cgroup) == (Path("/sys/fs/cgroup/system.slice/dsmt.service"), None)
    assert own_cgroup(tmp_path / "missing", cgroup)[1].startswith("cannot read")


# --- resource reports ---------------------------------------------------------------------

def journal_process(tmp_path: Path, proc: subprocess.Popen, service: str, instance: int) -> None:
    """Record ``proc`` in the workspace's process journal, as the application does."""
    with Journal(tmp_path / "ws" / "state.db") as journal:
        journal.record_process(service, str(instance), proc.pid,
                               psutil.Process(proc.pid).create_time(), "1.0", pgid=proc.pid)


def test_resource_reports_appear_at_each_clock_advance_with_real_figures_of_a_process_group(
        start_tree, tmp_path, ctx, events, clock, spawn):  # noqa: F811
    _, proxy = start_container(start_tree, tmp_path)
    proc = spawn(HUNGRY_GROUP)
    journal_process(tmp_path, proc, "web", 0)
    assert reports(events, ctx) == []
    clock.advance(INTERVAL - 1)
    get(proxy.inspect())  # a round trip: any tick told meanwhile has been handled
    assert reports(events, ctx) == []
    clock.advance(1)
    get(proxy.inspect())
    assert len(reports(events, ctx)) == 1
    event = events.latest(ctx.layout.resources("s1"))
    assert event.type == RESOURCES and event.retain
    report = event.payload
    assert report["state"] == "installed" and report["interval"] == INTERVAL
    [web] = report["processes"]
    assert web["service"] == "web" and web["instance"] == "0" and web["pid"] == proc.pid
    assert web["version"] == "1.0"
    assert web["alive"] and web["processes"] == 2, "the child and its grandchild"
    assert web["rss"] >= 32 * MiB
    assert web["threads"] >= 3 and web["fds"] >= 3 and web["cpu_seconds"] > 0
    node = report["node"]
    assert node["pid"] == os.getpid() and node["rss"] > 0 and node["threads"] >= 2
    assert node["fds"] > 0
    clock.advance(INTERVAL)
    get(proxy.inspect())
    clock.advance(INTERVAL)
    get(proxy.inspect())
    assert len(reports(events, ctx)) == 3


def test_a_journaled_process_that_is_gone_is_reported_as_not_alive_until_forgotten(
        start_tree, tmp_path, ctx, events, spawn):  # noqa: F811
    _, proxy = start_container(start_tree, tmp_path)
    proc = spawn("import sys; print('ready', flush=True); sys.stdin.read()")
    journal_process(tmp_path, proc, "web", 1)
    assert get(proxy.inspect())["processes"] == {"web/1": proc.pid}
    proc.kill()
    proc.wait(timeout=BOUND)
    [web] = get(proxy.report_now())["processes"]
    assert web == {"service": "web", "instance": "1", "pid": proc.pid, "version": "1.0",
                   "alive": False}
    with Journal(tmp_path / "ws" / "state.db") as journal:
        journal.forget_process("web", "1")
    assert get(proxy.report_now())["processes"] == []


def test_a_journaled_pid_now_used_by_another_process_is_not_measured(
        start_tree, tmp_path, ctx, events, spawn):  # noqa: F811
    _, proxy = start_container(start_tree, tmp_path)
    proc = spawn(HUNGRY_GROUP)
    with Journal(tmp_path / "ws" / "state.db") as journal:  # as if the pid had been reused
        journal.record_process("web", "0", proc.pid, psutil.Process(proc.pid).create_time() - 60,
                               "1.0", pgid=proc.pid)
    [web] = get(proxy.report_now())["processes"]
    assert web["pid"] == proc.pid and web["alive"] is False and "rss" not in web


def test_a_workspace_over_its_quota_is_reported_and_the_state_stays_installed(
        start_tree, tmp_path, ctx, events):  # noqa: F811
    _, proxy = start_container(start_tree, tmp_path, quota=MiB)
    assert get(proxy.report_now())["reason"] is None
    big = tmp_path / "ws" / "versions" / "app-1.0" / "blob"
    big.parent.mkdir()
    big.write_bytes(b"x" * 2 * MiB)
    report = get(proxy.report_now())
    assert report["disk"]["over_quota"] and report["disk"]["used"] >= 2 * MiB
    assert report["reason"].startswith("over quota: the workspace uses ")
    assert report["reason"].endswith(f"its quota is {MiB} bytes")
    status = events.latest(status_channel(ctx)).payload
    assert status["state"] == "installed" and status["reason"] == report["reason"]
    big.unlink()
    assert get(proxy.report_now())["reason"] is None
    status = events.latest(status_channel(ctx)).payload
    assert status["state"] == "installed" and status["reason"] is None
    assert events.states(status_channel(ctx)) == [
        "installing", "installed", "installed", "installed"]


# --- deselect / select ----------------------------------------------------------------------

def fill(root: Path) -> None:
    (root / "packages" / "app-1.0.tar.gz").write_bytes(b"archive")
    (root / "versions" / "app-1.0").mkdir()
    (root / "versions" / "app-1.0" / "main.py").write_text("print('hi')")
    (root / "current" / "app").symlink_to("../versions/app-1.0")
    (root / "logs" / "web.out.log").write_text("log line\n")


def test_deselect_stops_the_application_and_releases_the_workspace_but_keeps_logs(
        start_tree, tmp_path, ctx, events):  # noqa: F811
    tree, proxy = start_container(start_tree, tmp_path, siblings=(ChildSpec("app", Worker),),
                                  app="/s1/app")
    root = tmp_path / "ws"
    fill(root)
    assert tree.children()["app"].ref is not None
    assert get(proxy.deselect()) == "deselected"
    assert tree.children()["app"].ref is None, "the application was stopped"
    for name in ("packages", "versions", "current", "previous"):
        assert list((root / name).iterdir()) == []
    assert (root / "logs" / "web.out.log").read_text() == "log line\n"
    assert (root / "state.db").exists() and (root / "run").is_dir()
    status = events.latest(status_channel(ctx)).payload
    assert status["state"] == "deselected" and status["kept_logs"] is True
    assert sorted(status["released"]) == ["current/app", "packages/app-1.0.tar.gz",
                                          "versions/app-1.0"]
    with pytest.raises(ContainerError, match="deselected"):
        get(proxy.limits_for_process("web", 0))
    assert get(proxy.deselect()) == "deselected", "a second deselect changes nothing"
    assert get(proxy.select()) == "installed"
    assert tree.children()["app"].ref is not None, "the application was started again"
    assert events.states(status_channel(ctx))[-4:] == ["deselected", "selected", "installing",
                                                       "installed"]
    assert get(proxy.select()) == "installed", "a second select changes nothing"


def test_deselect_without_keep_logs_removes_the_logs_too(start_tree, tmp_path):  # noqa: F811
    _, proxy = start_container(start_tree, tmp_path)
    fill(tmp_path / "ws")
    assert get(proxy.deselect(keep_logs=False)) == "deselected"
    assert list((tmp_path / "ws" / "logs").iterdir()) == []


def test_a_deselect_whose_application_will_not_stop_leaves_the_workspace_and_fails(
        start_tree, tmp_path, ctx, events):  # noqa: F811
    _, proxy = start_container(start_tree, tmp_path, app="/s1/nowhere/app")
    fill(tmp_path / "ws")
    assert get(proxy.deselect()) == "failed"
    assert (tmp_path / "ws" / "versions" / "app-1.0" / "main.py").exists()
    assert events.latest(status_channel(ctx)).payload["reason"] == (
        "deselect: stopping the application failed: no supervisor at /s1/nowhere")


def test_a_select_that_cannot_start_the_application_again_stays_deselected_and_says_why(
        start_tree, tmp_path, ctx, events):  # noqa: F811
    tree, proxy = start_container(start_tree, tmp_path, siblings=(ChildSpec("app", Worker),),
                                  app="/s1/app")
    assert get(proxy.deselect()) == "deselected"
    tree.call("delete_child", "app")  # nothing left to restart
    with pytest.raises(ContainerError, match="select: restarting the application failed: "
                                             "not_found"):
        get(proxy.select())
    assert events.latest(status_channel(ctx)).payload["state"] == "deselected"


def test_a_deselect_outlives_a_restart_of_the_container_manager_until_select(
        start_tree, tmp_path, ctx, events):  # noqa: F811
    tree, proxy = start_container(start_tree, tmp_path, siblings=(ChildSpec("app", Worker),),
                                  app="/s1/app")
    assert get(proxy.deselect()) == "deselected"
    assert (tmp_path / "ws" / "deselected").read_text().startswith("deselected at ")
    old = tree.ref_of("container-mgr")
    fail(old, RuntimeError("a crash, as if the node had restarted"))
    fresh = tree.wait_restarted("container-mgr", old).proxy()
    assert get(fresh.inspect())["state"] == "deselected"
    assert events.latest(status_channel(ctx)).payload["reason"] == (
        "deselected before this container manager started")
    with pytest.raises(ContainerError, match="deselected"):
        get(fresh.limits_for_process("web", 0))
    assert get(fresh.select()) == "installed"
    assert not (tmp_path / "ws" / "deselected").exists()
