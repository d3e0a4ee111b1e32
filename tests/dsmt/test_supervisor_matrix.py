"""The OTP restart matrix: strategy × restart type × exit reason.

Children a, b, c start in that order; b has the restart type under test and
a, c are permanent. b exits with the reason under test. What OTP does:

- b comes back iff it is permanent, or transient and the exit was an error
  (``shutdown`` is a normal exit for a transient child);
- if b comes back, the strategy picks who comes back with it: only b
  (one_for_one), all (one_for_all), b and those started after it
  (rest_for_one); siblings go down in reverse start order and everybody
  comes back in start order;
- if b does not come back, nobody else is touched; a temporary b is
  forgotten, others stay listed without an actor.
"""

from __future__ import annotations

import pytest

from dsmt.testing import wait_for
from tests.dsmt.conftest import BOUND, spec

RESTART_TYPES = ["permanent", "transient", "temporary"]
REASONS = {"normal": "exit_normal", "shutdown": "exit_shutdown", "error": "crash"}
CASES = [(r, e) for r in RESTART_TYPES for e in REASONS]
IDS = [f"{r}-after-{e}" for r, e in CASES]

# What OTP's supervisor.erl does, written out by hand (not derived from dsmt._restart).
COMES_BACK = {
    ("permanent", "normal"): True, ("permanent", "shutdown"): True, ("permanent", "error"): True,
    ("transient", "normal"): False, ("transient", "shutdown"): False, ("transient", "error"): True,
    ("temporary", "normal"): False, ("temporary", "shutdown"): False, ("temporary", "error"): False,
}
RESTARTED_WITH_B = {"one_for_one": ["b"], "one_for_all": ["a", "b", "c"],
                    "rest_for_one": ["b", "c"]}


def _run(start_tree, journal, strategy, restart, reason):
    tree = start_tree([spec("a", journal), spec("b", journal, restart=restart), spec("c", journal)],
                      strategy=strategy, intensity=3)
    before = {cid: info.ref for cid, info in tree.children().items()}
    journal.clear()
    before["b"].tell(REASONS[reason])
    if COMES_BACK[restart, reason]:
        tree.wait_restarted("b", before["b"])
    elif restart == "temporary":
        wait_for(lambda: "b" not in tree.children(), BOUND, "temporary b to be forgotten")
    else:
        tree.wait_state("b", "exited")
    return tree, before


def _check(tree, journal, before, strategy, restart, reason):
    after = tree.children()
    if not COMES_BACK[restart, reason]:
        assert after["a"].ref is before["a"] and after["c"].ref is before["c"]
        if restart == "temporary":
            assert list(after) == ["a", "c"]
        else:
            assert after["b"].ref is None and after["b"].state == "exited"
        assert journal.paths("start") == []
        return
    again = RESTARTED_WITH_B[strategy]
    for cid in "abc":
        changed = after[cid].ref is not before[cid]
        assert changed == (cid in again), f"{cid} restarted={changed} under {strategy}"
        assert after[cid].ref.is_alive()
    assert journal.paths("start") == [f"/s1/{cid}" for cid in again]
    siblings = [cid for cid in again if cid != "b"]
    # b stopped itself (journaled) unless it crashed; the siblings went down in reverse.
    stopped_siblings = [p for p in journal.paths("stop") if p != "/s1/b"]
    assert stopped_siblings == [f"/s1/{cid}" for cid in reversed(siblings)]


@pytest.mark.parametrize("restart,reason", CASES, ids=IDS)
def test_one_for_one_restarts_only_the_child_when_its_restart_type_says_so(
        start_tree, journal, restart, reason):
    tree, before = _run(start_tree, journal, "one_for_one", restart, reason)
    _check(tree, journal, before, "one_for_one", restart, reason)


@pytest.mark.parametrize("restart,reason", CASES, ids=IDS)
def test_one_for_all_restarts_every_sibling_when_the_child_comes_back(
        start_tree, journal, restart, reason):
    tree, before = _run(start_tree, journal, "one_for_all", restart, reason)
    _check(tree, journal, before, "one_for_all", restart, reason)


@pytest.mark.parametrize("restart,reason", CASES, ids=IDS)
def test_rest_for_one_restarts_the_child_and_those_started_after_it(
        start_tree, journal, restart, reason):
    tree, before = _run(start_tree, journal, "rest_for_one", restart, reason)
    _check(tree, journal, before, "rest_for_one", restart, reason)


@pytest.mark.parametrize("restart,reason", CASES, ids=IDS)
def test_simple_one_for_one_restarts_a_dynamic_child_by_its_restart_type(
        start_tree, journal, restart, reason):
    tree = start_tree([spec("worker", journal, restart=restart)], strategy="simple_one_for_one",
                      intensity=3)
    refs = [tree.call("start_child") for _ in range(3)]
    journal.clear()
    refs[1].tell(REASONS[reason])
    if COMES_BACK[restart, reason]:
        new = tree.wait_restarted(1, refs[1])
        assert journal.paths("start") == ["/s1/1"]
        assert tree.children()[1].ref is new
    else:
        # OTP deletes a dynamic child that is not restarted, whatever its type.
        wait_for(lambda: 1 not in tree.children(), BOUND, "child 1 to be deleted")
    assert tree.children()[0].ref is refs[0] and tree.children()[2].ref is refs[2]


@pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])
def test_temporary_sibling_taken_down_by_a_restart_is_not_restarted(start_tree, journal, strategy):
    tree = start_tree([spec("a", journal), spec("b", journal),
                       spec("t", journal, restart="temporary")],
                      strategy=strategy, intensity=3)
    b = tree.ref_of("b")
    temporary = tree.ref_of("t")
    b.tell("crash")
    tree.wait_restarted("b", b)
    assert "t" not in tree.children()
    assert not temporary.is_alive()


def test_one_for_all_stops_siblings_in_reverse_and_restarts_in_start_order(start_tree, journal):
    tree = start_tree([spec(c, journal) for c in "abcd"], strategy="one_for_all", intensity=3)
    b = tree.ref_of("b")
    journal.clear()
    b.tell("crash")
    tree.wait_restarted("b", b)
    wait_for(lambda: len(journal.paths("start")) == 4, BOUND, "four starts")
    assert [p for p in journal.paths("stop")] == ["/s1/d", "/s1/c", "/s1/a"]
    assert journal.paths("start") == ["/s1/a", "/s1/b", "/s1/c", "/s1/d"]
