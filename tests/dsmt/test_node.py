"""The node: hub + registry + root supervisor, orderly shutdown, exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import zmq

from dsmt.bus import Bus
from dsmt.channels import Layout
from dsmt.childspec import ChildSpec
from dsmt.node import EXIT_GAVE_UP, EXIT_OK, Node
from dsmt.testing import wait_for

from tests.dsmt.conftest import Journal, Worker

ROOT = Path(__file__).resolve().parents[2]


class Service(Worker):
    """A worker that walks the component lifecycle up to running."""

    def on_start(self) -> None:
        super().on_start()
        for state in ("requested", "initiated", "instantiated", "running"):
            self.change_state(state)


@pytest.fixture
def run_dir(tmp_path):
    # ipc paths must stay short (sun_path is 108 bytes)
    path = Path("/tmp") / f"dsmt-node-{os.getpid()}-{tmp_path.name[-12:]}"
    yield path
    for sock in path.glob("*.sock"):
        sock.unlink()
    if path.exists():
        path.rmdir()


def test_a_node_starts_its_children_in_order_and_stops_them_in_reverse(run_dir):
    journal = Journal()
    specs = [ChildSpec(name, Worker, {"journal": journal}) for name in ("a", "b", "c")]
    node = Node("s1", Layout("test"), run_dir, specs).start()
    assert sorted(node.registry.list()) == ["/s1", "/s1/a", "/s1/b", "/s1/c"]
    assert node.stop() == EXIT_OK
    assert journal.paths("start") == ["/s1/a", "/s1/b", "/s1/c"]
    assert journal.paths("stop") == ["/s1/c", "/s1/b", "/s1/a"]
    assert len(node.registry) == 0
    assert node.wait(0) == EXIT_OK


def test_a_tool_in_another_thread_sees_the_tree_status_over_ipc(run_dir):
    layout = Layout("test")
    with Node("s1", layout, run_dir, [ChildSpec("a", Service)]) as node:
        context = zmq.Context()
        try:
            bus = Bus(context, node.hub.endpoints)
            with bus.subscriber(layout.base, snapshot=True) as sub:
                seen = {}

                def running() -> bool:
                    event = sub.recv(timeout=0.1)
                    if event is not None:
                        seen[event.payload["component"]] = event.payload["state"]
                    return seen.get("a") == "running" and seen.get("sliver") == "running"

                wait_for(running, timeout=10, message=lambda: f"running states, saw {seen}")
        finally:
            context.destroy(linger=0)
    assert os.stat(run_dir).st_mode & 0o777 == 0o700


def _node_process(run_dir: Path, *extra: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.dsmt.node_main", str(run_dir), "s1", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


def test_sigterm_stops_a_node_process_cleanly_with_exit_zero(run_dir):
    process = _node_process(run_dir)
    try:
        wait_for(lambda: (run_dir / "subscribe.sock").exists(), timeout=20, message="hub socket")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == EXIT_OK, process.stderr.read()
    finally:
        process.kill()
        process.wait()


def test_a_node_whose_root_supervisor_gives_up_exits_non_zero(run_dir):
    process = _node_process(run_dir, "crash")
    try:
        assert process.wait(timeout=30) == EXIT_GAVE_UP
        assert "root supervisor gave up" in process.stderr.read()
    finally:
        process.kill()
        process.wait()
