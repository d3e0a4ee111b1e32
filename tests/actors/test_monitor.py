"""Install monitors: re-emission every emit_rate, stalls reported and restarted, restarts
survived."""

from __future__ import annotations

from typing import Any

import pytest

from actors.container import ContainerManager
from actors.monitor import InstallMonitor
from dsmt.actor import Actor
from dsmt.childspec import BRUTAL_KILL, ChildSpec
from dsmt.testing import wait_for
from tests.dsmt.conftest import (BOUND, clock, ctx, events, gates, registry,  # noqa: F401
                                 start_tree)

EMIT = 10.0
LIFECYCLE = ("requested", "initiated", "instantiated", "running")


class Component(Actor):
    """Walks the lifecycle on start up to ``stay_in``; then moves, crashes or blocks on command."""

    def __init__(self, origin, stay_in: str = "running", **config: Any) -> None:
        super().__init__(origin, **config)
        self.stay_in = stay_in

    def on_start(self) -> None:
        for state in LIFECYCLE:
            self.change_state(state, pid=4242, version="1.0")
            if state == self.stay_in:
                break

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("boom")
        if isinstance(message, tuple) and message[0] == "go":
            self.change_state(message[1])
        if isinstance(message, tuple) and message[0] == "block":
            message[1].wait(BOUND * 4)
        return None


def start(start_tree, component: dict[str, Any] | None = None, component_spec: dict | None = None,  # noqa: F811
          **monitor: Any):
    """One supervisor: the component ``web`` then its monitor ``web-monitor``; returns the tree."""
    monitor.setdefault("emit_rate", EMIT)
    monitor.setdefault("kill_after", None)
    specs = [ChildSpec("web", Component, component or {}, **(component_spec or {})),
             ChildSpec("web-monitor", InstallMonitor, {"target": "/s1/web", **monitor})]
    return start_tree(specs, intensity=10, period=5.0)


def following(tree, state: str, attempt: int = 1) -> dict[str, Any]:
    """Wait until the monitor knows the component is in ``state`` (incarnation ``attempt``)."""
    proxy = tree.ref_of("web-monitor").proxy()

    def known() -> dict[str, Any] | None:
        seen = proxy.inspect().get(timeout=BOUND)["component"]
        return seen if seen and seen["state"] == state and seen["attempt"] == attempt else None
    return wait_for(known, BOUND, lambda: f"monitor following {state} (attempt {attempt}): "
                                          f"{proxy.inspect().get(timeout=BOUND)['component']}")


def advance(clock, tree, seconds: float) -> None:  # noqa: F811
    """Move the fake clock, then round-trip the monitor so every tick it was told is handled."""
    clock.advance(seconds)
    tree.ref_of("web-monitor").proxy().inspect().get(timeout=BOUND)


def emitted(events, ctx) -> list[dict[str, Any]]:  # noqa: F811
    """Status payloads the monitor (not the component) published for ``web``."""
    return [e.payload for e in events.on(ctx.layout.status("web", "s1"))
            if e.sender.service == "web-monitor"]


def test_the_monitor_re_emits_the_components_state_every_emit_rate(
        start_tree, clock, events, ctx):  # noqa: F811
    tree = start(start_tree)
    following(tree, "running")
    assert emitted(events, ctx) == []
    advance(clock, tree, EMIT)
    [first] = emitted(events, ctx)
    event = [e for e in events.on(ctx.layout.status("web", "s1"))
             if e.sender.service == "web-monitor"][0]
    assert event.retain
    assert {k: first[k] for k in ("hostname", "component", "slice", "state", "managed", "emit-rate",
                                  "reason", "path", "attempt", "pid", "version", "monitor")} == {
        "hostname": "host-1", "component": "web", "slice": "demo", "state": "running",
        "managed": True, "emit-rate": EMIT, "reason": None, "path": "/s1/web", "attempt": 1,
        "pid": 4242, "version": "1.0", "monitor": "/s1/web-monitor"}
    assert first["timings"] == {"since": clock.wall() - EMIT, "in_state": EMIT, "timeout": None}
    advance(clock, tree, EMIT - 0.5)
    assert len(emitted(events, ctx)) == 1
    advance(clock, tree, 0.5)
    advance(clock, tree, EMIT)
    assert [p["state"] for p in emitted(events, ctx)] == ["running"] * 3
    assert emitted(events, ctx)[-1]["timings"]["in_state"] == 3 * EMIT


def test_the_monitor_emits_the_state_the_component_has_moved_to(start_tree, clock, events, ctx):  # noqa: F811
    tree = start(start_tree, {"stay_in": "initiated"}, timeouts={})
    following(tree, "initiated")
    tree.ref_of("web").tell(("go", "instantiated"))
    following(tree, "instantiated")
    advance(clock, tree, EMIT)
    assert [p["state"] for p in emitted(events, ctx)] == ["instantiated"]


def test_nothing_is_emitted_while_the_components_state_is_unknown(start_tree, clock, events, ctx):  # noqa: F811
    tree = start_tree([ChildSpec("web-monitor", InstallMonitor,
                                 {"target": "/s1/web", "emit_rate": EMIT})])
    advance(clock, tree, EMIT * 3)
    assert events.on(ctx.layout.status("web", "s1")) == []
    assert tree.ref_of("web-monitor").proxy().emit().get(timeout=BOUND) is None


