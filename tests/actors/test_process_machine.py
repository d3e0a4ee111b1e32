"""The process state machine, driven by hand: FakeOs for processes, FakeClock for time.

Each test is one row (or a path through rows) of the table in
``actors/process/machine.py``; none starts a process or waits on real time.
"""

from __future__ import annotations

import signal

import pytest

from actors.process import (
    ALWAYS,
    NEVER,
    UNEXPECTED,
    Command,
    HealthPolicy,
    HealthSpec,
    ProcessMachine,
    ProcessPolicy,
    ProcessRecord,
    TcpCheck,
)
from actors.process.testing import FakeOs
from dsmt.childspec import Backoff
from dsmt.errors import TransitionError
from dsmt.testing import FakeClock

pytestmark = pytest.mark.timeout(10)

NO_JITTER = Backoff(min=1.0, max=8.0, factor=2.0, jitter=0.0, reset_after=None)
HEALTH = HealthSpec(TcpCheck(8080), HealthPolicy(interval=5, timeout=1, threshold=2), delay=0.5)


class Rig:
    def __init__(self, post=None, **policy):
        policy.setdefault("backoff", NO_JITTER)
        extra = {} if post is None else {"post": post}
        self.os = FakeOs()
        self.clock = FakeClock()
        self.moves: list[tuple[str, str | None, dict]] = []
        self.readiness: list[bool] = []  # what on_ready said, between moves
        self.machine = ProcessMachine(Command(("app",)), ProcessPolicy(**policy), os=self.os,
                                      clock=self.clock,
                                      on_change=lambda *move: self.moves.append(move),
                                      on_ready=self.readiness.append, **extra)

    @property
    def states(self) -> list[str]:
        return [state for state, _, _ in self.moves]

    @property
    def reasons(self) -> list[str | None]:
        return [reason for _, reason, _ in self.moves]

    def running(self) -> Rig:
        self.machine.start()
        self.clock.advance(self.machine.policy.startsecs)
        assert self.machine.state == "running"
        self.moves.clear()
        return self


def test_a_process_is_running_after_startsecs():
    rig = Rig(startsecs=1.0)
    rig.machine.start()
    assert rig.states == ["starting"] and rig.moves[0][2]["pid"] == 1000
    rig.clock.advance(0.99)
    assert rig.machine.state == "starting"
    rig.clock.advance(0.01)
    assert rig.states == ["starting", "running"]


def test_startsecs_zero_means_running_at_spawn():
    rig = Rig(startsecs=0)
    rig.machine.start()
    assert rig.states == ["starting", "running"]


def test_a_passing_health_check_makes_it_running_before_startsecs():
    rig = Rig(startsecs=30, health=HEALTH)
    rig.machine.start()
    monitor = rig.os.monitors[-1]
    assert monitor.started == 0.5
    monitor.report(False)  # failures while starting do not count
    assert rig.machine.state == "starting"
    monitor.report(True, "accepted")
    assert rig.states == ["starting", "running"]
    assert rig.reasons[-1] == "health check passed: accepted"
    rig.clock.advance(30)
    assert rig.states == ["starting", "running"]  # the startsecs timer was cancelled


def test_without_a_health_check_a_running_process_is_ready():
    rig = Rig(startsecs=1)
    rig.machine.start()
    assert rig.moves[-1][2]["ready"] is False
    rig.clock.advance(1)
    assert rig.moves[-1][2]["ready"] is True and rig.machine.ready
    rig.os.exit(code=0)
    assert rig.states[-1] == "exited" and rig.moves[-1][2]["ready"] is False


def test_with_a_health_check_a_process_running_after_startsecs_is_ready_at_its_first_pass():
    rig = Rig(startsecs=1, health=HEALTH)
    rig.machine.start()
    rig.clock.advance(1)
    assert rig.states == ["starting", "running"] and rig.moves[-1][2]["ready"] is False
    rig.os.monitors[-1].report(False)
    assert rig.readiness == [] and not rig.machine.ready
    rig.os.monitors[-1].report(True)
    assert rig.readiness == [True] and rig.states == ["starting", "running"]
    assert rig.machine.snapshot()["ready"] is True


