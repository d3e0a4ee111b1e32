"""How `dsmt status`/`dsmt top` judge a sliver from the heartbeats they see through the router."""

from __future__ import annotations

from dsmt.channels import Layout
from dsmt.event import HEARTBEAT, Address, Sequencer
from gateways.view import SliceView

LAYOUT = Layout("demo")


def beat(sliver: str, **payload):
    return Sequencer(Address("coordinator.heartbeat", sliver)).make(
        LAYOUT.heartbeat(sliver), HEARTBEAT, {"sliver": sliver, "period": 1.0, **payload},
        retain=True)


def test_a_sliver_is_alive_until_three_periods_then_suspected_then_dead():
    event = beat("s1")
    judge = lambda age: SliceView._judge("s1", event, event.ts + age)["state"]  # noqa: E731
    assert [judge(0.5), judge(2.9), judge(3.1), judge(12.9), judge(13.1)] == \
        ["alive", "alive", "suspected", "suspected", "dead"]
    assert SliceView._judge("s1", event, event.ts + 5)["reason"] == "no heartbeat for 5.0s"


def test_a_sliver_that_left_is_dead_at_once():
    event = beat("s1", leaving=True)
    assert SliceView._judge("s1", event, event.ts)["state"] == "dead"


def test_the_period_is_the_one_the_sliver_announces():
    event = beat("s1", period=5.0)
    assert SliceView._judge("s1", event, event.ts + 10)["state"] == "alive"
