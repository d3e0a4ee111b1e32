"""The slice view's rows: the newest status per (sliver, component), states as DSMT names them."""

from __future__ import annotations

from dsmt.channels import Layout
from dsmt.event import RESOURCES, STATUS, Address, Sequencer
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


def test_an_instance_row_says_whether_it_is_ready_other_rows_say_nothing():
    view = SliceView([("127.0.0.1", 9)], "dsmt", "unused", LAYOUT)  # never started
    for component, detail in (("app.web.0", {"ready": False}), ("app.web.1", {"ready": True}),
                              ("coordinator", {})):
        view._received(Sequencer(Address(component, "s1")).make(
            LAYOUT.status(component, "s1"), STATUS,
            {"state": "running", "reason": None, **detail}, retain=True))
    assert [(r["component"], r["ready"]) for r in view.rows()] == [
        ("app.web.0", False), ("app.web.1", True), ("coordinator", None)]


def report(sliver: str, processes: list[dict], channel: str | None = None):
    return Sequencer(Address("container", sliver)).make(
        channel or LAYOUT.resources(sliver), RESOURCES,
        {"sliver": sliver, "processes": processes}, retain=True)


def test_the_newest_resource_report_of_each_sliver_is_kept_and_stray_ones_ignored():
    view = SliceView([("127.0.0.1", 9)], "dsmt", "unused", LAYOUT)  # never started
    first, second = report("s1", [{"pid": 1}]), report("s1", [{"pid": 2}])
    view._report(second)
    view._report(first)  # older: does not replace the newer
    view._report(report("s2", [{"pid": 3}], channel=LAYOUT.resources("s3")))  # wrong channel
    assert view.resources("s1")["processes"] == [{"pid": 2}]
    assert view.resources("s2") is None and view.resources("s3") is None
