"""dsmt.testing: the fake clock and the bounded wait that every other test relies on."""

from __future__ import annotations

import threading
import time

import pytest

from dsmt.clock import SystemClock
from dsmt.testing import FakeClock, WaitTimeout, wait_for


def test_fake_clock_runs_due_timers_in_deadline_order():
    clock = FakeClock()
    fired = []
    clock.call_later(2.0, lambda: fired.append("b"))
    clock.call_later(1.0, lambda: fired.append("a"))
    clock.call_later(5.0, lambda: fired.append("c"))
    clock.advance(2.0)
    assert fired == ["a", "b"]
    assert clock.pending() == [clock.monotonic() + 3.0]


def test_fake_clock_shows_the_timer_deadline_as_the_time_inside_the_callback():
    clock = FakeClock(start=0.0)
    seen = []
    clock.call_later(1.5, lambda: seen.append(clock.monotonic()))
    clock.advance(10.0)
    assert seen == [1.5] and clock.monotonic() == 10.0


def test_a_cancelled_fake_timer_never_fires():
    clock = FakeClock()
    fired = []
    clock.call_later(1.0, lambda: fired.append(1)).cancel()
    clock.advance(5.0)
    assert fired == []


def test_a_timer_scheduled_by_a_callback_fires_within_the_same_advance():
    clock = FakeClock(start=0.0)
    fired = []
    clock.call_later(1.0, lambda: clock.call_later(1.0, lambda: fired.append(clock.monotonic())))
    clock.advance(3.0)
    assert fired == [2.0]


def test_wait_for_returns_the_first_truthy_value():
    box = []
    threading.Timer(0.01, lambda: box.append(42)).start()
    assert wait_for(lambda: box and box[0], timeout=5) == 42


def test_wait_for_fails_with_the_message_after_the_timeout():
    with pytest.raises(WaitTimeout, match="never"):
        wait_for(lambda: False, timeout=0.05, message="never")


def test_system_clock_fires_timers_and_skips_cancelled_ones():
    clock = SystemClock()
    done = threading.Event()
    skipped = []
    clock.call_later(0.05, lambda: skipped.append(1)).cancel()
    clock.call_later(0.1, done.set)
    assert done.wait(5)
    assert skipped == []


def test_system_clock_wakes_for_a_new_earliest_timer_and_fires_in_due_order():
    clock = SystemClock()
    fired: list = []
    done, primed = threading.Event(), threading.Event()
    clock.call_later(1.0, lambda: (fired.append(("late", time.monotonic())), done.set()))
    clock.call_later(0.0, primed.set)
    assert primed.wait(10)  # the timer thread runs, and then sleeps until the 1.0 s timer
    start = time.monotonic()
    clock.call_later(0.05, lambda: fired.append(("early", time.monotonic())))  # new head
    clock.call_later(0.5, lambda: fired.append(("middle", time.monotonic())))
    assert done.wait(10)
    assert [name for name, _ in fired] == ["early", "middle", "late"]
    assert fired[0][1] - start < 0.8  # the earlier timer woke it
