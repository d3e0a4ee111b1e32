"""DSMT's backoff extension and OTP's try-again restarts, on a FakeClock."""

from __future__ import annotations

import threading

import pytest

from dsmt.childspec import Backoff, ChildSpec
from dsmt.errors import SupervisorError
from dsmt.testing import wait_for
from tests.dsmt.conftest import BOUND, Worker, spec

BACKOFF = Backoff(min=1.0, max=4.0, factor=2.0, jitter=0.0, reset_after=10.0)


def _crash(tree, child_id="a"):
    ref = tree.ref_of(child_id)
    ref.tell("crash")
    return ref


def test_a_crashed_child_waits_in_backoff_with_next_attempt_and_restarts_left(start_tree, journal,
                                                                              clock):
    tree = start_tree([spec("a", journal, backoff=BACKOFF)], intensity=5, period=60.0)
    old = _crash(tree)
    record = tree.wait_state("a", "backoff")
    assert record["next_attempt"] == clock.wall() + 1.0
    assert record["restarts_left"] == 4
    assert record["reason"] == "RuntimeError: boom"
    assert tree.children()["a"].restarting and tree.children()["a"].ref is None
    clock.advance(0.99)
    assert tree.record("a")["state"] == "backoff"
    clock.advance(0.01)
    tree.wait_restarted("a", old)
    assert tree.record("a")["next_attempt"] is None


def test_backoff_delays_grow_exponentially_up_to_the_maximum(start_tree, journal, clock):
    tree = start_tree([spec("a", journal, backoff=BACKOFF)], intensity=10, period=60.0)
    delays = []
    for _ in range(4):
        old = _crash(tree)
        record = tree.wait_state("a", "backoff")
        delays.append(record["next_attempt"] - clock.wall())
        clock.advance(delays[-1])
        tree.wait_restarted("a", old)
    assert delays == [1.0, 2.0, 4.0, 4.0]


def test_backoff_resets_after_the_child_stayed_up_long_enough(start_tree, journal, clock):
    tree = start_tree([spec("a", journal, backoff=BACKOFF)], intensity=10, period=5.0)
    for expected in (1.0, 2.0):
        old = _crash(tree)
        assert tree.wait_state("a", "backoff")["next_attempt"] - clock.wall() == expected
        clock.advance(expected)
        tree.wait_restarted("a", old)
    clock.advance(10.0)  # stable uptime
    _crash(tree)
    assert tree.wait_state("a", "backoff")["next_attempt"] - clock.wall() == 1.0


def test_backoff_jitter_stays_within_its_fraction(start_tree, journal, clock):
    import random

    jittery = Backoff(min=10.0, max=10.0, jitter=0.25, reset_after=None)
    tree = start_tree([spec("a", journal, backoff=jittery)], intensity=10, period=60.0,
                      rng=random.Random(7))
    _crash(tree)
    delay = tree.wait_state("a", "backoff")["next_attempt"] - clock.wall()
    assert 7.5 <= delay <= 12.5 and delay != 10.0


def test_the_backoff_state_is_published_on_the_child_channel(start_tree, journal, clock, events,
                                                             ctx):
    tree = start_tree([spec("a", journal, backoff=BACKOFF)], intensity=5, period=60.0)
    _crash(tree)
    tree.wait_state("a", "backoff")
    event = events.latest(ctx.layout.status("a", "s1"))
    assert event.retain and event.payload["state"] == "backoff"
    assert event.payload["next_attempt"] == clock.wall() + 1.0
    assert event.payload["restarts_left"] == 4 and event.payload["supervisor"] == "/s1"
    assert event.payload["hostname"] == "host-1" and event.payload["slice"] == "demo"


def test_restart_and_delete_child_are_refused_while_a_restart_is_pending(start_tree, journal):
    tree = start_tree([spec("a", journal, backoff=BACKOFF)], intensity=5, period=60.0)
    _crash(tree)
    tree.wait_state("a", "backoff")
    for name in ("restart_child", "delete_child"):
        with pytest.raises(SupervisorError) as refused:
            tree.call(name, "a")
        assert refused.value.reason == "restarting"


