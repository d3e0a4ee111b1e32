"""Signed commands through a real router to real `dsmt node` processes.

The operator is a PsEPR client on the router (a SliceView); it signs with the
slice key LocalSlice wrote into every node.toml. Forged and replayed commands
come back as public rejections on the reply channel, seen through the router
and printed by the real ``dsmt events`` command.
"""

from __future__ import annotations

from dsmt.testing import wait_for
from gateways.commands import CommandRequest, send_command
from gateways.view import SliceView

from tests.e2e.conftest import Watcher

BOUND = 30.0


def _answers(view: SliceView, key: bytes, sliver: str) -> bool:
    """True once an inspect reaches ``sliver`` and its reply comes back (a fresh command each try).

    A sliver's status reaches the router as soon as its bridge is connected,
    but a command reaches the sliver only once the bridge's import lease is
    granted; a command published before that is not delivered (PsEPR keeps
    nothing for absent leases), so the test waits for a full round trip.
    """
    try:
        reply = send_command(view, key, view.layout.slice, sliver, "inspect",
                             {"path": f"/{sliver}/commander"}, timeout=2.0)
    except TimeoutError:
        return False
    return reply["outcome"] == "done"


def _running(view: SliceView, sliver: str, component: str) -> bool:
    status = view.status(sliver, component)
    return status is not None and status.get("state") == "running"


def test_a_signed_restart_restarts_the_app_monitor_and_forged_or_replayed_ones_are_rejected(
        local_slice):
    slice_ = local_slice(slivers=2)
    slice_.start()
    layout = slice_.layout
    watcher = Watcher(slice_, layout.status("app-monitor", "s1"))
    commanders = Watcher(slice_, layout.status("commander", "s1"))
    view = SliceView([slice_.address], "dsmt", slice_.password, layout).start(BOUND)
    try:
        for sliver in ("s1", "s2"):
            wait_for(lambda: _running(view, sliver, "commander"), timeout=BOUND,
                     message=lambda: f"the commander of {sliver} running: {view.rows()}")
            wait_for(lambda: _answers(view, slice_.key, sliver), timeout=BOUND,
                     message=f"an inspect round trip to {sliver}")
        wait_for(lambda: watcher.on(layout.status("app-monitor", "s1")), timeout=BOUND,
                 message="a status of /s1/app-monitor through the router")
        first_epoch = max(e.epoch for e in watcher.on(layout.status("app-monitor", "s1")))
        wait_for(lambda: commanders.on(layout.status("commander", "s1")), timeout=BOUND,
                 message="a status of /s1/commander through the router")
        commander_epoch = max(e.epoch for e in commanders.on(layout.status("commander", "s1")))

        with CommandRequest(view.client, slice_.key, layout, "s1", "restart",
                            {"path": "/s1/app-monitor"}) as restart:
            restart.lease(BOUND)
            restart.send()
            reply = restart.reply(BOUND)
            assert (reply["outcome"], reply["sliver"]) == ("done", "s1"), reply
            wait_for(lambda: any(e.epoch > first_epoch and e.payload.get("state") == "running"
                                 for e in watcher.on(layout.status("app-monitor", "s1"))),
                     timeout=BOUND, message="a new /s1/app-monitor running")

            # The same signed payload again, as a new event: a replay, even though the
            # restart above restarted the commander too (rest_for_one). PsEPR keeps
            # nothing for absent subscribers, so replay only to the new commander.
            wait_for(lambda: any(e.epoch > commander_epoch and e.payload.get("state") == "running"
                                 for e in commanders.on(layout.status("commander", "s1"))),
                     timeout=BOUND, message="the restarted /s1/commander running")
            restart.send()
            replayed = restart.reply(BOUND)
            assert (replayed["outcome"], replayed["reason"]) == ("rejected", "replayed"), replayed

        forged = send_command(view, b"not the slice key".ljust(32, b"!"), layout.slice, "s1",
                              "restart", {"path": "/s1/app-monitor"}, timeout=BOUND)
        assert (forged["outcome"], forged["reason"]) == ("rejected", "forged"), forged

        inspected = send_command(view, slice_.key, layout.slice, "s2", "inspect",
                                 {"path": "/s2/commander"}, timeout=BOUND)
        assert inspected["outcome"] == "done" and inspected["sliver"] == "s2"
        assert inspected["result"]["key"]["loaded"] is True
        wait_for(lambda: (view.status("s1", "commander") or {}).get("rejected", 0) >= 1,
                 timeout=BOUND, message=lambda: f"{view.status('s1', 'commander')}")
    finally:
        view.close()
        watcher.close()
        commanders.close()


