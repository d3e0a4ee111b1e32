"""Process actors with real processes under a real OTP supervisor.

The clock is the real one (processes live in real time); every wait is
bounded, and the ``reaper`` fixture fails a test that leaves a process behind.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading

import pykka
import pytest

from actors.process import (
    ALWAYS,
    NEVER,
    Command,
    HealthPolicy,
    HealthSpec,
    ProcessPolicy,
    TcpCheck,
    spawn,
)
from actors.process.actor import process_spec
from actors.process.testing import GroupReaper
from dsmt.actor import Origin
from dsmt.channels import Layout
from dsmt.childspec import BRUTAL_KILL, TEMPORARY, Backoff
from dsmt.context import Context
from dsmt.registry import Registry
from dsmt.supervisor import Supervisor
from dsmt.testing import RecordingPublishers, stop_all, wait_for

pytestmark = pytest.mark.timeout(30)

BOUND = 5.0
PAUSE = Command((sys.executable, "-c", "import signal; signal.pause()"))
FAST = Backoff(min=0.01, max=0.01, factor=1.0, jitter=0.0, reset_after=None)


class Tracking(RecordingPublishers):
    """Records events and tracks the process group of every pid a status event names."""

    def __init__(self, reaper: GroupReaper) -> None:
        super().__init__()
        self.reaper = reaper

    def _record(self, event):
        pid = event.payload.get("pid") if isinstance(event.payload, dict) else None
        if pid:
            self.reaper.track(pid)
        super()._record(event)


@pytest.fixture
def reaper():
    reaper = GroupReaper()
    yield reaper
    try:
        wait_for(lambda: not reaper.survivors(), 2.0,
                 lambda: f"no process left behind, but {reaper.survivors()} still run")
    finally:
        reaper.kill_all()


@pytest.fixture
def events(reaper):
    return Tracking(reaper)


@pytest.fixture
def ctx(events):
    context = Context(sliver="s1", layout=Layout("demo"), hostname="host-1",
                      publishers=events, registry=Registry())
    yield context
    try:
        stop_all(context.registry, timeout=BOUND * 2)
    finally:
        pykka.ActorRegistry.stop_all(block=True, timeout=BOUND)


def status(ctx, child="web"):
    return ctx.layout.status(f"{child}", "s1")


def start_tree(ctx, specs, **flags):
    origin = Origin.root(ctx)
    ref = Supervisor.start(origin, specs, **flags)
    assert origin.lifeline.wait_started(BOUND) is True
    return ref, origin


def actor_of(ref, child="web"):
    return next(info.ref for info in ref.proxy().which_children().get(timeout=BOUND)
                if info.id == child)


def pid_of(actor):
    return actor.proxy().snapshot().get(timeout=BOUND)["pid"]


def test_a_killed_process_is_restarted_with_a_new_pid_within_milliseconds(ctx, events):
    policy = ProcessPolicy(startsecs=0, autorestart=ALWAYS)
    ref, _ = start_tree(ctx, [process_spec("web", PAUSE, policy)])
    actor = actor_of(ref)
    old = wait_for(lambda: pid_of(actor), BOUND, "a pid")
    os.kill(old, signal.SIGKILL)
    new = wait_for(lambda: (pid_of(actor) or old) != old and pid_of(actor), BOUND, "a new pid")
    assert new != old and actor_of(ref) is actor  # restarted inside the same actor
    states = events.states(status(ctx))
    assert states == ["starting", "running", "exited", "starting", "running"]
    exited = [e for e in events.on(status(ctx)) if e.payload["state"] == "exited"][0]
    assert exited.payload["reason"] == "killed by SIGKILL" and exited.payload["pid"] is None
    restarted = events.on(status(ctx))[3].payload
    assert restarted["pid"] == new and restarted["restarts"] == 1


def test_terminating_the_child_stops_its_process_group(ctx, events):
    ref, _ = start_tree(ctx, [process_spec("web", PAUSE, ProcessPolicy(startsecs=0))])
    pid = wait_for(lambda: pid_of(actor_of(ref)), BOUND)
    ref.proxy().terminate_child("web").get(timeout=BOUND)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: on_stop waited for the exit
    assert events.states(status(ctx))[-2:] == ["stopping", "stopped"]


def test_a_process_that_keeps_failing_to_start_ends_its_actor_with_an_error(ctx, events):
    failing = Command((sys.executable, "-c", "raise SystemExit(4)"))
    policy = ProcessPolicy(startsecs=1.0, startretries=1, backoff=FAST)
    ref, _ = start_tree(ctx, [process_spec("web", failing, policy, restart=TEMPORARY)])
    wait_for(lambda: not ref.proxy().which_children().get(timeout=BOUND), BOUND,
             "the child to be gone")
    # Then the supervisor publishes its own record of the deleted temporary child.
    assert events.states(status(ctx))[:4] == ["starting", "backoff", "starting", "fatal"]
    fatal = [e for e in events.on(status(ctx)) if e.payload["state"] == "fatal"][0]
    assert "exit 4" in fatal.payload["reason"] and "gave up after 2" in fatal.payload["reason"]


def test_with_autorestart_never_the_supervisor_restarts_a_new_actor(ctx, events):
    policy = ProcessPolicy(startsecs=0, autorestart=NEVER)
    ref, _ = start_tree(ctx, [process_spec("web", PAUSE, policy)], intensity=3)
    first = actor_of(ref)
    old = wait_for(lambda: pid_of(first), BOUND)
    os.kill(old, signal.SIGKILL)

    def replaced():
        actor = actor_of(ref)
        return actor is not None and actor is not first and actor.is_alive() and pid_of(actor)

    new = wait_for(replaced, BOUND, "a new actor with a new process")
    assert new != old


def test_an_agent_restart_re_adopts_the_journaled_process_instead_of_spawning(ctx, events, reaper):
    running = reaper.track(spawn(PAUSE))
    written = []
    spec = process_spec("web", PAUSE, ProcessPolicy(autorestart=ALWAYS, startsecs=0),
                        record=running.record, journal=lambda path, rec: written.append(rec))
    ref, _ = start_tree(ctx, [spec])
    actor = actor_of(ref)
    snap = actor.proxy().snapshot().get(timeout=BOUND)
    assert snap["pid"] == running.pid and snap["spawns"] == 0
    assert [e.payload["reason"] for e in events.on(status(ctx))] == ["adopted", "adopted"]
    assert written == [running.record]
    os.kill(running.pid, signal.SIGKILL)
    new = wait_for(lambda: (pid_of(actor) or running.pid) != running.pid and pid_of(actor),
                   BOUND, "the adopted process to be replaced")
    exited = [e for e in events.on(status(ctx)) if e.payload["state"] == "exited"][0]
    assert exited.payload["reason"] == "exited (status unknown: adopted process)"
    assert written[-1].pid == new


def test_a_stale_journal_record_starts_the_service_afresh(ctx, events, reaper):
    gone = spawn(Command((sys.executable, "-c", "pass")))
    gone.exited.result(BOUND)
    ref, _ = start_tree(ctx, [process_spec("web", PAUSE, ProcessPolicy(startsecs=0),
                                           record=gone.record)])
    pid = wait_for(lambda: pid_of(actor_of(ref)), BOUND)
    assert pid != gone.pid


def test_an_adopted_process_to_replace_is_stopped_and_a_fresh_one_journaled(ctx, events, reaper):
    old = reaper.track(spawn(PAUSE))
    written = []
    spec = process_spec("web", PAUSE, ProcessPolicy(autorestart=NEVER, startsecs=0),
                        record=old.record, replace="journaled version 0.9 is not the active 1.0",
                        journal=lambda path, rec: written.append(rec))
    ref, _ = start_tree(ctx, [spec])
    actor = actor_of(ref)
    assert old.exited.result(BOUND).signal == signal.SIGTERM
    new = wait_for(lambda: (pid_of(actor) or old.pid) != old.pid and pid_of(actor), BOUND,
                   "a fresh process")
    states = [(e.payload["state"], e.payload["reason"]) for e in events.on(status(ctx))]
    assert states[:4] == [("starting", "adopted"), ("running", "adopted"),
                          ("stopping", "journaled version 0.9 is not the active 1.0"),
                          ("stopped", "exited (status unknown: adopted process)")]
    # The old entry stays journaled until it is gone, then the successor's replaces it.
    assert [None if r is None else r.pid for r in written] == [None, new]


def test_a_brutal_kill_of_the_actor_still_kills_its_process_group(ctx, events):
    ref, _ = start_tree(ctx, [process_spec("web", PAUSE, ProcessPolicy(startsecs=0),
                                           shutdown=BRUTAL_KILL)])
    pid = wait_for(lambda: pid_of(actor_of(ref)), BOUND)
    ref.proxy().terminate_child("web").get(timeout=BOUND)

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, BOUND, "the process to be killed and reaped")


SERVER = '''
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
while True:
    s.accept()[0].close()
'''


def test_a_passing_tcp_health_check_makes_the_process_running_before_startsecs(ctx, events):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    health = HealthSpec(TcpCheck(port), HealthPolicy(interval=0.02, timeout=1.0, threshold=3))
    policy = ProcessPolicy(startsecs=60, health=health)
    command = Command((sys.executable, "-c", SERVER, str(port)))
    ref, _ = start_tree(ctx, [process_spec("web", command, policy)])
    running = events.wait_for(lambda e: e.channel == status(ctx)
                              and e.payload["state"] == "running", BOUND)
    assert running.payload["reason"].startswith(f"health check passed: tcp 127.0.0.1:{port}")


def test_inspect_shows_the_process(ctx):
    ref, _ = start_tree(ctx, [process_spec("web", PAUSE, ProcessPolicy(startsecs=0))])
    snap = actor_of(ref).proxy().inspect().get(timeout=BOUND)
    assert snap["state"] == "running" and snap["process"]["pid"] == snap["detail"]["pid"]
    assert snap["config"]["argv"] == list(PAUSE.argv)
    assert threading.active_count() < 100
