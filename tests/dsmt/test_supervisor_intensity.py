"""Restart intensity: one restart more than ``intensity`` within ``period`` gives up."""

from __future__ import annotations

from dsmt.actor import Error, Origin
from dsmt.childspec import ChildSpec
from dsmt.supervisor import MAX_INTENSITY, Supervisor
from dsmt.testing import wait_for
from tests.dsmt.conftest import BOUND, spec


def test_default_intensity_allows_one_restart_in_five_seconds_then_gives_up(start_tree, journal):
    tree = start_tree([spec("a", journal), spec("b", journal), spec("c", journal)])
    first = tree.ref_of("b")
    first.tell("crash")
    second = tree.wait_restarted("b", first)
    second.tell("crash")
    reason = tree.wait_exit()
    assert reason == Error("shutdown", MAX_INTENSITY)


def test_giving_up_stops_every_child_in_reverse_start_order(start_tree, journal):
    tree = start_tree([spec(c, journal) for c in "abc"], intensity=0)
    journal.clear()
    tree.ref_of("b").tell("crash")
    tree.wait_exit()
    assert journal.paths("stop") == ["/s1/c", "/s1/a"]


def test_restarts_spread_wider_than_the_period_never_reach_the_intensity(start_tree, journal,
                                                                        clock):
    tree = start_tree([spec("a", journal)], intensity=1, period=5.0)
    ref = tree.ref_of("a")
    for _ in range(5):
        ref.tell("crash")
        ref = tree.wait_restarted("a", ref)
        clock.advance(5.01)
    assert tree.ref.is_alive()
    assert tree.record("a")["restarts"] == 5


def test_a_restart_exactly_period_seconds_later_still_counts(start_tree, journal, clock):
    # OTP keeps a restart at t while t >= now - period.
    tree = start_tree([spec("a", journal)], intensity=1, period=5.0)
    ref = tree.ref_of("a")
    ref.tell("crash")
    ref = tree.wait_restarted("a", ref)
    clock.advance(5.0)
    ref.tell("crash")
    assert tree.wait_exit() == Error("shutdown", MAX_INTENSITY)


def test_intensity_reached_in_a_child_supervisor_escalates_to_its_parent(ctx, journal):
    inner = ChildSpec("app", Supervisor, {"children": [spec("w", journal)], "intensity": 1})
    origin = Origin.root(ctx)
    root = Supervisor.start(origin, [inner], intensity=5)
    assert origin.lifeline.wait_started(BOUND) is True
    proxy = root.proxy()
    app = proxy.which_children().get(timeout=BOUND)[0].ref
    w_path = "/s1/app/w"

    def w_ref():
        return ctx.registry.get(w_path)

    first = wait_for(w_ref, BOUND, "w to run")
    first.tell("crash")
    second = wait_for(lambda: w_ref() not in (None, first) and w_ref(), BOUND, "w restarted by app")
    second.tell("crash")
    # app gives up, root sees an abnormal exit of a permanent child and restarts it.
    new_app = wait_for(lambda: (lambda r: r is not app and r and r.is_alive() and r)(
        proxy.which_children().get(timeout=BOUND)[0].ref), BOUND, "app restarted by the root")
    assert new_app is not app
    root_view = proxy.inspect().get(timeout=BOUND)
    assert root_view["counters"]["exits_error"] == 1
    assert wait_for(w_ref, BOUND, "w under the new app") not in (first, second)


def test_giving_up_is_published_on_the_supervisor_and_the_child_channels(start_tree, journal,
                                                                         events, ctx):
    tree = start_tree([spec("a", journal)], intensity=0)
    tree.ref_of("a").tell("crash")
    tree.wait_exit()
    mine = events.latest(ctx.layout.status("sliver", "s1"))
    assert mine.retain and mine.payload["state"] == "failed"
    assert mine.payload["reason"] == f"shutdown: {MAX_INTENSITY}"
    assert mine.payload["child"] == "a" and mine.payload["intensity"] == 0
    child_states = events.states(ctx.layout.status("a", "s1"))
    assert child_states[-1] == "fatal"
    fatal = events.latest(ctx.layout.status("a", "s1")).payload
    assert fatal["reason"].startswith(MAX_INTENSITY) and "boom" in fatal["reason"]


def test_on_give_up_hook_is_called_with_the_reason_so_a_node_can_exit(start_tree, journal):
    seen = []
    tree = start_tree([spec("a", journal)], intensity=0, on_give_up=seen.append)
    tree.ref_of("a").tell("crash")
    tree.wait_exit()
    assert seen == [Error("shutdown", MAX_INTENSITY)]


def test_on_give_up_hook_is_called_when_the_children_cannot_start(ctx, journal):
    seen = []
    origin = Origin.root(ctx)
    Supervisor.start(origin, [spec("a", journal), spec("b", journal, kwargs={"fail_start": True})],
                     on_give_up=seen.append)
    reason = origin.lifeline.wait_exited(BOUND)
    assert isinstance(reason, Error) and reason.type == "SupervisorError"
    assert "'b'" in reason.message
    assert len(seen) == 1
    assert journal.items == [("start", "/s1/a"), ("stopping", "/s1/a"), ("stop", "/s1/a")]
