"""The commander on a real node: signed commands run, bad ones are rejected in public.

A real :class:`dsmt.node.Node` (hub, bus, registry, root supervisor) runs a
test worker and the commander; the test thread plays the operator's tool on
the same hub: it publishes COMMAND events and reads the reply channels.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from actors.commander import Commander
from actors.process import Command, LogSpec
from actors.process.actor import process_spec
from dsmt import commands
from dsmt.channels import Layout
from dsmt.childspec import ChildSpec
from dsmt.commands import ReplayCache
from dsmt.event import COMMAND, Address
from dsmt.node import Node
from dsmt.testing import wait_for

from tests.dsmt.conftest import Worker

LAYOUT = Layout("test")
BOUND = 10.0


@pytest.fixture
def run_dir(tmp_path):
    # ipc paths must stay short (sun_path is 108 bytes)
    path = Path("/tmp") / f"dsmt-cmd-{os.getpid()}-{tmp_path.name[-12:]}"
    yield path
    for sock in path.glob("*.sock"):
        sock.unlink()
    if path.exists():
        path.rmdir()


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "slice.key"
    commands.write_key(path)
    return path


class Operator:
    """The test thread's publisher and reply subscriptions on the node's hub."""

    def __init__(self, node: Node, key: bytes | None) -> None:
        self.node = node
        self.key = key
        self.publisher = node.bus.publisher(Address("operator"))
        self.subs = []

    def send(self, command: str, args=None, *, target: str = "s1", channel_sliver="s1",
             key: bytes | None = None, ts: float | None = None, payload=None, body=None):
        """Publish a command; returns (body, reply subscriber); the reply is leased first."""
        body = body or commands.new_body("test", target, command, args,
                                         now=self.node.context.clock.wall() if ts is None else ts)
        sub = self.node.bus.subscriber(LAYOUT.reply(body.request))
        self.subs.append(sub)
        if payload is None:
            payload = commands.seal(key or self.key, body)
        self.publisher.publish(LAYOUT.command("sliver", channel_sliver), COMMAND, payload)
        return body, sub

    def reply(self, sub) -> dict:
        event = sub.recv(timeout=BOUND)
        assert event is not None, "no reply within the bound"
        return event.payload

    def close(self) -> None:
        for sub in self.subs:
            sub.close()
        self.publisher.close()


@pytest.fixture
def sliver(run_dir, key_file):
    made = []

    def start(key_file=key_file, children=()):
        specs = [ChildSpec("worker", Worker), *children,
                 ChildSpec("commander", Commander, {"key_file": key_file,
                                                    "replay": ReplayCache(), "wait": 5.0})]
        node = Node("s1", LAYOUT, run_dir, specs).start()
        key = commands.load_key(key_file) if key_file else None
        operator = Operator(node, key)
        made.append((node, operator))
        return node, operator

    yield start
    for node, operator in made:
        operator.close()
        node.stop()


def commander_counters(node: Node) -> dict:
    return node.registry.get("/s1/commander").proxy().inspect().get(timeout=BOUND)["counters"]


def test_a_signed_inspect_gets_the_actors_snapshot_on_its_reply_channel(sliver):
    node, op = sliver()
    body, sub = op.send("inspect", {"path": "/s1/worker"})
    reply = op.reply(sub)
    assert reply["outcome"] == "done" and reply["request"] == body.request
    assert reply["sliver"] == "s1" and reply["result"]["path"] == "/s1/worker"
    assert reply["result"]["class"] == "Worker"


def test_a_command_for_every_sliver_is_run_too(sliver):
    node, op = sliver()
    _, sub = op.send("inspect", {"path": "/s1/commander"}, target="*", channel_sliver=None)
    reply = op.reply(sub)
    assert reply["outcome"] == "done" and reply["result"]["key"]["loaded"] is True


def test_a_command_signed_with_another_key_is_rejected_as_forged_and_counted(sliver):
    node, op = sliver()
    _, sub = op.send("inspect", {"path": "/s1/worker"}, key=b"x" * 32)
    reply = op.reply(sub)
    assert (reply["outcome"], reply["reason"]) == ("rejected", "forged")
    assert reply["result"]["from"] == "operator"
    counters = commander_counters(node)
    assert counters["rejected"] == 1 and counters["rejected.forged"] == 1


def test_a_replayed_command_is_rejected_and_the_first_one_ran_once(sliver):
    node, op = sliver()
    body, sub = op.send("inspect", {"path": "/s1/worker"})
    assert op.reply(sub)["outcome"] == "done"
    payload = commands.seal(op.key, body)
    op.publisher.publish(LAYOUT.command("sliver", "s1"), COMMAND, payload)
    reply = op.reply(sub)
    assert (reply["outcome"], reply["reason"]) == ("rejected", "replayed")


def test_a_stale_command_is_rejected(sliver):
    node, op = sliver()
    _, sub = op.send("inspect", {"path": "/s1/worker"}, ts=node.context.clock.wall() - 120)
    reply = op.reply(sub)
    assert (reply["outcome"], reply["reason"]) == ("rejected", "stale")


def test_an_unsigned_command_is_rejected(sliver):
    node, op = sliver()
    body = commands.new_body("test", "s1", "restart", {"path": "/s1/worker"},
                             now=node.context.clock.wall())
    _, sub = op.send("restart", body=body, payload={"body": commands.canonical(body).decode()})
    reply = op.reply(sub)
    assert (reply["outcome"], reply["reason"]) == ("rejected", "unsigned")
    assert node.registry.get("/s1/worker") is not None


def test_a_sliver_without_a_key_rejects_every_command(sliver):
    node, op = sliver(key_file=None)
    op.key = b"k" * 32
    _, sub = op.send("inspect", {"path": "/s1/worker"})
    reply = op.reply(sub)
    assert (reply["outcome"], reply["reason"]) == ("rejected", "no-key")


def test_restart_makes_the_supervisor_start_a_new_actor_at_the_path(sliver):
    node, op = sliver()
    old = node.registry.get("/s1/worker")
    _, sub = op.send("restart", {"path": "/s1/worker"})
    assert op.reply(sub)["outcome"] == "done"
    wait_for(lambda: node.registry.get("/s1/worker") not in (None, old), timeout=BOUND,
             message="a new worker at /s1/worker")


def test_stop_terminates_the_child_through_its_supervisor(sliver):
    node, op = sliver()
    _, sub = op.send("stop", {"path": "/s1/worker"})
    assert op.reply(sub)["outcome"] == "done"
    assert node.registry.get("/s1/worker") is None
    children = {c["id"]: c for c in node.root.proxy().inspect_children().get(timeout=BOUND)}
    assert children["worker"]["state"] != "running"


def test_a_command_on_a_path_outside_the_sliver_or_missing_fails_with_a_reason(sliver):
    node, op = sliver()
    _, sub = op.send("restart", {"path": "/s2/worker"})
    reply = op.reply(sub)
    assert reply["outcome"] == "failed" and "under /s1/" in reply["reason"]
    _, sub = op.send("inspect", {"path": "/s1/nobody"})
    reply = op.reply(sub)
    assert reply["outcome"] == "failed" and "no actor at /s1/nobody" in reply["reason"]
    _, sub = op.send("stop", {"path": "/s1/commander"})
    assert "commander itself" in op.reply(sub)["reason"]
    _, sub = op.send("dance")
    assert "unknown command" in op.reply(sub)["reason"]


def test_the_status_keeps_the_last_command_that_acted_not_the_reads_after_it(sliver):
    node, op = sliver()

    def last() -> dict:
        return node.registry.get("/s1/commander").proxy().inspect().get(
            timeout=BOUND)["detail"].get("last") or {}

    body, sub = op.send("stop", {"path": "/s1/worker"})
    assert op.reply(sub)["outcome"] == "done"
    assert last()["request"] == body.request
    _, sub = op.send("inspect", {"path": "/s1/commander"})
    assert op.reply(sub)["outcome"] == "done"
    assert last()["request"] == body.request and commander_counters(node)["done"] == 2
    failed, sub = op.send("inspect", {"path": "/s1/nobody"})  # a failure is recorded
    assert op.reply(sub)["outcome"] == "failed"
    assert (last()["request"], last()["outcome"]) == (failed.request, "failed")


def test_logs_gives_the_end_of_a_process_log_then_what_was_written_after_its_cursor(
        sliver, tmp_path):
    logs = LogSpec(tmp_path / "logs", "proc")
    program = "import signal; print('ready', flush=True); signal.pause()"
    node, op = sliver(children=[process_spec("proc", Command([sys.executable, "-c", program]),
                                             logs=logs)])
    wait_for(lambda: logs.path("out").exists() and logs.path("out").read_text() == "ready\n",
             timeout=BOUND, message="the process's first line")
    _, sub = op.send("logs", {"path": "/s1/proc", "follow": True})
    first = op.reply(sub)["result"]
    assert first["lines"] == ["ready"] and first["file"] == str(logs.path("out"))
    with open(logs.path("out"), "ab") as f:
        f.write(b"next\nhalf")
    _, sub = op.send("logs", {"path": "/s1/proc", "cursor": first["cursor"]})
    reply = op.reply(sub)
    assert reply["outcome"] == "done", reply
    assert (reply["result"]["lines"], reply["result"]["more"]) == (["next"], False)
    for args, reason in (({"cursor": {"offset": -1, "rotation": None}}, "cursor offset"),
                         ({"cursor": "here"}, "cursor must be"),
                         ({"follow": "yes"}, "follow must be")):
        _, sub = op.send("logs", {"path": "/s1/proc", **args})
        reply = op.reply(sub)
        assert reply["outcome"] == "failed" and reason in reply["reason"], reply


def test_the_commander_keeps_serving_after_bad_input(sliver):
    node, op = sliver()
    for payload in ("garbage", {"body": 3, "sig": 4}, {"body": "{", "sig": "zz"}, None):
        op.publisher.publish(LAYOUT.command("sliver", "s1"), COMMAND, payload)
    wait_for(lambda: commander_counters(node).get("rejected") == 4, timeout=BOUND,
             message=lambda: f"4 rejections, counters {commander_counters(node)}")
    _, sub = op.send("inspect", {"path": "/s1/worker"})
    assert op.reply(sub)["outcome"] == "done"


def test_plan_commands_are_forwarded_to_the_coordinator_as_plan_command_messages(
        run_dir, key_file):
    from tests.dsmt.conftest import Journal

    journal = Journal()
    specs = [ChildSpec("coordinator", Worker, {"journal": journal}),
             ChildSpec("commander", Commander, {"key_file": key_file, "replay": ReplayCache()})]
    node = Node("s1", LAYOUT, run_dir, specs).start()
    op = Operator(node, commands.load_key(key_file))
    try:
        body, sub = op.send("scale", {"service": "web", "replicas": 3})
        reply = op.reply(sub)
        assert reply["outcome"] == "forwarded" and reply["result"] == {"to": "/s1/coordinator"}
        wait_for(lambda: [w for w, _ in journal.items if w.startswith("got PlanCommand")],
                 timeout=BOUND, message=lambda: f"a PlanCommand, journal {journal.items}")
        got = next(w for w, _ in journal.items if w.startswith("got PlanCommand"))
        assert "kind='scale'" in got and f"request='{body.request}'" in got
    finally:
        op.close()
        node.stop()