def test_a_process_that_passes_while_starting_is_running_and_ready_in_one_move():
    rig = Rig(startsecs=30, health=HEALTH)
    rig.machine.start()
    rig.os.monitors[-1].report(True)
    assert rig.moves[-1][0] == "running" and rig.moves[-1][2]["ready"] is True
    assert rig.readiness == []


def test_turning_unhealthy_without_restart_unhealthy_keeps_it_running_but_not_ready():
    rig = Rig(health=HEALTH, restart_unhealthy=False)
    rig.machine.start()
    monitor = rig.os.monitors[-1]
    monitor.report(True)
    rig.moves.clear()
    monitor.report(False)
    assert rig.readiness == [], "one failure is below the threshold"
    monitor.report(False)
    assert rig.readiness == [False] and rig.machine.state == "running" and rig.moves == []
    monitor.report(True)
    assert rig.readiness == [False, True]


def test_exits_while_starting_back_off_exponentially_then_give_up_in_fatal():
    rig = Rig(startsecs=1, startretries=3)
    rig.machine.start()
    for delay in (1.0, 2.0, 4.0):
        rig.os.exit(code=1)
        assert rig.machine.state == "backoff"
        assert rig.moves[-1][2]["retry_in"] == delay
        assert rig.machine.snapshot()["next_attempt_in"] == delay
        rig.clock.advance(delay - 0.01)
        assert rig.machine.state == "backoff"
        rig.clock.advance(0.01)
        assert rig.machine.state == "starting"
    rig.os.exit(code=1)
    assert rig.machine.state == "fatal"
    assert rig.reasons[-1] == "exited while starting: exit 1; gave up after 4 failed starts"
    assert len(rig.os.spawned) == 4
    assert rig.states == ["starting", "backoff"] * 3 + ["starting", "fatal"]


def test_a_spawn_error_counts_as_a_failed_start():
    rig = Rig(startretries=1)
    rig.os.spawn_errors = [FileNotFoundError(2, "No such file", "app")] * 2
    rig.machine.start()
    assert rig.states == ["starting", "backoff"]
    assert rig.reasons[-1].startswith("spawn failed: ")
    rig.clock.advance(1.0)
    assert rig.states == ["starting", "backoff", "starting", "fatal"]


def test_reaching_running_resets_the_failed_start_count():
    rig = Rig(startsecs=1, startretries=1)
    rig.machine.start()
    rig.os.exit(code=1)
    rig.clock.advance(1.0)  # retry
    rig.clock.advance(1.0)  # up for startsecs
    assert rig.machine.state == "running" and rig.machine.attempt == 0


@pytest.mark.parametrize("autorestart,code,sig,restarted", [
    (ALWAYS, 0, None, True),
    (ALWAYS, 3, None, True),
    (UNEXPECTED, 0, None, False),
    (UNEXPECTED, 3, None, True),
    (UNEXPECTED, None, signal.SIGKILL, True),
    (NEVER, 3, None, False),
    (NEVER, None, signal.SIGKILL, False),
])
def test_an_exit_from_running_restarts_at_once_per_autorestart(autorestart, code, sig, restarted):
    rig = Rig(autorestart=autorestart).running()
    old = rig.os.last
    rig.os.exit(code=code, signal=sig)
    if restarted:
        assert rig.states == ["exited", "starting"]
        assert rig.os.last is not old and rig.machine.restarts == 1
        assert rig.moves[1][2]["pid"] == rig.os.last.pid
    else:
        assert rig.states == ["exited"] and rig.os.last is old
    assert rig.moves[0][2]["exit"] == str(old.exited.result())
    assert (old.pid, signal.SIGKILL) in rig.os.signals  # leftovers of the group