class _EventsCli:
    """The real ``dsmt events --follow --json`` as a subprocess; its lines, parsed, as they come."""

    def __init__(self, slice_, channel: str) -> None:
        import json
        import subprocess
        import sys
        import threading

        self.lines: list[dict] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dsmt.cli", "events", channel, "--follow", "--json",
             "--router", "{}:{}".format(*slice_.address),
             "--password-file", str(slice_.root / "slice.secret"), "--slice", slice_.slice],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def read() -> None:
            for line in self.process.stdout:
                self.lines.append(json.loads(line))

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.reader.join(10)


def test_dsmt_events_shows_the_rejection_of_a_forged_and_of_a_replayed_command(local_slice):
    from dsmt.event import RECORD, Address, Sequencer

    slice_ = local_slice(slivers=1)
    slice_.start()
    layout = slice_.layout
    replies = f"{layout.base}reply/"
    view = SliceView([slice_.address], "dsmt", slice_.password, layout).start(BOUND)
    events = _EventsCli(slice_, replies)
    try:
        wait_for(lambda: _answers(view, slice_.key, "s1"), timeout=BOUND,
                 message="an inspect round trip to s1")
        # Handshake: `dsmt events` prints nothing until its lease is granted; a marker
        # published until it shows up proves it is listening.
        marker = Sequencer(Address("test", "marker"))

        def listening() -> bool:
            view.client.publish(marker.make(f"{replies}marker/", RECORD, {"marker": True}))
            return view.wait(lambda v: any(e["payload"] == {"marker": True}
                                           for e in events.lines), 0.5)

        wait_for(listening, timeout=BOUND, message=lambda: f"dsmt events listening: "
                                                           f"{events.process.poll()}")

        forged = send_command(view, b"not the slice key".ljust(32, b"!"), layout.slice, "s1",
                              "inspect", {"path": "/s1/commander"}, timeout=BOUND)
        assert (forged["outcome"], forged["reason"]) == ("rejected", "forged"), forged
        with CommandRequest(view.client, slice_.key, layout, "s1", "inspect",
                            {"path": "/s1/commander"}) as inspect:
            inspect.lease(BOUND)
            inspect.send()
            assert inspect.reply(BOUND)["outcome"] == "done"
            inspect.send()  # the same signed command again: a replay

            def shown(reason: str) -> dict | None:
                return next((e for e in events.lines
                             if e["channel"].startswith(replies) and isinstance(e["payload"], dict)
                             and e["payload"].get("outcome") == "rejected"
                             and e["payload"].get("reason") == reason), None)

            replayed = wait_for(lambda: shown("replayed"), timeout=BOUND,
                                message=lambda: f"a replay rejection in dsmt events: "
                                                f"{events.lines}")
            assert replayed["channel"] == layout.reply(inspect.request)
        rejected = wait_for(lambda: shown("forged"), timeout=BOUND,
                            message="a forged rejection in dsmt events")
        assert rejected["payload"]["sliver"] == "s1" and rejected["sender"] == "commander/s1"
    finally:
        events.close()
        view.close()


def test_a_command_captured_before_a_node_restart_cannot_be_replayed_after_it(local_slice):
    import os
    import signal
    import time

    slice_ = local_slice(slivers=1)
    slice_.start()
    layout = slice_.layout
    view = SliceView([slice_.address], "dsmt", slice_.password, layout).start(BOUND)
    try:
        wait_for(lambda: _answers(view, slice_.key, "s1"), timeout=BOUND,
                 message="an inspect round trip to s1")
        with CommandRequest(view.client, slice_.key, layout, "s1", "inspect",
                            {"path": "/s1/commander"}) as captured:
            captured.lease(BOUND)
            sent = time.time()
            captured.send()
            assert captured.reply(BOUND)["outcome"] == "done"

            member = slice_.member("s1")
            os.kill(member.process.pid, signal.SIGKILL)  # no goodbye, nothing flushed on exit
            member.process.wait()
            slice_.start_sliver("s1")
            wait_for(lambda: _answers(view, slice_.key, "s1"), timeout=BOUND,
                     message="an inspect round trip to the restarted s1")
            assert time.time() - sent < 30.0, "the restart took longer than the command window"

            captured.send()  # the very same signed command, to the new node process
            replayed = captured.reply(BOUND)
            assert (replayed["outcome"], replayed["reason"]) == ("rejected", "replayed"), \
                replayed
        inspected = send_command(view, slice_.key, layout.slice, "s1", "inspect",
                                 {"path": "/s1/commander"}, timeout=BOUND)
        assert inspected["result"]["replay_persisted"] is True, inspected["result"]
    finally:
        view.close()
