"""The supervisor API: start_child, terminate_child, restart_child, delete_child,
which_children, count_children, inspect — with OTP's answers as Python values."""

from __future__ import annotations

import pytest

from dsmt.childspec import ChildInfo, ChildSpec, Counts
from dsmt.errors import SupervisorError
from dsmt.supervisor import Supervisor
from tests.dsmt.conftest import spec


def _refused(tree, reason, name, *args):
    with pytest.raises(SupervisorError) as refused:
        tree.call(name, *args)
    assert refused.value.reason == reason
    return refused.value


def test_start_child_appends_a_running_child_and_returns_its_ref(start_tree, journal, registry):
    tree = start_tree([spec("a", journal)])
    ref = tree.call("start_child", spec("b", journal))
    assert ref.is_alive() and registry.get("/s1/b") is ref
    assert list(tree.children()) == ["a", "b"]


def test_start_child_refuses_an_id_already_running(start_tree, journal):
    tree = start_tree([spec("a", journal)])
    refused = _refused(tree, "already_started", "start_child", spec("a", journal))
    assert refused.detail is tree.ref_of("a")


def test_start_child_refuses_an_id_already_present_but_stopped(start_tree, journal):
    tree = start_tree([spec("a", journal)])
    tree.call("terminate_child", "a")
    _refused(tree, "already_present", "start_child", spec("a", journal))


def test_start_child_that_fails_reports_why_and_keeps_no_spec(start_tree, journal):
    tree = start_tree([])
    refused = _refused(tree, "start_failed", "start_child",
                       spec("x", journal, kwargs={"fail_start": True}))
    assert "cannot start" in str(refused.detail)
    assert tree.children() == {}


def test_start_child_accepts_a_callable_that_starts_the_actor(start_tree, journal):
    from tests.dsmt.conftest import Worker

    def start(origin, **kwargs):
        return Worker.start(origin, journal=journal, **kwargs)

    tree = start_tree([])
    tree.call("start_child", ChildSpec("f", start, {"colour": "blue"}))
    assert journal.paths("start") == ["/s1/f"]


def test_start_child_reports_a_factory_that_raises(start_tree):
    def broken(origin):
        raise ValueError("no such program")

    tree = start_tree([])
    refused = _refused(tree, "start_failed", "start_child", ChildSpec("f", broken))
    assert "no such program" in str(refused.detail)


def test_terminate_child_stops_it_and_keeps_its_spec(start_tree, journal):
    tree = start_tree([spec("a", journal), spec("b", journal)])
    assert tree.call("terminate_child", "a") is None
    info = tree.children()["a"]
    assert info.ref is None and info.state == "stopped" and not info.restarting
    assert journal.paths("stop") == ["/s1/a"]


def test_terminate_child_forgets_a_temporary_child(start_tree, journal):
    tree = start_tree([spec("t", journal, restart="temporary")])
    tree.call("terminate_child", "t")
    assert tree.children() == {}


def test_terminate_child_of_an_unknown_id_is_not_found(start_tree):
    _refused(start_tree([]), "not_found", "terminate_child", "nope")


def test_restart_child_starts_a_stopped_child_again(start_tree, journal):
    tree = start_tree([spec("a", journal)])
    old = tree.ref_of("a")
    tree.call("terminate_child", "a")
    new = tree.call("restart_child", "a")
    assert new is not old and new.is_alive() and tree.ref_of("a") is new


def test_restart_child_refuses_a_running_child(start_tree, journal):
    _refused(start_tree([spec("a", journal)]), "running", "restart_child", "a")


def test_restart_child_of_an_unknown_id_is_not_found(start_tree):
    _refused(start_tree([]), "not_found", "restart_child", "x")


def test_children_can_be_added_and_removed_one_by_one(start_tree, journal):
    tree = start_tree([spec("a", journal)])
    tree.call("terminate_child", "a")
    tree.call("delete_child", "a")
    tree.call("start_child", spec("b", journal))
    tree.call("terminate_child", "b")
    tree.call("delete_child", "b")
    assert tree.children() == {}


def test_delete_child_forgets_a_stopped_child(start_tree, journal):
    tree = start_tree([spec("a", journal), spec("b", journal)])
    tree.call("terminate_child", "a")
    assert tree.call("delete_child", "a") is None
    assert list(tree.children()) == ["b"]


def test_delete_child_refuses_a_running_child(start_tree, journal):
    _refused(start_tree([spec("a", journal)]), "running", "delete_child", "a")


def test_delete_child_of_an_unknown_id_is_not_found(start_tree):
    _refused(start_tree([]), "not_found", "delete_child", "x")


def test_which_children_lists_id_ref_type_and_state_in_start_order(start_tree, journal):
    inner = ChildSpec("sub", Supervisor, {"children": []})
    tree = start_tree([spec("a", journal), inner, spec("z", journal)])
    rows = tree.call("which_children")
    assert [r.id for r in rows] == ["a", "sub", "z"]
    assert all(isinstance(r, ChildInfo) and r.ref.is_alive() and r.state == "running" for r in rows)
    assert [r.type for r in rows] == ["worker", "supervisor", "worker"]


def test_count_children_counts_specs_actors_supervisors_and_workers(start_tree, journal):
    inner = ChildSpec("sub", Supervisor, {"children": []})
    tree = start_tree([spec("a", journal), inner, spec("b", journal)])
    tree.call("terminate_child", "b")
    assert tree.call("count_children") == Counts(specs=3, active=2, supervisors=1, workers=2)


def test_inspect_shows_the_supervisor_and_each_child_record(start_tree, journal):
    tree = start_tree([spec("a", journal)], intensity=3, period=10.0)
    view = tree.call("inspect")
    assert view["path"] == "/s1" and view["state"] == "running"
    assert view["config"]["strategy"] == "one_for_one" and view["restarts_left"] == 3
    (child,) = view["children"]
    assert child["id"] == "a" and child["path"] == "/s1/a" and child["state"] == "running"
    assert child["restart"] == "permanent" and child["restarts"] == 0
    assert child["next_attempt"] is None


def test_bad_flags_are_refused_before_anything_starts(ctx, journal):
    from dsmt.actor import Origin

    for flags in ({"strategy": "one_for_many"}, {"intensity": -1}, {"period": 0},
                  {"auto_shutdown": "sometimes"}):
        with pytest.raises(SupervisorError) as refused:
            Supervisor.start(Origin.root(ctx), [spec("a", journal)], **flags)
        assert refused.value.reason == "bad_spec"
    with pytest.raises(SupervisorError):
        Supervisor.start(Origin.root(ctx), [spec("a", journal), spec("a", journal)])
    assert journal.items == []


def test_bad_child_specs_are_refused(journal):
    for fields in ({"restart": "sometimes"}, {"shutdown": 0}, {"shutdown": -1.0},
                   {"shutdown": "soon"}):
        with pytest.raises(SupervisorError):
            spec("a", journal, **fields)
    with pytest.raises(SupervisorError):
        spec("a/b", journal)