def test_an_adopted_process_exit_with_unknown_status_counts_as_unexpected():
    rig = Rig(autorestart=UNEXPECTED)
    rig.os.live[77] = ProcessRecord(77, 5.0, 77)
    assert rig.machine.adopt(ProcessRecord(77, 5.0, 77))
    assert rig.states == ["starting", "running"] and rig.reasons == ["adopted", "adopted"]
    rig.os.exit(code=None)
    assert rig.states[-2:] == ["exited", "starting"]


def test_an_adopted_process_says_so_in_every_move_while_it_lives():
    rig = Rig(autorestart=ALWAYS)
    rig.os.live[77] = ProcessRecord(77, 5.0, 77)
    rig.machine.adopt(ProcessRecord(77, 5.0, 77))
    assert [d.get("adopted") for _, _, d in rig.moves] == [True, True]
    assert rig.machine.snapshot()["adopted"] is True
    rig.os.exit(code=None)
    assert "adopted" not in rig.moves[-1][2] and rig.machine.snapshot()["adopted"] is False


def test_an_adopted_process_to_replace_is_stopped_then_a_fresh_one_is_started():
    rig = Rig(autorestart=NEVER, startsecs=0, stopwaitsecs=5)
    rig.os.live[77] = ProcessRecord(77, 5.0, 77)
    assert rig.machine.adopt(ProcessRecord(77, 5.0, 77), replace="journaled version 0.9")
    assert rig.states == ["starting", "running", "stopping"]
    assert rig.reasons[-1] == "journaled version 0.9"
    assert rig.os.signals == [(77, signal.SIGTERM)] and len(rig.os.spawned) == 1
    rig.clock.advance(5)  # it ignores SIGTERM: SIGKILL after stopwaitsecs
    assert rig.os.signals[-1] == (77, signal.SIGKILL)
    rig.os.exit(rig.os.spawned[0], signal=signal.SIGKILL)
    assert rig.states[-3:] == ["stopped", "starting", "running"]
    assert rig.machine.handle is rig.os.last and rig.machine.handle.pid != 77


def test_a_process_to_replace_that_is_already_gone_is_refused_like_any_stale_record():
    rig = Rig()
    assert not rig.machine.adopt(ProcessRecord(77, 5.0, 77), replace="journaled version 0.9")
    assert rig.machine.state == "stopped" and rig.moves == [] and rig.os.signals == []


def test_adoption_of_a_reused_pid_is_refused_and_changes_nothing():
    rig = Rig()
    rig.os.live[77] = ProcessRecord(77, 5.0, 77)
    assert not rig.machine.adopt(ProcessRecord(77, 6.0, 77))
    assert rig.machine.state == "stopped" and rig.moves == []


def test_stop_sends_the_stop_signal_then_sigkill_after_stopwaitsecs():
    rig = Rig(stopsignal=signal.SIGINT, stopwaitsecs=10).running()
    pid = rig.os.last.pid
    done = rig.machine.stop()
    assert rig.states == ["stopping"] and rig.os.signals == [(pid, signal.SIGINT)]
    rig.clock.advance(9.99)
    assert rig.os.signals == [(pid, signal.SIGINT)]
    rig.clock.advance(0.01)
    assert rig.os.signals == [(pid, signal.SIGINT), (pid, signal.SIGKILL)]
    assert not done.done()
    rig.os.exit(signal=signal.SIGKILL)
    assert rig.states == ["stopping", "stopped"] and done.result(0) is None


def test_a_process_that_exits_on_the_stop_signal_is_not_killed_by_the_timer():
    rig = Rig().running()
    rig.machine.stop()
    rig.os.exit(signal=signal.SIGTERM)
    rig.clock.advance(60)
    kills = [s for _, s in rig.os.signals if s == signal.SIGKILL]
    assert kills == [signal.SIGKILL]  # only the leftovers sweep at exit
    assert rig.machine.state == "stopped"


def test_stop_while_starting_is_a_stop_not_a_failed_start():
    rig = Rig(startsecs=5)
    rig.machine.start()
    rig.machine.stop()
    rig.os.exit(signal=signal.SIGTERM)
    rig.clock.advance(10)
    assert rig.states == ["starting", "stopping", "stopped"]


