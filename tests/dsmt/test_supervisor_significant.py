"""Significant children and auto_shutdown (OTP 24 semantics)."""

from __future__ import annotations

import pytest

from dsmt.actor import Origin
from dsmt.errors import SupervisorError
from dsmt.supervisor import Supervisor
from tests.dsmt.conftest import spec


def test_any_significant_shuts_down_when_one_significant_child_exits_normally(start_tree, journal):
    tree = start_tree([spec("a", journal, restart="transient", significant=True),
                       spec("b", journal)],
                      auto_shutdown="any_significant")
    journal.clear()
    tree.ref_of("a").tell("exit_normal")
    assert tree.wait_exit() == "shutdown"
    assert journal.paths("stop") == ["/s1/a", "/s1/b"]  # a by itself, then b by the supervisor


def test_any_significant_shuts_down_when_a_temporary_significant_child_crashes(start_tree, journal):
    tree = start_tree([spec("a", journal, restart="temporary", significant=True),
                       spec("b", journal)],
                      auto_shutdown="any_significant")
    tree.ref_of("a").tell("crash")
    assert tree.wait_exit() == "shutdown"


def test_a_transient_significant_child_that_crashes_is_restarted_not_a_shutdown(start_tree,
                                                                                journal):
    tree = start_tree([spec("a", journal, restart="transient", significant=True)],
                      auto_shutdown="any_significant", intensity=3)
    a = tree.ref_of("a")
    a.tell("crash")
    tree.wait_restarted("a", a)
    assert tree.ref.is_alive()


def test_all_significant_shuts_down_only_when_the_last_significant_child_exits(start_tree, journal):
    tree = start_tree([spec("a", journal, restart="transient", significant=True),
                       spec("b", journal, restart="transient", significant=True),
                       spec("c", journal)], auto_shutdown="all_significant")
    tree.ref_of("a").tell("exit_normal")
    tree.wait_state("a", "exited")
    assert tree.ref.is_alive()
    tree.ref_of("b").tell("exit_shutdown")
    assert tree.wait_exit() == "shutdown"


def test_terminating_a_significant_child_through_the_api_does_not_shut_down(start_tree, journal):
    tree = start_tree([spec("a", journal, restart="transient", significant=True),
                       spec("b", journal)],
                      auto_shutdown="any_significant")
    tree.call("terminate_child", "a")
    assert tree.children()["a"].state == "stopped"
    assert tree.call("count_children").active == 1


def test_a_non_significant_child_exit_never_shuts_down(start_tree, journal):
    tree = start_tree([spec("a", journal, restart="transient", significant=True),
                       spec("b", journal, restart="transient")], auto_shutdown="any_significant")
    tree.ref_of("b").tell("exit_normal")
    tree.wait_state("b", "exited")
    assert tree.ref.is_alive()


def test_the_auto_shutdown_is_published_with_its_reason(start_tree, journal, events, ctx):
    tree = start_tree([spec("a", journal, restart="transient", significant=True)],
                      auto_shutdown="any_significant")
    tree.ref_of("a").tell("exit_normal")
    tree.wait_exit()
    last = events.latest(ctx.layout.status("sliver", "s1")).payload
    assert last["state"] == "terminated" and "significant child 'a'" in last["reason"]


def test_a_significant_permanent_child_is_refused(journal):
    with pytest.raises(SupervisorError, match="permanent"):
        spec("a", journal, significant=True)


def test_a_significant_child_is_refused_when_auto_shutdown_is_never(ctx, journal):
    with pytest.raises(SupervisorError, match="auto_shutdown"):
        Supervisor.start(Origin.root(ctx),
                         [spec("a", journal, restart="transient", significant=True)])


def test_a_significant_child_added_later_is_refused_when_auto_shutdown_is_never(start_tree,
                                                                                journal):
    tree = start_tree([])
    with pytest.raises(SupervisorError) as refused:
        tree.call("start_child", spec("a", journal, restart="transient", significant=True))
    assert refused.value.reason == "bad_spec"


def test_simple_one_for_one_refuses_auto_shutdown(ctx, journal):
    with pytest.raises(SupervisorError):
        Supervisor.start(Origin.root(ctx), [spec("w", journal, restart="transient")],
                         strategy="simple_one_for_one", auto_shutdown="any_significant")
