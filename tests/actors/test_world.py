"""The world view: a silent peer dies only on evidence the silence is its own; beats re-admit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actors.world import ALIVE, DEAD, SUSPECTED, WindowMax, WorldView
from dsmt.testing import FakeClock


def view(clock) -> WorldView:
    return WorldView(clock, heartbeat=1.0, suspect_after=3, dead_after=5.0)


def test_a_sliver_that_beats_is_alive_and_live():
    clock = FakeClock()
    world = view(clock)
    assert world.beat("s1", {"labels": ["edge"], "epoch": "a"}) == ("dead", ALIVE)
    assert world.live() == {"s1": ("edge",)}


def test_a_lone_silent_peer_is_dead_after_k_missed_beats_not_before():
    clock = FakeClock()
    world = view(clock)
    world.beat("s1", {})
    clock.advance(2.9)
    assert world.check() == [] and world.state("s1") == ALIVE
    clock.advance(0.2)
    assert world.check() == [("s1", ALIVE, DEAD)]
    assert world.live() == {} and world.placeable() == {}


def test_a_dead_sliver_is_readmitted_when_its_beats_return():
    clock = FakeClock()
    world = view(clock)
    world.beat("s1", {"epoch": "a"})
    clock.advance(3.5)
    assert world.check() == [("s1", ALIVE, DEAD)]
    assert world.beat("s1", {"epoch": "b"}) == (DEAD, ALIVE)
    member = world.members["s1"]
    assert member.readmitted == 1 and member.epoch == "b" and world.live() == {"s1": ()}


def test_many_peers_silent_at_once_are_only_suspected_and_keep_their_share():
    clock = FakeClock()
    world = WorldView(clock, heartbeat=1.0, suspect_after=3, dead_after=5.0, own="me")
    for name in ("me", "s1", "s2", "s3"):
        world.beat(name, {})
    clock.advance(3.5)
    world.beat("me", {})
    assert sorted(world.check()) == [(s, ALIVE, SUSPECTED) for s in ("s1", "s2", "s3")]
    assert world.systemic() == "3 of 3 peers silent at once"
    assert sorted(world.placeable()) == ["me", "s1", "s2", "s3"]
    assert world.beat("s2", {}) == (SUSPECTED, ALIVE)


def test_peers_silent_together_for_the_grace_are_dead_when_this_sliver_is_on_time():
    clock = FakeClock()
    world = WorldView(clock, heartbeat=1.0, suspect_after=3, dead_after=5.0, own="me")
    for name in ("me", "s1", "s2"):
        world.beat(name, {})
    clock.advance(3.5)
    world.check()
    clock.advance(5.0)
    assert sorted(world.check()) == [("s1", SUSPECTED, DEAD), ("s2", SUSPECTED, DEAD)]


def test_a_sliver_late_itself_does_not_declare_a_silent_peer_dead():
    clock = FakeClock()
    world = WorldView(clock, heartbeat=1.0, suspect_after=3, dead_after=5.0, own="me")
    world.beat("me", {})
    world.beat("s1", {})
    clock.advance(4.0)
    world.late(2.5)  # our own beat went out 2.5 s after its time
    assert world.systemic() == "this sliver is late itself (2.50s)"
    world.check()
    assert world.state("s1") != DEAD and "s1" in world.placeable()
    clock.advance(5.0)
    world.late(1.5)
    world.check()
    assert world.state("s1") == SUSPECTED  # still late: no death even after the grace


def test_late_beats_widen_the_threshold_by_their_transit_time():
    clock = FakeClock()
    world = WorldView(clock, heartbeat=1.0, suspect_after=3, own="me")
    world.beat("s1", {}, age=0.8, transit=0.8)
    world.beat("s2", {}, age=0.0, transit=0.0)
    assert world.threshold() == 3.8
    clock.advance(2.9)  # s1's beat was sent 3.7 s ago: late, but within k beats + transit
    world.beat("s2", {}, transit=0.0)
    assert world.check() == [] and world.state("s1") == ALIVE
    clock.advance(0.2)
    assert world.check() == [("s1", ALIVE, DEAD)]


def test_this_sliver_is_never_overdue_in_its_own_view():
    clock = FakeClock()
    world = WorldView(clock, heartbeat=1.0, suspect_after=3, own="me")
    world.beat("me", {})
    clock.advance(60.0)
    assert world.check() == [] and world.state("me") == ALIVE


def test_a_suspected_sliver_that_beats_again_is_alive():
    clock = FakeClock()
    world = WorldView(clock, heartbeat=1.0, suspect_after=3, own="me")
    world.beat("me", {})
    world.beat("s1", {})
    clock.advance(4.5)
    world.late(1.0)  # late ourselves: the threshold is 4 s, and the silence may be ours
    assert world.check() == [("s1", ALIVE, SUSPECTED)]
    assert world.beat("s1", {}) == (SUSPECTED, ALIVE)


def test_an_old_retained_beat_does_not_look_fresh():
    clock = FakeClock()
    world = view(clock)
    assert world.beat("s1", {}, age=60.0) is None
    assert world.state("s1") == DEAD and world.live() == {}


def test_a_leaving_sliver_is_dead_at_once_and_a_late_copy_changes_nothing():
    clock = FakeClock()
    world = view(clock)
    world.beat("s1", {})
    clock.advance(0.5)
    assert world.beat("s1", {"leaving": True}) == (ALIVE, DEAD)
    assert world.beat("s1", {}, age=1.0) is None
    assert world.state("s1") == DEAD


def test_quarantined_members_are_reported_with_their_reason():
    clock = FakeClock()
    world = view(clock)
    world.beat("s1", {"quarantined": "install failed 3 times"})
    world.beat("s2", {})
    assert world.quarantined() == {"s1": "install failed 3 times"}
    assert world.summary()["s1"]["state"] == ALIVE


# Steps: wait this long (0 = same instant), then add this value or (None) ask for the max.
_steps = st.lists(st.tuples(st.sampled_from([0.0, 0.25, 1.0, 2.5, 7.0]),
                            st.none() | st.floats(0.0, 10.0)), max_size=80)


@given(_steps)
def test_the_window_max_is_the_largest_sample_of_the_window_whatever_the_sequence(steps):
    window, now, added = WindowMax(6.0), 0.0, []
    for wait, value in steps:
        now += wait
        if value is None:
            expected = max((v for at, v in added if now - at <= 6.0), default=0.0)
            assert window.max(now) == expected
        else:
            window.add(now, value)
            added.append((now, value))
