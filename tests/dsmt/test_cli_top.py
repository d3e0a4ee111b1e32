"""`dsmt top`'s rows: each instance with the cpu and rss its sliver's resource report gives it."""

from __future__ import annotations

from dsmt.channels import Layout
from dsmt.cli import top
from dsmt.event import HEARTBEAT, RESOURCES, STATUS, Address, Sequencer
from gateways.view import SliceView

LAYOUT = Layout("demo")


def test_an_instance_gets_the_cpu_and_rss_reported_for_its_own_pid_only():
    view = SliceView([("127.0.0.1", 9)], "dsmt", "unused", LAYOUT)  # never started
    for instance, pid in ((0, 4242), (1, 4343)):
        view._received(Sequencer(Address(f"app.demo-app.{instance}", "s1")).make(
            LAYOUT.status(f"app.demo-app.{instance}", "s1"), STATUS,
            {"state": "running", "pid": pid, "restarts": 0, "reason": None}, retain=True))
    view._report(Sequencer(Address("container", "s1")).make(
        LAYOUT.resources("s1"), RESOURCES, {"sliver": "s1", "processes": [
            {"service": "demo-app", "instance": "0", "pid": 4242, "alive": True,
             "cpu_percent": 1.5, "rss": 3 * 2**20},
            # instance 1 restarted since this report: its old pid says nothing of the new one
            {"service": "demo-app", "instance": "1", "pid": 4000, "alive": True,
             "cpu_percent": 9.0, "rss": 2**20}]}, retain=True))
    rows = {r["instance"]: r for r in top.rows(view)}
    assert (rows[0]["pid"], rows[0]["cpu_percent"], rows[0]["rss"]) == (4242, 1.5, 3 * 2**20)
    assert (rows[1]["pid"], rows[1]["cpu_percent"], rows[1]["rss"]) == (4343, None, None)
    rendered = top.table(list(rows.values()), "demo")
    assert [c.header for c in rendered.columns][4:7] == ["pid", "cpu%", "rss"]
    assert list(rendered.columns[5].cells) == ["1.5", ""]
    assert list(rendered.columns[6].cells) == ["3.0M", ""]


def test_a_sliver_whose_heartbeat_says_it_is_quarantined_is_marked_with_why():
    view = SliceView([("127.0.0.1", 9)], "dsmt", "unused", LAYOUT)  # never started
    for sliver, out in (("s1", None), ("s2", "deselected")):
        view._received(Sequencer(Address("app.demo-app.0", sliver)).make(
            LAYOUT.status("app.demo-app.0", sliver), STATUS,
            {"state": "running", "pid": 1, "restarts": 0, "reason": None}, retain=True))
        view._beat(Sequencer(Address("coordinator.heartbeat", sliver)).make(
            LAYOUT.heartbeat(sliver), HEARTBEAT,
            {"sliver": sliver, "period": 1.0, "quarantined": out}, retain=True))
    frame = top.rows(view)
    assert [(r["sliver"], r["quarantined"]) for r in frame] == [("s1", None),
                                                                ("s2", "deselected")]
    assert list(top.table(frame, "demo").columns[0].cells) == ["s1",
                                                               "[yellow]s2 (deselected)[/]"]
