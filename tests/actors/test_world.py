"""The world view: alive → suspected after k missed beats → dead after the grace; beats re-admit."""

from __future__ import annotations

from actors.world import ALIVE, DEAD, SUSPECTED, WorldView
from dsmt.testing import FakeClock


def view(clock) -> WorldView:
    return WorldView(clock, heartbeat=1.0, suspect_after=3, dead_after=5.0)


def test_a_sliver_that_beats_is_alive_and_live():
    clock = FakeClock()
    world = view(clock)
    assert world.beat("s1", {"labels": ["edge"], "epoch": "a"}) == ("dead", ALIVE)
    assert world.live() == {"s1": ("edge",)}


def test_suspected_after_k_missed_beats_not_before():
    clock = FakeClock()
    world = view(clock)
    world.beat("s1", {})
    clock.advance(2.9)
    assert world.check() == [] and world.state("s1") == ALIVE
    clock.advance(0.2)
    assert world.check() == [("s1", ALIVE, SUSPECTED)]
    assert world.live() == {}


def test_dead_after_the_grace_and_readmitted_when_beats_return():
    clock = FakeClock()
    world = view(clock)
    world.beat("s1", {"epoch": "a"})
    clock.advance(3.5)
    world.check()
    clock.advance(5.0)
    assert world.check() == [("s1", SUSPECTED, DEAD)]
    assert world.beat("s1", {"epoch": "b"}) == (DEAD, ALIVE)
    member = world.members["s1"]
    assert member.readmitted == 1 and member.epoch == "b" and world.live() == {"s1": ()}


def test_a_suspected_sliver_that_beats_again_is_alive():
    clock = FakeClock()
    world = view(clock)
    world.beat("s1", {})
    clock.advance(3.5)
    world.check()
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
