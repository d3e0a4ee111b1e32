"""`dsmt up`: a router and slivers as processes, the demo plan running, nothing left after
Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import psutil
import pytest

from dsmt.testing import wait_for


@pytest.fixture
def folder():
    path = Path(tempfile.mkdtemp(prefix="dsmt-up-test-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _under(folder: Path) -> list[psutil.Process]:
    root = str(folder.resolve())
    return [p for p in psutil.process_iter(["cwd", "cmdline"])
            if (p.info.get("cwd") or "").startswith(root)
            or any(root in part for part in p.info.get("cmdline") or ())]


def test_dsmt_up_reaches_all_running_and_ctrl_c_leaves_no_process_behind(folder):
    env = {**os.environ, "DSMT_HOME": str(folder / "home")}
    up = subprocess.Popen([sys.executable, "-m", "dsmt.cli", "up", "--slivers", "2",
                           "--dir", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=env)
    lines = []
    try:
        for line in up.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        else:
            pytest.fail("dsmt up ended before everything ran:\n" + "".join(lines))
        urls = [part for line in lines for part in line.split() if part.startswith("http://")]
        assert len(urls) == 2, lines
        for url in urls:
            with urllib.request.urlopen(url, timeout=5) as reply:
                assert json.loads(reply.read())["status"] == "ok"
        info = json.loads((folder / "up.json").read_text())
        assert info["slivers"] == ["s1", "s2"]

        status = subprocess.run([sys.executable, "-m", "dsmt.cli", "status", "--json"],
                                capture_output=True, text=True, env=env, timeout=60)
        assert status.returncode == 0, status.stderr
        rows = json.loads(status.stdout)
        assert {tuple(sorted(row)) for row in rows} == {
            ("component", "ready", "reason", "since", "sliver", "state")}
        instances = {(r["sliver"], r["state"], r["ready"]) for r in rows
                     if r["component"] == "app.demo-app.0"}
        assert instances == {("s1", "running", True), ("s2", "running", True)}, rows

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
        assert not (folder / "home" / "up.json").exists()
        wait_for(lambda: not _under(folder), timeout=10,
                 message=lambda: f"no process under {folder}, still {_under(folder)}")
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        for process in _under(folder):
            process.kill()