@pytest.mark.parametrize("fail_to", ["backoff", "fatal", "exited"])
def test_stop_without_a_process_goes_straight_to_stopped(fail_to):
    rig = Rig(startretries=0 if fail_to == "fatal" else 3, autorestart=NEVER)
    rig.machine.start()
    if fail_to == "exited":
        rig.clock.advance(1)
    rig.os.exit(code=1)
    assert rig.machine.state == fail_to
    assert rig.machine.stop().result(0) is None
    assert rig.machine.state == "stopped"
    rig.clock.advance(100)
    assert rig.machine.state == "stopped" and len(rig.os.spawned) == 1


def test_stop_when_stopped_resolves_at_once():
    rig = Rig()
    assert rig.machine.stop().done() and rig.moves == []


def test_turning_unhealthy_while_running_stops_and_restarts_the_process():
    rig = Rig(health=HEALTH, autorestart=NEVER)
    rig.machine.start()
    rig.os.monitors[-1].report(True)
    rig.moves.clear()
    old = rig.os.last
    monitor = rig.os.monitors[-1]
    monitor.report(False)
    assert rig.machine.state == "running"
    monitor.report(False, "refused")
    assert rig.states == ["stopping"] and monitor.stopped
    assert rig.reasons == ["unhealthy: refused"]
    rig.os.exit(signal=signal.SIGTERM)
    assert rig.states == ["stopping", "exited", "starting"]
    assert rig.reasons[1] == "unhealthy: refused" and rig.os.last is not old


def test_late_events_of_a_previous_process_are_ignored():
    rig = Rig(health=HEALTH, autorestart=ALWAYS).running()
    first, first_monitor = rig.os.last, rig.os.monitors[-1]
    rig.os.exit(first, code=1)
    rig.moves.clear()
    first_monitor.report(False)
    first_monitor.report(False)
    assert rig.moves == [] and rig.machine.state == "starting"


def test_start_cuts_a_backoff_short():
    rig = Rig()
    rig.machine.start()
    rig.os.exit(code=1)
    rig.machine.start()
    assert rig.states == ["starting", "backoff", "starting"] and rig.machine.attempt == 1
    rig.clock.advance(1.0)  # the cancelled backoff timer does not spawn again
    assert len(rig.os.spawned) == 2


def test_start_after_fatal_begins_a_fresh_series_of_attempts():
    rig = Rig(startretries=0)
    rig.machine.start()
    rig.os.exit(code=1)
    assert rig.machine.state == "fatal"
    rig.machine.start()
    assert rig.machine.state == "starting" and rig.machine.attempt == 0


def test_restart_stops_to_stopped_then_starts_again():
    rig = Rig().running()
    rig.machine.restart()
    rig.os.exit(signal=signal.SIGTERM)
    assert rig.states == ["stopping", "stopped", "starting"]


def test_shutdown_waits_on_the_exit_itself_while_the_mailbox_is_not_served():
    mailbox = []  # an actor in on_stop serves no message: posted events just queue up
    rig = Rig(post=mailbox.append, stopwaitsecs=0.01, startsecs=0).running()
    pid = rig.os.last.pid
    rig.os.exit_on = {signal.SIGKILL}
    status = rig.machine.shutdown()
    assert status.signal == signal.SIGKILL and rig.machine.state == "stopped"
    assert rig.os.signals[:2] == [(pid, signal.SIGTERM), (pid, signal.SIGKILL)]
    for event in mailbox:  # the late exit notification is recognised as stale
        event()
    assert rig.states == ["stopping", "stopped"]


def test_shutdown_without_a_process_returns_none():
    rig = Rig()
    assert rig.machine.shutdown() is None


def test_the_machine_refuses_a_transition_outside_the_process_table():
    rig = Rig()
    with pytest.raises(TransitionError):
        rig.machine._move("running", None)
