"""The actor base: path, state machine, status events, inspect, exit reports, registry."""

from __future__ import annotations

import queue
import threading

import pykka
import pytest

from dsmt.actor import (
    KILLED,
    NORMAL,
    SHUTDOWN,
    Actor,
    ChildExit,
    Error,
    Origin,
    exit_kind,
    kill,
)
from dsmt.errors import DsmtError, TransitionError
from dsmt.event import STATUS
from dsmt.registry import Registry
from dsmt.states import PROCESS
from dsmt.testing import RecordingPublishers, WaitTimeout, stop_all, wait_for
from tests.dsmt.conftest import BOUND, Collector, Journal, Worker


class Component(Actor):
    """Walks the DSMT component lifecycle on start, like a real component would."""

    def on_start(self):
        for state in ("requested", "initialized", "instantiated"):
            self.change_state(state)
        self.change_state("running", version="1.2", pid=4242)

    def on_receive(self, message):
        if message == "crash":
            raise RuntimeError("boom")
        if isinstance(message, tuple) and message[0] == "go":
            self.change_state(message[1])
        return None


@pytest.fixture
def parent():
    inbox: queue.Queue = queue.Queue()
    ref = Collector.start(inbox)
    yield ref, inbox
    ref.stop()


def _child(ctx, parent_ref, cls=Worker, child_id="web", **config):
    origin = Origin(ctx, f"/s1/app/{child_id}", parent_ref, child_id)
    return cls.start(origin, **config), origin


def _exit_of(inbox) -> ChildExit:
    message = inbox.get(timeout=BOUND)
    assert isinstance(message, ChildExit)
    return message


def test_the_component_name_is_the_path_after_the_sliver_joined_by_dots(ctx):
    assert Origin(ctx, "/s1/app/web/0").component == "app.web.0"
    assert Origin.root(ctx).path == "/s1" and Origin.root(ctx).component == "sliver"
    assert Origin.root(ctx).child("app", None).path == "/s1/app"


def test_change_state_publishes_a_retained_status_with_the_dsmt_fields(ctx, events, parent):
    ref, _ = _child(ctx, parent[0], Component, child_id="web")
    channel = ctx.layout.status("app.web", "s1")
    event = events.wait_for(lambda e: e.channel == channel and e.payload["state"] == "running")
    assert event.type == STATUS and event.retain
    assert event.payload == {
        "hostname": "host-1", "component": "app.web", "slice": "demo", "state": "running",
        "managed": True, "emit-rate": None, "reason": None, "path": "/s1/app/web",
        "version": "1.2", "pid": 4242,
    }
    assert events.states(channel) == ["requested", "initiated", "instantiated", "running"]
    assert [e.seq for e in events.on(channel)] == [1, 2, 3, 4]


def test_an_illegal_transition_raises_and_changes_nothing(ctx, events, parent):
    ref, _ = _child(ctx, parent[0], Component)
    channel = ctx.layout.status("app.web", "s1")
    events.wait_for(lambda e: e.channel == channel and e.payload["state"] == "running")
    with pytest.raises(TransitionError):
        ref.proxy().change_state("instantiated").get(timeout=BOUND)
    assert ref.proxy().state.get(timeout=BOUND) == "running"
    assert events.states(channel)[-1] == "running"


def test_a_machine_other_than_component_is_checked_against_its_own_table(ctx, parent):
    class Process(Actor):
        machine = PROCESS

    ref, _ = _child(ctx, parent[0], Process)
    proxy = ref.proxy()
    assert proxy.state.get(timeout=BOUND) == "stopped"
    proxy.change_state("starting").get(timeout=BOUND)
    with pytest.raises(TransitionError):
        proxy.change_state("stopped").get(timeout=BOUND)


def test_inspect_is_a_plain_snapshot_of_the_actor(ctx, parent, clock):
    ref, _ = _child(ctx, parent[0], Component, colour="blue")
    wait_for(lambda: ref.proxy().state.get(timeout=BOUND) == "running", BOUND)
    view = ref.proxy().inspect().get(timeout=BOUND)
    assert view["path"] == "/s1/app/web" and view["state"] == "running"
    assert view["since"] == clock.wall() and view["reason"] is None
    assert view["counters"] == {"transitions": 4}
    assert view["config"] == {"colour": "blue"}
    assert view["detail"] == {"version": "1.2", "pid": 4242}
    assert view["children"] == []


