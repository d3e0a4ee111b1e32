"""`dsmt up`: a router and slivers as processes, the demo plan running, nothing left after Ctrl-C."""

from __future__ import annotations

import json
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
    up = subprocess.Popen([sys.executable, "-m", "dsmt.cli", "up", "--slivers", "2",
                           "--dir", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
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
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
        wait_for(lambda: not _under(folder), timeout=10,
                 message=lambda: f"no process under {folder}, still {_under(folder)}")
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        for process in _under(folder):
            process.kill()
