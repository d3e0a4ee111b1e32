"""The operator commands against a real `dsmt up`: read commands as JSON, signed commands, down.

One `dsmt up --dir X` subprocess (DSMT_HOME in a temporary folder, so every
command finds it without options) runs the demo plan on two slivers; every
command runs as `python -m dsmt.cli ...` and is bounded by a timeout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from actors.deploy.package import build_demo
from dsmt.testing import wait_for

BOUND = 30.0  # seconds, for every command and wait


@pytest.fixture
def up():
    folder = Path(tempfile.mkdtemp(prefix="dsmt-cli-test-", dir="/tmp"))
    env = {**os.environ, "DSMT_HOME": str(folder / "home")}
    process = subprocess.Popen([sys.executable, "-m", "dsmt.cli", "up", "--slivers", "2",
                                "--dir", str(folder / "slice")], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        else:
            pytest.fail("dsmt up ended before everything ran:\n" + "".join(lines))
        # keep reading, so dsmt up never blocks on a full pipe
        drain = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
        drain.start()
        yield folder, env, process
    finally:
        print("".join(lines))  # shown when the test fails
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for left in _under(folder):
            left.kill()
        shutil.rmtree(folder, ignore_errors=True)


def _under(folder: Path) -> list[psutil.Process]:
    root = str(folder.resolve())
    return [p for p in psutil.process_iter(["cwd", "cmdline"])
            if (p.info.get("cwd") or "").startswith(root)
            or any(root in part for part in p.info.get("cmdline") or ())]


def dsmt(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dsmt.cli", *args], capture_output=True,
                          text=True, env=env, timeout=BOUND)


def ok(env, *args: str) -> str:
    done = dsmt(env, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def refused(env, *args: str) -> str:
    done = dsmt(env, *args)
    assert done.returncode == 2, (args, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dsmt: error:"), done.stderr
    return lines[0]


def _follow_shows_new_lines(env, target: str, host: str, port: int) -> None:
    """`dsmt logs -f --err` prints a request's log line once the instance writes it; Ctrl-C
    ends it with 0."""
    follow = subprocess.Popen([sys.executable, "-m", "dsmt.cli", "logs", target, "--err",
                               "-f", "-n", "1", "--interval", "0.2"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    shown: list[str] = []
    reader = threading.Thread(target=lambda: shown.extend(follow.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: shown, timeout=BOUND, message="the follow's first line")
        marker = f"/follow-{os.getpid()}"
        with pytest.raises(urllib.error.HTTPError):  # a 404, logged by the demo app
            urllib.request.urlopen(f"http://{host}:{port}{marker}", timeout=BOUND)
        wait_for(lambda: any(marker in line for line in shown), timeout=BOUND,
                 message=lambda: f"the request's log line, followed: {shown}")
        follow.send_signal(signal.SIGINT)
        assert follow.wait(BOUND) == 0, follow.stderr.read()
        reader.join(BOUND)
        assert sum(marker in line for line in shown) == 1, shown
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()


def _nodes(tree: list[dict]):
    for node in tree:
        yield node
        yield from _nodes(node["children"])


def _crash_looping(env) -> dict | None:
    tree = json.loads(ok(env, "tree", "--json", "--wait", "0.5"))
    for node in _nodes(tree):
        if (node["component"].startswith("app.demo-app.") and (node["restarts"] or 0) >= 1
                and node["restarts_left"] is not None and node["next_backoff"] is not None):
            return node
    return None


def test_operator_commands_read_control_and_stop_the_slice_dsmt_up_runs(up):
    folder, env, process = up
    plan = folder / "slice" / "plan.toml"

    snapshot = json.loads(ok(env, "inspect", "s1:app/demo-app", "--json"))
    assert (snapshot["path"], snapshot["class"]) == ("/s1/app/demo-app", "ServiceSupervisor")
    assert snapshot["children"][0]["path"] == "/s1/app/demo-app/0"

    assert ok(env, "restart", "s1:app-monitor").strip() == "restart /s1/app-monitor on s1: done"
    assert "no actor at /s2/nope" in refused(env, "stop", "s2:nope")
    assert "commander itself" in refused(env, "restart", "s1:/s1/commander")

    rows = json.loads(ok(env, "top", "--once", "--json", "--wait", "0.5"))
    assert {(r["sliver"], r["service"], r["state"]) for r in rows} == {
        ("s1", "demo-app", "running"), ("s2", "demo-app", "running")}, rows
    assert all(isinstance(r["pid"], int) and r["restarts"] == 0 for r in rows), rows

    def measured():  # each sliver's container manager reports every 10 s
        rows = json.loads(ok(env, "top", "--once", "--json", "--wait", "0.5"))
        return rows if rows and all(r["rss"] and r["cpu_percent"] is not None
                                    for r in rows) else None
    rows = wait_for(measured, timeout=BOUND, message="dsmt top with every instance's cpu, rss")
    assert all(r["rss"] > 2**20 for r in rows), rows

    out = ok(env, "logs", "s2:app.demo-app.0", "-n", "5").splitlines()
    assert 1 <= len(out) <= 5 and any("listening on" in line for line in out), out
    assert "is not a process actor" in refused(env, "logs", "s1:app-monitor")
    address = re.search(r"listening on (\S+):(\d+)", "\n".join(out))
    assert address, out
    _follow_shows_new_lines(env, "s2:app.demo-app.0", address.group(1), int(address.group(2)))

    events = [json.loads(line) for line in ok(env, "events", "--json").splitlines()]
    assert any(e["channel"].endswith("/status/s1/") and e["payload"].get("path") == "/s1/app"
               for e in events), events

    plan2 = folder / "plan2.toml"
    plan2.write_text(plan.read_text().replace("version = 1\n", "version = 2\n", 1))
    assert ok(env, "deploy", str(plan2)).startswith("deployed plan version 2")
    assert "not newer" in refused(env, "deploy", str(plan2))
    assert "plan version 3" in ok(env, "undeploy", "demo-app")

    # The crash variant in place of the demo app: it exits at start, again and again.
    archive, sha256 = build_demo(folder / "crash", version="1.0.1", variant="crash")
    crash = folder / "crash.toml"
    crash.write_text(f'version = 4\n\n[services.demo-app]\npackage = "file://{archive}"\n'
                     f'sha256 = "{sha256}"\nversion = "1.0.1"\nreplicas = 1\n'
                     "intensity = 100\nperiod = 10\n\n[services.demo-app.backoff]\n"
                     "min = 1.0\nmax = 2.0\n")
    assert ok(env, "deploy", str(crash)).startswith("deployed plan version 4")
    looping = wait_for(lambda: _crash_looping(env), timeout=BOUND,
                       message="dsmt tree --json showing the crash loop's counters")
    # max 2.0 s, then the default jitter of ±10 % (dsmt.childspec.Backoff): at most 2.2 s
    # (it failed once at <= 2.0: 2.095)
    assert looping["record"] == "backoff" and 0 <= looping["next_backoff_in"] <= 2.2, looping
    assert looping["restarts_in_window"] >= 1 and looping["restarts_left"] < 100, looping

    assert "plan version 5" in ok(env, "scale", "demo-app", "2")
    assert "no service 'nope'" in refused(env, "scale", "nope", "2")

    assert ok(env, "down", "--timeout", "25").startswith("stopped the slice in")
    assert process.wait(BOUND) == 0
    assert not (folder / "home" / "up.json").exists()
    wait_for(lambda: not _under(folder), timeout=10,
             message=lambda: f"no process under {folder}, still {_under(folder)}")
    assert "no slice started by `dsmt up`" in refused(env, "down")
