"""Quarantine: the third failed install in a row takes a sliver out for the period, then back."""

from __future__ import annotations

from actors.coordinator.quarantine import Quarantine
from dsmt.testing import FakeClock


def test_the_third_failure_in_a_row_quarantines_for_the_period_with_the_last_reason():
    clock = FakeClock()
    q = Quarantine(clock, after=3, period=60.0)
    assert q.failed("fetch failed") is None and q.failed("fetch failed") is None
    reason = q.failed("checksum mismatch")
    assert reason == "3 failed deployment jobs in a row, last: checksum mismatch"
    assert q.reason() == reason and q.failed("again") is None
    clock.advance(60.0)
    assert q.reason() is None and q.failures == 0


def test_a_success_resets_the_count():
    q = Quarantine(FakeClock(), after=2)
    q.failed("x")
    q.succeeded()
    assert q.failed("y") is None and q.reason() is None


def test_a_hold_lasts_until_released_whatever_the_period_and_comes_before_failures():
    clock = FakeClock()
    q = Quarantine(clock, after=1, period=10.0)
    q.hold("deselected")
    assert q.reason() == "deselected"
    failure = q.failed("fetch failed")
    clock.advance(5.0)
    assert q.reason() == "deselected", "the hold, not the failure"
    assert q.release() is True and q.release() is False
    assert q.reason() == failure, "the failure's own period still runs"
    clock.advance(5.0)
    assert q.reason() is None
    clock.advance(1000.0)
    q.hold("deselected")
    assert q.reason() == "deselected"
