"""Fixtures for end-to-end tests: a real router and real `dsmt node` processes.

Every process is started by :class:`actors.localslice.LocalSlice` in its own
session and stopped by the fixture, which then checks the process table:
nothing started under the slice's folder may survive a test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import urllib.request
from pathlib import Path

import pytest

from actors.deploy.package import build_demo
from actors.localslice import SERVICE, LocalSlice
from dsmt.testing import wait_for
from gateways.psepr.client import Client



def write_plan(path: Path, archive: Path, sha256: str, *, version: str = "1.0.0",
               replicas: int | str = 1, plan_version: int = 1, extra: str = "") -> Path:
    path.write_text(
        f"version = {plan_version}\n\n[services.demo-app]\n"
        f'package = "file://{archive}"\nsha256 = "{sha256}"\nversion = "{version}"\n'
        f"replicas = {replicas}\n{extra}")
    return path


@pytest.fixture
def demo_plan(tmp_path) -> Path:
    archive, sha256 = build_demo(tmp_path / "packages")
    # one instance on every sliver: the tests that use it expect each sliver to serve
    return write_plan(tmp_path / "plan.toml", archive, sha256, replicas='"all"')


@pytest.fixture
def local_slice():
    made: list[LocalSlice] = []

    def make(**kwargs) -> LocalSlice:
        # ipc socket paths must stay short: a fresh folder right under /tmp
        s = LocalSlice(Path(tempfile.mkdtemp(prefix="dsmt-e2e-", dir="/tmp")), **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()
        assert s.processes() == [], "processes left behind"
        if not os.environ.get("DSMT_E2E_KEEP"):  # keep the logs to debug a failure
            shutil.rmtree(s.root, ignore_errors=True)


class Watcher:
    """A PsEPR client on the slice's router that records every event under a prefix."""

    def __init__(self, slice_: LocalSlice, prefix: str) -> None:
        self.events = []
        self._lock = threading.Lock()
        self.client = Client([slice_.address], SERVICE, slice_.password, instance="watcher",
                             reconnect_pause=0.1).start()
        self.subscription = self.client.lease(prefix, self._record)
        wait_for(lambda: self.subscription.state == "granted", timeout=20,
                 message=lambda: f"lease on {prefix}, state {self.subscription.state}")

    def _record(self, event) -> None:
        with self._lock:
            self.events.append(event)

    def on(self, channel: str) -> list:
        with self._lock:
            return [e for e in self.events if e.channel == channel]

    def close(self) -> None:
        self.client.close()


def http_get(port: int, path: str) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
            return reply.read()
    except OSError:
        return None
