"""simple_one_for_one: many dynamic children of one template spec."""

from __future__ import annotations

import pytest

from dsmt.actor import Origin
from dsmt.errors import SupervisorError
from dsmt.supervisor import Supervisor
from tests.dsmt.conftest import BOUND, spec


def _pool(start_tree, journal, **fields):
    return start_tree([spec("web", journal, **fields)], strategy="simple_one_for_one", intensity=5)


def test_a_simple_supervisor_starts_no_child_by_itself(start_tree, journal):
    tree = _pool(start_tree, journal)
    assert tree.children() == {} and journal.items == []


def test_start_child_adds_numbered_children_with_merged_kwargs(start_tree, journal, registry):
    tree = _pool(start_tree, journal, kwargs={"port": 80})
    refs = [tree.call("start_child", instance=n) for n in range(3)]
    assert list(tree.children()) == [0, 1, 2]
    assert [registry.get(f"/s1/{n}") for n in range(3)] == refs
    config = refs[2].proxy().config.get(timeout=BOUND)
    assert config == {"port": 80, "instance": 2}


def test_terminate_child_by_ref_stops_and_forgets_it(start_tree, journal):
    tree = _pool(start_tree, journal)
    refs = [tree.call("start_child") for _ in range(3)]
    tree.call("terminate_child", refs[1])
    assert list(tree.children()) == [0, 2]
    assert not refs[1].is_alive()


def test_terminate_child_of_an_unknown_ref_is_not_found(start_tree, journal):
    tree = _pool(start_tree, journal)
    ref = tree.call("start_child")
    tree.call("terminate_child", ref)
    with pytest.raises(SupervisorError) as refused:
        tree.call("terminate_child", ref)
    assert refused.value.reason == "not_found"


@pytest.mark.parametrize("name", ["restart_child", "delete_child"])
def test_restart_and_delete_child_are_refused_for_simple_one_for_one(start_tree, journal, name):
    tree = _pool(start_tree, journal)
    tree.call("start_child")
    with pytest.raises(SupervisorError) as refused:
        tree.call(name, 0)
    assert refused.value.reason == "simple_one_for_one"


def test_a_simple_supervisor_takes_kwargs_not_a_spec(start_tree, journal):
    tree = _pool(start_tree, journal)
    with pytest.raises(SupervisorError):
        tree.call("start_child", spec("x", journal))


def test_stopping_a_simple_supervisor_stops_every_dynamic_child(start_tree, journal, registry):
    tree = _pool(start_tree, journal)
    for _ in range(5):
        tree.call("start_child")
    tree.ref.stop(block=True, timeout=BOUND)
    assert sorted(journal.paths("stop")) == sorted(f"/s1/{n}" for n in range(5))
    assert len(registry) == 0


def test_simple_one_for_one_needs_exactly_one_template(ctx, journal):
    with pytest.raises(SupervisorError):
        Supervisor.start(Origin.root(ctx), [spec("a", journal), spec("b", journal)],
                         strategy="simple_one_for_one")


def test_count_children_counts_dynamic_children(start_tree, journal):
    tree = _pool(start_tree, journal)
    for _ in range(4):
        tree.call("start_child")
    counts = tree.call("count_children")
    assert (counts.specs, counts.active, counts.workers) == (4, 4, 4)