def test_an_actor_that_stops_itself_reports_normal_to_its_parent(ctx, parent):
    ref, origin = _child(ctx, parent[0])
    ref.tell("exit_normal")
    report = _exit_of(parent[1])
    assert (report.child_id, report.ref, report.reason) == ("web", ref, NORMAL)
    assert origin.lifeline.wait_exited(BOUND) == NORMAL


def test_an_actor_stopped_by_someone_else_reports_shutdown(ctx, parent):
    ref, _ = _child(ctx, parent[0])
    ref.stop(block=True, timeout=BOUND)
    assert _exit_of(parent[1]).reason == SHUTDOWN


def test_an_exception_in_a_told_handler_is_an_error_exit_after_on_failure(ctx, parent):
    journal = Journal()
    ref, _ = _child(ctx, parent[0], journal=journal)
    ref.tell("crash")
    reason = _exit_of(parent[1]).reason
    assert isinstance(reason, Error) and reason.type == "RuntimeError" and reason.message == "boom"
    assert "Traceback" in reason.traceback and "on_receive" in reason.traceback
    assert journal.items[-1] == ("failure", "/s1/app/web")
    assert exit_kind(reason) == "error"


def test_an_exception_in_an_asked_handler_goes_to_the_caller_and_the_actor_lives_on(ctx, parent):
    ref, _ = _child(ctx, parent[0])
    with pytest.raises(RuntimeError):
        ref.ask("crash", timeout=BOUND)
    assert ref.is_alive()
    assert parent[1].empty()


def test_an_exception_in_on_start_is_an_error_exit_and_the_start_never_completes(ctx, parent):
    ref, origin = _child(ctx, parent[0], fail_start=True)
    reason = _exit_of(parent[1]).reason
    assert reason.type == "RuntimeError" and reason.message == "cannot start"
    assert origin.lifeline.wait_started(BOUND) == reason


def test_an_exception_in_on_stop_is_an_error_exit(ctx, parent):
    class BadStop(Worker):
        def on_stop(self):
            raise OSError("disk gone")

    ref, _ = _child(ctx, parent[0], BadStop)
    ref.stop()
    assert _exit_of(parent[1]).reason.type == "OSError"


def test_a_failed_component_publishes_failed_with_the_reason(ctx, events, parent):
    ref, _ = _child(ctx, parent[0], Component)
    channel = ctx.layout.status("app.web", "s1")
    events.wait_for(lambda e: e.channel == channel and e.payload["state"] == "running")
    ref.tell("crash")
    _exit_of(parent[1])
    assert events.latest(channel).payload["state"] == "failed"
    assert events.latest(channel).payload["reason"] == "RuntimeError: boom"


def test_a_stopped_component_publishes_terminated(ctx, events, parent):
    ref, _ = _child(ctx, parent[0], Component)
    channel = ctx.layout.status("app.web", "s1")
    events.wait_for(lambda e: e.channel == channel and e.payload["state"] == "running")
    ref.stop(block=True, timeout=BOUND)
    _exit_of(parent[1])
    assert events.latest(channel).payload["state"] == "terminated"
    assert events.latest(channel).payload["reason"] == "shutdown"


def test_the_publisher_is_opened_and_closed_in_the_actor_thread(ctx, events, parent):
    seen = {}

    class Where(Actor):
        def on_start(self):
            seen["thread"] = threading.get_ident()
            seen["publisher"] = self.publisher

    ref, _ = _child(ctx, parent[0], Where)
    _ = ref.stop(block=True, timeout=BOUND)
    _exit_of(parent[1])
    (publisher,) = events.publishers
    assert publisher is seen["publisher"] and publisher.thread == seen["thread"]
    assert publisher.closed and str(publisher.sender) == "app.web/s1"


def test_an_actor_without_publishers_publishes_nothing_and_still_works(ctx, parent):
    from dataclasses import replace

    quiet = replace(ctx, publishers=None)
    ref, _ = _child(quiet, parent[0], Component)
    wait_for(lambda: ref.proxy().state.get(timeout=BOUND) == "running", BOUND)