def test_terminate_child_cancels_a_pending_backoff_restart(start_tree, journal, clock):
    tree = start_tree([spec("a", journal, backoff=BACKOFF)], intensity=5, period=60.0)
    _crash(tree)
    tree.wait_state("a", "backoff")
    tree.call("terminate_child", "a")
    clock.advance(5.0)
    assert tree.record("a")["state"] == "stopped" and tree.ref_of("a") is None
    assert clock.pending() == []


class _Flaky:
    """A start callable that fails while ``broken`` is set."""

    def __init__(self, journal):
        self.broken = threading.Event()
        self.attempts = 0
        self.journal = journal

    def __call__(self, origin, **kwargs):
        self.attempts += 1
        return Worker.start(origin, journal=self.journal, fail_start=self.broken.is_set())


def test_a_failing_restart_is_retried_by_the_supervisor_without_blocking_its_mailbox(
        start_tree, journal, clock):
    flaky = _Flaky(journal)
    tree = start_tree([ChildSpec("a", flaky, backoff=BACKOFF)], intensity=10, period=60.0)
    flaky.broken.set()
    _crash(tree)
    tree.wait_state("a", "backoff")
    clock.advance(1.0)  # attempt 2 fails on_start: back to backoff, 2 s
    record = wait_for(lambda: (lambda r: r["attempt"] == 2 and r["state"] == "backoff" and r)(
        tree.record("a")), BOUND, "the failed attempt to be rescheduled")
    assert record["next_attempt"] == clock.wall() + 2.0
    assert record["reason"] == "RuntimeError: cannot start"
    # The supervisor keeps answering while the child cannot start.
    assert tree.call("count_children").active == 0
    flaky.broken.clear()
    clock.advance(2.0)
    tree.wait_state("a", "running")
    assert flaky.attempts == 3


def test_a_failing_restart_without_backoff_is_retried_at_once_by_a_self_message(start_tree,
                                                                                journal):
    flaky = _Flaky(journal)
    tree = start_tree([ChildSpec("a", flaky)], intensity=1000, period=60.0)
    flaky.broken.set()
    old = _crash(tree)
    wait_for(lambda: flaky.attempts >= 5, BOUND, "several immediate retries")
    # Calls are served between the retries: the mailbox is never blocked.
    assert tree.call("which_children")[0].restarting
    flaky.broken.clear()
    tree.wait_restarted("a", old)


def test_every_failed_retry_counts_against_the_intensity(start_tree, journal):
    flaky = _Flaky(journal)
    tree = start_tree([ChildSpec("a", flaky)], intensity=3, period=60.0)
    flaky.broken.set()
    _crash(tree)
    reason = tree.wait_exit()
    assert reason.message == "reached_max_restart_intensity"
    assert flaky.attempts == 1 + 3  # the first start, then three restarts allowed


def test_restart_child_that_cannot_start_keeps_the_spec(start_tree, journal):
    flaky = _Flaky(journal)
    tree = start_tree([ChildSpec("a", flaky)])
    tree.call("terminate_child", "a")
    flaky.broken.set()
    with pytest.raises(SupervisorError) as refused:
        tree.call("restart_child", "a")
    assert refused.value.reason == "start_failed"
    assert tree.children()["a"].state == "exited"
    flaky.broken.clear()
    assert tree.call("restart_child", "a").is_alive()


def test_a_one_for_all_group_waits_out_the_backoff_together(start_tree, journal, clock):
    tree = start_tree([spec("a", journal), spec("b", journal, backoff=BACKOFF)],
                      strategy="one_for_all", intensity=5, period=60.0)
    journal.clear()
    old = _crash(tree, "b")
    tree.wait_state("b", "backoff")
    assert tree.record("a")["state"] == "stopped" and tree.children()["a"].restarting
    assert journal.paths("start") == []
    clock.advance(1.0)
    tree.wait_restarted("b", old)
    assert journal.paths("start") == ["/s1/a", "/s1/b"]


def test_a_start_that_never_returns_times_out_and_is_refused(start_tree, journal, gates, clock):
    gate = gates()

    class Slow(Worker):
        def on_start(self):
            gate.wait(BOUND * 4)
            super().on_start()

    tree = start_tree([])
    with pytest.raises(SupervisorError) as refused:
        tree.call("start_child", ChildSpec("slow", Slow, {"journal": journal}, start_timeout=0.1))
    assert "TimeoutError" in str(refused.value.detail)
