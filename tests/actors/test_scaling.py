"""The threshold policy: one step per cooldown, within [min, max], from the mean metric."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actors.plan import Scaling
from actors.scaling import ThresholdPolicy

RULE = Scaling(metric="load", high=0.8, low=0.2, min=1, max=5, cooldown=30.0)


def test_high_load_adds_one_replica_then_waits_for_the_cooldown():
    policy = ThresholdPolicy(RULE)
    assert policy.decide(2, [0.9, 1.0], now=0.0) == 3
    assert policy.decide(3, [0.9, 1.0], now=10.0) == 3
    assert policy.decide(3, [0.9, 1.0], now=30.0) == 4


def test_low_load_removes_one_replica_but_never_below_min():
    policy = ThresholdPolicy(RULE)
    assert policy.decide(2, [0.1], now=0.0) == 1
    assert policy.decide(1, [0.0], now=100.0) == 1


def test_no_metric_keeps_the_current_replicas_within_bounds():
    policy = ThresholdPolicy(RULE)
    assert policy.decide(3, [], now=0.0) == 3
    assert policy.decide(9, [], now=0.0) == 5


def test_load_between_the_thresholds_changes_nothing():
    assert ThresholdPolicy(RULE).decide(3, [0.5], now=0.0) == 3


@given(st.integers(0, 10), st.lists(st.floats(0, 2), max_size=5), st.floats(0, 1000))
def test_decisions_are_deterministic_bounded_and_one_step(current, values, now):
    a, b = ThresholdPolicy(RULE), ThresholdPolicy(RULE)
    decided = a.decide(current, values, now)
    assert decided == b.decide(current, values, now)
    assert RULE.min <= decided <= RULE.max
    bounded = min(RULE.max, max(RULE.min, current))
    assert abs(decided - bounded) <= 1
