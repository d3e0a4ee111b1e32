"""The drain of a deselect as a state machine: the coordinator's part, its seams faked.

The host stands in for the coordinator (its quarantine and world view are
the real ones, its clock a FakeClock); the peers' heartbeats are fed to the
world view by hand, and the container manager records the ``deselect()``
asked of it. The whole
path on real nodes is tests/e2e/test_deselect.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from actors.coordinator.drain import DRAINING, Draining
from actors.coordinator.quarantine import Quarantine
from actors.world import WorldView
from actors.messages import Drain, Undrain
from actors.placement import Placed
from dsmt.states import DESELECTED, FAILED
from dsmt.testing import FakeClock


class Container:
    def __init__(self) -> None:
        self.deselects = 0

    def proxy(self):
        return self

    def deselect(self):
        self.deselects += 1


class Host(Draining):
    """What Draining uses of the coordinator; ``workspace`` keeps the drain (None: not kept)."""

    def __init__(self, workspace=None, clock=None) -> None:
        self.path = "/s1/coordinator"
        self.container_path = "/s1/container-mgr/container"
        self.container = Container()
        clock = clock or FakeClock()
        registry = {self.container_path: self.container}
        self.ctx = SimpleNamespace(clock=clock, sliver="s1", registry=registry)
        self.quarantine = Quarantine(clock)
        self.world = WorldView(clock, own="s1")
        self.plans = SimpleNamespace(workspace=workspace)
        self._started = clock.monotonic() - 10.0  # settled long ago
        self.share = {"web": 1}
        # placement once s1 is out: s2 runs the instance
        self.assignment = {"web": Placed("web", 1, {"s2": 1})}
        self.replies: list[tuple] = []
        self.changes = 0

    @property
    def settled(self) -> bool:  # the coordinator's, with settle = 5 s
        return self.ctx.clock.monotonic() - self._started >= 5.0

    def beat(self, sliver: str, services: dict, ready: dict | None = None) -> None:
        """A heartbeat of ``sliver``; without ``ready``, one of an older DSMT."""
        payload = {"sliver": sliver, "services": services}
        if ready is not None:
            payload["ready"] = ready
        self.world.beat(sliver, payload)

    def _reply(self, command, request, outcome, reason, result) -> None:
        self.replies.append((command, request, outcome, reason, result))

    def _quarantine_changed(self) -> None:
        self.changes += 1

    def publish_status_detail(self) -> None:
        pass


def test_the_share_keeps_running_until_the_peers_run_it_then_the_container_deselects():
    host = Host()
    host._drain(Drain(60.0, "r1"))
    assert host.quarantine.reason() == DRAINING and host.changes == 1
    assert host._held("web", 0), "the app is not told its lowered share while draining"
    assert host.container.deselects == 0
    host.beat("s2", services={"web": 0}, ready={"web": 0})
    host._drain_step()
    assert host.container.deselects == 0, "s2 does not run it yet"
    host.ctx.clock.advance(2.5)
    host.beat("s2", services={"web": 1}, ready={"web": 1})
    host._drain_step()
    assert host.container.deselects == 1 and not host._held("web", 0)
    host._drain_step()
    assert host.container.deselects == 1, "asked once"
    host._drain_ended(DESELECTED, "deselected")
    assert host.replies == [("deselect", "r1", "done", None,
                             {"state": DESELECTED, "drained": True, "seconds": 2.5})]
    assert host._drain_detail() is None


def test_past_its_timeout_a_drain_deselects_anyway_and_says_it_did_not_drain():
    host = Host()
    host._drain(Drain(10.0, "r1"))
    host.ctx.clock.advance(9.9)
    host._drain_step()
    assert host.container.deselects == 0
    host.ctx.clock.advance(0.2)
    host._drain_step()
    assert host.container.deselects == 1
    host._drain_ended(DESELECTED, None)
    assert host.replies[-1][2:4] == ("done", None) and host.replies[-1][4]["drained"] is False


def test_a_replacement_that_runs_but_does_not_pass_its_health_check_keeps_the_drain_waiting():
    host = Host()
    host._drain(Drain(60.0, "r1"))
    host.beat("s2", services={"web": 1}, ready={"web": 0})
    host._drain_step()
    assert host.container.deselects == 0, "s2 runs it but it is not ready"
    host.ctx.clock.advance(60)
    host._drain_step()
    assert host.container.deselects == 1, "the timeout still ends it"
    host._drain_ended(DESELECTED, "deselected")
    assert host.replies[-1][4]["drained"] is False


def test_a_peer_whose_beats_say_nothing_of_readiness_counts_what_it_runs():
    host = Host()
    host._drain(Drain(60.0, "r1"))
    host.beat("s2", services={"web": 1})
    host._drain_step()
    assert host.container.deselects == 1


def test_a_timeout_of_zero_deselects_at_once():
    host = Host()
    host._drain(Drain(0.0, "r1"))
    assert host.container.deselects == 1


def test_a_select_during_the_drain_cancels_it_and_nothing_stops():
    host = Host()
    host._drain(Drain(60.0, "r1"))
    host._undrain(Undrain("r2"))
    assert host.quarantine.reason() is None and host.container.deselects == 0
    assert host.replies == [("deselect", "r1", "failed", "cancelled by select", None)]
    host.beat("s2", services={"web": 1}, ready={"web": 1})
    host._drain_step()
    assert host.container.deselects == 0


def test_a_container_that_fails_to_deselect_ends_the_drain_with_its_reason():
    host = Host()
    host.assignment = {}  # nothing to move: stops at once
    host._drain(Drain(60.0, "r1"))
    assert host.container.deselects == 1
    host._drain_ended(FAILED, "deselect: stopping the application failed: timeout")
    assert host.replies == [("deselect", "r1", "failed",
                             "deselect: stopping the application failed: timeout", None)]
    assert host._drain_detail() is None


def test_a_second_deselect_while_draining_or_once_deselected_is_answered_at_once():
    host = Host()
    host._drain(Drain(60.0, "r1"))
    host._drain(Drain(60.0, "r2"))
    assert host.replies[-1][1:4] == ("r2", "failed",
                                     "a deselect of this sliver is already under way")
    host.quarantine.release()
    host.quarantine.hold(DESELECTED)
    host._draining = None
    host._drain(Drain(60.0, "r3"))
    assert host.replies[-1] == ("deselect", "r3", "done", None,
                                {"state": DESELECTED, "already": True})


def test_a_drain_survives_a_restart_with_its_deadline_and_its_request(tmp_path):
    clock = FakeClock()
    first = Host(tmp_path, clock)
    first._drain(Drain(60.0, "r1"))
    assert (tmp_path / "drain.json").exists()
    clock.advance(20)  # the coordinator (or the node) restarts
    again = Host(tmp_path, clock)
    again._resume_drain()
    assert again.quarantine.reason() == DRAINING, "still out of placement before its first beat"
    assert again._drain_detail() == {"for": 20.0, "stopping": False, "timeout_in": 40.0}
    again._drain_step()
    assert again.container.deselects == 0, "the peers do not serve the share yet"
    again.beat("s2", services={"web": 1}, ready={"web": 1})
    again._drain_step()
    assert again.container.deselects == 1
    clock.advance(1)
    again._drain_ended(DESELECTED, "deselected")
    assert again.replies == [("deselect", "r1", "done", None,
                              {"state": DESELECTED, "drained": True, "seconds": 21.0})]
    assert not (tmp_path / "drain.json").exists()
    nothing = Host(tmp_path, clock)
    nothing._resume_drain()
    assert nothing.quarantine.reason() is None and nothing._drain_detail() is None


def test_a_resumed_drain_whose_container_was_deselected_meanwhile_ends_with_its_reply(tmp_path):
    clock = FakeClock()
    first = Host(tmp_path, clock)
    first._drain(Drain(60.0, "r1"))
    first.beat("s2", services={"web": 1}, ready={"web": 1})
    first._drain_step()  # asked the container manager, then stopped before it answered
    again = Host(tmp_path, clock)
    again._resume_drain()
    again._drain_ended(DESELECTED, "deselected")  # what it says when asked at start
    assert again.container.deselects == 0, "not asked twice"
    assert again.replies == [("deselect", "r1", "done", None,
                              {"state": DESELECTED, "drained": True, "seconds": 0.0})]
    assert not (tmp_path / "drain.json").exists()


@pytest.mark.parametrize("text", [
    "{not json", "[]", '{"request": "r1"}',
    '{"request": "r1", "started": "then", "deadline": 1.0, "stopping": false, "drained": false}',
    '{"request": 7, "started": 1.0, "deadline": 1.0, "stopping": false, "drained": false}',
    '{"request": null, "started": 1.0, "deadline": 1.0, "stopping": 0, "drained": false}'])
def test_an_unreadable_drain_file_is_ignored_and_the_sliver_back_in_placement(tmp_path, text):
    (tmp_path / "drain.json").write_text(text)
    host = Host(tmp_path)
    host._resume_drain()
    assert host.quarantine.reason() is None and host._drain_detail() is None
    assert not (tmp_path / "drain.json").exists()


def test_a_cancelled_drain_leaves_nothing_to_resume(tmp_path):
    host = Host(tmp_path)
    host._drain(Drain(60.0, "r1"))
    host._undrain(Undrain("r2"))
    assert not (tmp_path / "drain.json").exists()


def test_a_resumed_drain_waits_for_the_view_to_settle_before_judging_the_peers(tmp_path):
    clock = FakeClock()
    Host(tmp_path, clock)._drain(Drain(60.0, "r1"))
    again = Host(tmp_path, clock)
    again._started = clock.monotonic()  # just restarted: no peer heard yet
    again.assignment = {}  # placement over a view of nobody
    again._resume_drain()
    again._drain_step()
    assert again.container.deselects == 0, "nobody heard is not 'the peers serve it'"
    clock.advance(5.0)
    again._drain_step()
    assert again.container.deselects == 1