def test_kill_skips_on_stop_and_reports_killed(ctx, parent, gates):
    journal = Journal()
    ref, _ = _child(ctx, parent[0], journal=journal, stop_gate=gates())
    wait_for(lambda: journal.paths("start"), BOUND)
    kill(ref)
    assert _exit_of(parent[1]).reason == KILLED
    assert journal.items == [("start", "/s1/app/web")]
    kill(ref)  # a dead actor is ignored


def test_the_actor_registers_its_path_while_it_lives(ctx, registry, parent):
    ref, origin = _child(ctx, parent[0])
    assert origin.lifeline.wait_started(BOUND) is True
    assert registry.get("/s1/app/web") is ref
    ref.stop(block=True, timeout=BOUND)
    origin.lifeline.wait_exited(BOUND)
    assert registry.get("/s1/app/web") is None
    assert ref not in pykka.ActorRegistry.get_all()


def test_a_second_actor_at_a_taken_path_fails_to_start(ctx, parent):
    first, _ = _child(ctx, parent[0])
    wait_for(lambda: ctx.registry.get("/s1/app/web") is first, BOUND)
    second, origin = _child(ctx, parent[0])
    reason = origin.lifeline.wait_exited(BOUND)
    assert reason.type == "DsmtError" and "already registered" in reason.message
    assert ctx.registry.get("/s1/app/web") is first


def test_status_detail_cannot_overwrite_the_fixed_fields(ctx, parent):
    ref, _ = _child(ctx, parent[0], Component)
    wait_for(lambda: ref.proxy().state.get(timeout=BOUND) == "running", BOUND)
    with pytest.raises(ValueError):
        ref.proxy().change_state("requested", state="x").get(timeout=BOUND)


# --- Registry -------------------------------------------------------------------


def test_registry_lists_paths_under_a_prefix_on_whole_elements():
    registry = Registry()
    refs = {p: object() for p in ("/s1", "/s1/app", "/s1/app/web/0", "/s1/apps", "/s2")}
    for path, ref in refs.items():
        registry.register(path, ref)
    assert list(registry.list("/s1/app")) == ["/s1/app", "/s1/app/web/0"]
    assert list(registry.list("/s1/app/")) == ["/s1/app", "/s1/app/web/0"]
    assert len(registry.list("/")) == 5 and len(registry) == 5


def test_registry_refuses_a_second_holder_and_ignores_a_stale_unregister():
    registry = Registry()
    old, new = object(), object()
    registry.register("/s1/a", old)
    registry.register("/s1/a", old)  # idempotent for the same holder
    with pytest.raises(DsmtError):
        registry.register("/s1/a", new)
    assert registry.unregister("/s1/a", old)
    registry.register("/s1/a", new)
    assert not registry.unregister("/s1/a", old)
    assert registry.get("/s1/a") is new


# --- testing helpers ----------------------------------------------------------------


def test_recording_publishers_stamp_a_rising_sequence_per_sender_from_many_threads():
    from dsmt.event import Address

    events = RecordingPublishers()
    publishers = [events(Address("c", str(n))) for n in range(4)]

    def burst(publisher):
        for _ in range(250):
            publisher.publish("/a/", "t", {})

    threads = [threading.Thread(target=burst, args=(p,)) for p in publishers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND)
    assert len(events.events) == 1000
    for publisher in publishers:
        seqs = [e.seq for e in events.events if e.sender == publisher.sender]
        assert seqs == list(range(1, 251))
    publishers[0].close()
    with pytest.raises(RuntimeError):
        publishers[0].publish("/a/", "t", {})


def test_recording_publishers_wait_for_is_bounded():
    with pytest.raises(WaitTimeout):
        RecordingPublishers().wait_for(lambda e: True, timeout=0.05)


def test_stop_all_stops_a_whole_tree_parents_first(ctx, journal, registry):
    from dsmt.childspec import ChildSpec
    from dsmt.supervisor import Supervisor
    from tests.dsmt.conftest import spec

    inner = ChildSpec("app", Supervisor, {"children": [spec("w", journal)]})
    origin = Origin.root(ctx)
    Supervisor.start(origin, [inner, spec("x", journal)])
    wait_for(lambda: len(registry) == 4, BOUND)
    stop_all(registry)
    assert len(registry) == 0
    assert journal.paths("start") == ["/s1/app/w", "/s1/x"]
    assert journal.paths("stop") == ["/s1/x", "/s1/app/w"]  # no restart during cleanup