def test_a_stalled_component_is_reported_failed_and_restarted_by_its_supervisor(
        start_tree, clock, events, ctx):  # noqa: F811
    tree = start(start_tree, {"stay_in": "initiated"}, timeouts={"initiated": 60.0})
    following(tree, "initiated")
    first = tree.ref_of("web")
    advance(clock, tree, 59.0)
    assert first.is_alive() and emitted(events, ctx)[-1]["state"] == "initiated"
    advance(clock, tree, 1.0)
    report = emitted(events, ctx)[-1]
    assert (report["state"], report["reason"]) == ("failed", "stalled in initiated")
    second = tree.wait_restarted("web", first)
    assert second is not first
    own = [e.payload for e in events.on(ctx.layout.status("web", "s1"))
           if e.sender.service == "web"]
    assert ("failed", "Stalled: stalled in initiated") in [(p["state"], p["reason"]) for p in own]
    following(tree, "initiated", attempt=2)
    advance(clock, tree, 60.0)
    assert tree.wait_restarted("web", second) is not second, "the new incarnation is watched too"
    assert tree.ref_of("web-monitor").proxy().stalls.get(timeout=BOUND) == 2


def test_a_state_timeout_of_none_never_stalls(start_tree, clock, events, ctx):  # noqa: F811
    tree = start(start_tree, {"stay_in": "initiated"}, timeouts={"initiated": None})
    following(tree, "initiated")
    first = tree.ref_of("web")
    advance(clock, tree, 10.0**6)
    assert tree.ref_of("web") is first
    assert {p["state"] for p in emitted(events, ctx)} == {"initiated"}


def test_the_stall_timer_starts_again_when_the_component_moves_on(start_tree, clock, events, ctx):  # noqa: F811
    tree = start(start_tree, {"stay_in": "initiated"}, emit_rate=None,
                 timeouts={"initiated": 60.0, "instantiated": 60.0})
    following(tree, "initiated")
    advance(clock, tree, 50.0)
    tree.ref_of("web").tell(("go", "instantiated"))
    following(tree, "instantiated")
    advance(clock, tree, 50.0)
    assert emitted(events, ctx) == []
    advance(clock, tree, 10.0)
    assert emitted(events, ctx)[-1]["reason"] == "stalled in instantiated"


def test_the_monitor_survives_its_component_restarting_and_follows_the_new_one(
        start_tree, clock, events, ctx):  # noqa: F811
    tree = start(start_tree)
    following(tree, "running")
    monitor = tree.ref_of("web-monitor")
    first = tree.ref_of("web")
    first.tell("crash")
    tree.wait_restarted("web", first)
    seen = following(tree, "running", attempt=2)
    assert seen["stalls"] == 0
    assert tree.ref_of("web-monitor") is monitor and monitor.is_alive()
    advance(clock, tree, EMIT)
    last = emitted(events, ctx)[-1]
    assert (last["state"], last["attempt"]) == ("running", 2)


def test_a_component_stuck_inside_a_handler_is_restarted_by_its_supervisor_after_kill_after(
        start_tree, clock, events, ctx, gates):  # noqa: F811
    tree = start(start_tree, {"stay_in": "initiated"}, {"shutdown": BRUTAL_KILL},
                 timeouts={"initiated": 60.0}, kill_after=30.0)
    following(tree, "initiated")
    first = tree.ref_of("web")
    first.tell(("block", gates()))
    advance(clock, tree, 60.0)
    assert emitted(events, ctx)[-1]["reason"] == "stalled in initiated"
    advance(clock, tree, 29.0)
    assert tree.ref_of("web") is first, "still waiting for the failure to land"
    advance(clock, tree, 1.0)
    second = tree.wait_restarted("web", first)
    following(tree, "initiated", attempt=2)
    assert tree.ref_of("web-monitor").proxy().counters.get(timeout=BOUND)["escalations"] == 1
    assert second is not first


def test_a_monitor_follows_the_container_manager(start_tree, clock, events, ctx, tmp_path):  # noqa: F811
    tree = start_tree([
        ChildSpec("container-mgr", ContainerManager,
                  {"workspace": tmp_path / "ws", "cgroups": False, "report_interval": None}),
        ChildSpec("web-monitor", InstallMonitor,
                  {"target": "/s1/container-mgr", "emit_rate": EMIT}),
    ])
    proxy = tree.ref_of("web-monitor").proxy()
    wait_for(lambda: (proxy.inspect().get(timeout=BOUND)["component"] or {}).get("state")
             == "installed", BOUND, "the monitor to see the container installed")
    clock.advance(EMIT)
    proxy.inspect().get(timeout=BOUND)
    [payload] = [e.payload for e in events.on(ctx.layout.status("container-mgr", "s1"))
                 if e.sender.service == "web-monitor"]
    assert payload["state"] == "installed" and payload["workspace"] == str(tmp_path / "ws")


def test_invalid_monitor_durations_are_refused(ctx):  # noqa: F811
    from dsmt.actor import Origin
    with pytest.raises(ValueError, match="> 0 seconds"):
        InstallMonitor(Origin(ctx, "/s1/m"), "/s1/web", emit_rate=0)
