"""The slice view's rows: the newest status per (sliver, component), states as DSMT names them."""

from __future__ import annotations

from dsmt.channels import Layout
from dsmt.event import STATUS, Address, Sequencer
from gateways.view import SliceView

LAYOUT = Layout("demo")


def test_the_original_dsmts_spellings_of_initiated_are_shown_as_initiated():
    view = SliceView([("127.0.0.1", 9)], "dsmt", "unused", LAYOUT)  # never started
    for sliver, state in (("s1", "initalized"), ("s2", "initialized"), ("s3", "installed")):
        view._received(Sequencer(Address("agent", sliver)).make(
            LAYOUT.status("deployment-agent", sliver), STATUS,
            {"state": state, "reason": None}, retain=True))
    assert [(r["sliver"], r["state"]) for r in view.rows()] == [
        ("s1", "initiated"), ("s2", "initiated"), ("s3", "installed")]
