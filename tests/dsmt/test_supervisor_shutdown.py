"""Start order, reverse stop order, and the three per-child ``shutdown`` specs."""

from __future__ import annotations

import time

import pykka
import pytest

from dsmt.testing import wait_for
from tests.dsmt.conftest import BOUND, spec


def test_children_start_in_spec_order_and_stop_in_reverse(start_tree, journal):
    tree = start_tree([spec(c, journal) for c in "abcde"])
    assert journal.paths("start") == [f"/s1/{c}" for c in "abcde"]
    tree.ref.stop(block=True, timeout=BOUND)
    assert journal.paths("stop") == [f"/s1/{c}" for c in "edcba"]


def test_stopping_a_supervisor_waits_for_its_children_before_it_is_gone(start_tree, journal,
                                                                        registry):
    tree = start_tree([spec(c, journal) for c in "ab"])
    tree.ref.stop(block=True, timeout=BOUND)
    assert tree.wait_exit() == "shutdown"
    assert len(registry) == 0


def test_brutal_kill_returns_at_once_and_skips_on_stop(start_tree, journal, gates, registry):
    gate = gates()
    tree = start_tree([spec("a", journal, shutdown="brutal_kill", kwargs={"stop_gate": gate})])
    ref = tree.ref_of("a")
    tree.call("terminate_child", "a")  # would hang on the gate if on_stop ran
    wait_for(lambda: registry.get("/s1/a") is None and not ref.is_alive(), BOUND, "a killed")
    assert "stopping" not in [kind for kind, _ in journal.items]
    assert tree.children()["a"].state == "stopped"


def test_brutal_kill_of_a_busy_child_lets_the_handler_finish_but_nothing_after_it(
        start_tree, journal, gates, registry):
    release = gates()
    tree = start_tree([spec("a", journal, shutdown="brutal_kill")])
    ref = tree.ref_of("a")
    ref.tell(("block", release))
    ref.tell("after")  # queued behind the blocked handler
    wait_for(lambda: ("blocked", "/s1/a") in journal.items, BOUND, "a to block")
    tree.call("terminate_child", "a")  # returns although a is stuck in its handler
    assert registry.get("/s1/a") is None  # its path is free for a replacement
    assert tree.call("restart_child", "a").is_alive()
    release.set()
    wait_for(lambda: ("unblocked", "/s1/a") in journal.items, BOUND, "old a to finish its handler")
    wait_for(lambda: not ref.is_alive(), BOUND, "old a to end")
    assert ("got after", "/s1/a") not in journal.items
    assert journal.paths("stop") == []


def test_shutdown_timeout_kills_a_child_that_does_not_stop_in_time(start_tree, journal, gates):
    gate = gates()
    tree = start_tree([spec("a", journal, shutdown=0.2, kwargs={"stop_gate": gate})])
    began = time.monotonic()
    tree.call("terminate_child", "a")
    waited = time.monotonic() - began
    assert 0.2 <= waited < BOUND
    assert ("stopping", "/s1/a") in journal.items and ("stop", "/s1/a") not in journal.items
    assert tree.children()["a"].state == "stopped"


def test_shutdown_timeout_returns_as_soon_as_a_quick_child_has_stopped(start_tree, journal):
    tree = start_tree([spec("a", journal, shutdown=30.0)])
    began = time.monotonic()
    tree.call("terminate_child", "a")
    assert time.monotonic() - began < BOUND
    assert journal.paths("stop") == ["/s1/a"]


def test_shutdown_infinity_waits_for_on_stop_however_long_it_takes(start_tree, journal, gates):
    gate = gates()
    tree = start_tree([spec("a", journal, shutdown=None, kwargs={"stop_gate": gate})])
    pending = tree.proxy.terminate_child("a")
    wait_for(lambda: ("stopping", "/s1/a") in journal.items, BOUND, "a to begin stopping")
    with pytest.raises(pykka.Timeout):
        pending.get(timeout=0.2)  # still waiting: infinity means no kill
    gate.set()
    pending.get(timeout=BOUND)
    assert journal.paths("stop") == ["/s1/a"]


def test_a_child_supervisor_defaults_to_infinity_and_a_worker_to_five_seconds():
    from dsmt.childspec import ChildSpec
    from dsmt.supervisor import Supervisor
    from tests.dsmt.conftest import Worker

    assert ChildSpec("s", Supervisor).shutdown is None
    assert ChildSpec("s", Supervisor).type == "supervisor"
    assert ChildSpec("w", Worker).shutdown == 5.0
    assert ChildSpec("w", Worker).type == "worker"
