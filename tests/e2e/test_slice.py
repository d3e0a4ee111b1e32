"""A slice of five slivers places replicas without a leader, re-places a dead sliver's share,
and lets a sliver that was away catch up with the plan (heartbeat 1 s, suspected after 3)."""

from __future__ import annotations

import os
import signal
import time

import psutil

from dsmt.testing import wait_for

from tests.e2e.conftest import Watcher, write_plan

HEARTBEAT = 1.0


def app_processes(slice_, name: str) -> list[psutil.Process]:
    """The demo app's server processes working under one sliver's workspace."""
    return slice_.instances()[name]


def counts(slice_) -> dict[str, int]:
    return {m.name: len(app_processes(slice_, m.name)) for m in slice_.members
            if m.process is not None and m.process.poll() is None}


def stable_total(slice_, total: int, timeout: float, hold: float = 2.5) -> dict[str, int]:
    """Wait until exactly ``total`` app processes run slice-wide for ``hold`` seconds."""
    since: list[float] = []

    def check():
        now = counts(slice_)
        if sum(now.values()) != total:
            since.clear()
            return None
        if not since:
            since.append(time.monotonic())
        return now if time.monotonic() - since[0] >= hold else None

    return wait_for(check, timeout=timeout, message=lambda: f"{total} instances, have "
                                                           f"{counts(slice_)}")


def test_five_slivers_run_exactly_three_replicas_and_replace_a_killed_sliver(
        local_slice, tmp_path):
    from actors.deploy.package import build_demo

    archive, sha256 = build_demo(tmp_path / "packages")
    plan = write_plan(tmp_path / "plan.toml", archive, sha256, replicas=3)
    slice_ = local_slice(slivers=5, plan=plan).start()
    placed = stable_total(slice_, 3, timeout=40)
    assert all(k <= 1 for k in placed.values()), placed

    victim = next(name for name, k in placed.items() if k)
    doomed = app_processes(slice_, victim)
    member = slice_.member(victim)
    killed_at = time.monotonic()
    os.kill(member.process.pid, signal.SIGKILL)
    for p in doomed:
        p.kill()
    member.process.wait()
    psutil.wait_procs(doomed, timeout=5)

    others = lambda: sum(k for n, k in counts(slice_).items() if n != victim)  # noqa: E731
    wait_for(lambda: others() == 3, timeout=5 + 3,
             message=lambda: f"a replacement for {victim}'s instance, have {counts(slice_)}")
    replaced_after = time.monotonic() - killed_at
    print(f"\nre-placed {victim}'s instance after {replaced_after:.2f}s")
    assert replaced_after < 5.0 + 1.0

    slice_.start_sliver(victim)
    back = stable_total(slice_, 3, timeout=25)
    assert back.get(victim) is not None, back


def _one_replica_on_three(local_slice, tmp_path):
    """A started 3-sliver slice running the demo app with replicas = 1, a Watcher on it, and
    the app's (archive, sha256) for a later plan."""
    from actors.deploy.package import build_demo

    archive, sha256 = build_demo(tmp_path / "packages")
    plan = write_plan(tmp_path / "plan.toml", archive, sha256, replicas=1)
    slice_ = local_slice(slivers=3, plan=plan).start()
    return slice_, slice_.layout, Watcher(slice_, slice_.layout.base), (archive, sha256)


def test_a_sliver_away_during_a_new_plan_gets_it_within_two_heartbeats_of_returning(
        local_slice, tmp_path):
    from gateways.psepr.client import Client
    from actors.localslice import SERVICE
    from dsmt.event import RECORD, Address, Sequencer

    slice_, layout, watcher, package = _one_replica_on_three(local_slice, tmp_path)
    try:
        def version_of(name):
            beats = watcher.on(layout.heartbeat(name))
            return beats[-1].payload.get("plan_version") if beats else None

        wait_for(lambda: all(version_of(m.name) == 1 for m in slice_.members), timeout=30,
                 message="every sliver on plan 1")
        away = slice_.member("s3")
        os.killpg(away.process.pid, signal.SIGTERM)
        away.process.wait(15)

        new_text = write_plan(tmp_path / "plan2.toml", *package, replicas=1,
                              plan_version=2).read_text()
        client = Client([slice_.address], SERVICE, slice_.password, instance="deployer",
                        reconnect_pause=0.1).start()
        try:
            assert client.wait_connected(10)
            event = Sequencer(Address("deployer", "test")).make(
                layout.plan(), RECORD, {"version": 2, "toml": new_text}, retain=True)
            client.publish(event)
            wait_for(lambda: version_of("s1") == 2 and version_of("s2") == 2, timeout=10,
                     message="s1 and s2 on plan 2")
        finally:
            client.close()

        seen_before = len(watcher.on(layout.heartbeat("s3")))
        slice_.start_sliver("s3")
        first = wait_for(lambda: next((e for e in watcher.on(layout.heartbeat("s3"))[seen_before:]
                                      if not e.payload.get("leaving")), None),
                         timeout=30, message="s3 beating again")
        returned = time.monotonic()
        wait_for(lambda: version_of("s3") == 2, timeout=2 * HEARTBEAT + 2,
                 message="s3 on plan 2")
        caught_up = time.monotonic() - returned
        print(f"\ns3 caught up {caught_up:.2f}s after its first beat "
              f"(first beat said plan {first.payload.get('plan_version')})")
        persisted = (away.workspace / "plan.toml").read_text()
        assert "version = 2" in persisted
    finally:
        watcher.close()


def _cli(slice_, *args: str) -> list[dict]:
    """Run the real ``dsmt`` CLI against the slice's router; its JSON output."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "dsmt.cli", *args, "--router", "{}:{}".format(*slice_.address),
         "--password-file", str(slice_.root / "slice.secret"), "--slice", slice_.slice],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_status_and_top_mark_a_killed_sliver_dead_and_the_others_alive(local_slice, tmp_path):
    from actors.deploy.package import build_demo

    archive, sha256 = build_demo(tmp_path / "packages")
    plan = write_plan(tmp_path / "plan.toml", archive, sha256, replicas=3)
    slice_ = local_slice(slivers=4, plan=plan).start()
    placed = stable_total(slice_, 3, timeout=40)
    victim = next(name for name, k in placed.items() if k)

    def liveness() -> dict[str, str]:
        rows = _cli(slice_, "status", "--json", "--wait", "1.5")
        return {r["sliver"]: r["state"] for r in rows if r["component"] == "heartbeat"}

    wait_for(lambda: liveness() == {m.name: "alive" for m in slice_.members}, timeout=30,
             message="every sliver alive in dsmt status")
    member = slice_.member(victim)
    doomed = app_processes(slice_, victim)
    os.kill(member.process.pid, signal.SIGKILL)
    for p in doomed:
        p.kill()
    member.process.wait()

    # A status started after the death: the victim's bridge is gone, so what names it
    # dead is what the live slivers' coordinators saw of its heartbeats.
    def victim_dead() -> dict[str, str] | None:
        now = liveness()
        return now if now.get(victim) == "dead" else None

    seen = wait_for(victim_dead, timeout=30, message=lambda: f"{victim} dead in dsmt status")
    assert all(state == "alive" for name, state in seen.items() if name != victim), seen
    top = _cli(slice_, "top", "--once", "--json", "--wait", "1.5")
    assert [r["sliver_state"] for r in top if r["sliver"] == victim] == ["dead"], top
    assert all(r["sliver_state"] == "alive" for r in top if r["sliver"] != victim), top


def test_a_new_plan_version_that_keeps_a_slivers_share_keeps_its_instance_running(
        local_slice, tmp_path):
    from actors.deploy.package import build_demo
    from actors.localslice import SERVICE
    from dsmt.event import RECORD, Address, Sequencer
    from gateways.psepr.client import Client

    archive, sha256 = build_demo(tmp_path / "packages")
    plan = write_plan(tmp_path / "plan.toml", archive, sha256, replicas=2)
    slice_ = local_slice(slivers=4, plan=plan).start()
    placed = stable_total(slice_, 2, timeout=40)
    before = {name: {p.pid for p in app_processes(slice_, name)} for name, k in placed.items()
              if k}

    # plan 2: one replica more; on 4 slivers the two that run one keep running one
    text = write_plan(tmp_path / "plan2.toml", archive, sha256, replicas=3,
                      plan_version=2).read_text()
    client = Client([slice_.address], SERVICE, slice_.password, instance="deployer",
                    reconnect_pause=0.1).start()
    try:
        assert client.wait_connected(10)
        client.publish(Sequencer(Address("deployer", "test")).make(
            slice_.layout.plan(), RECORD, {"version": 2, "toml": text}, retain=True))
        stable_total(slice_, 3, timeout=40)
    finally:
        client.close()
    after = {name: {p.pid for p in app_processes(slice_, name)} for name in before}
    assert after == before, (before, after)


def test_a_sliver_back_from_the_dead_is_live_again_in_every_coordinators_status(
        local_slice, tmp_path):
    """Found by an earlier chaos run: a coordinator whose share did not change when a dead peer
    came back kept publishing that peer in its status's ``dead`` list."""
    # one replica on three slivers: a sliver's return changes nobody's share
    slice_, layout, watcher, _ = _one_replica_on_three(local_slice, tmp_path)
    try:
        def status(name):
            found = watcher.on(layout.status("coordinator", name))
            return found[-1].payload if found else {}

        placed = stable_total(slice_, 1, timeout=40)
        victim = next(name for name, k in placed.items() if not k)
        others = [m.name for m in slice_.members if m.name != victim]
        member = slice_.member(victim)
        os.kill(member.process.pid, signal.SIGKILL)
        member.process.wait()
        wait_for(lambda: all(victim in (status(n).get("dead") or ()) for n in others),
                 timeout=30, message=lambda: f"{victim} dead in {others}' coordinator status")

        slice_.start_sliver(victim)
        wait_for(lambda: all(victim in (status(n).get("live") or ())
                             and victim not in (status(n).get("dead") or ())
                             and victim not in (status(n).get("suspected") or ())
                             for n in others),
                 timeout=10 * HEARTBEAT + 10,
                 message=lambda: f"{victim} live again in every coordinator's status: "
                                 + str({n: (status(n).get('live'), status(n).get('dead'))
                                        for n in others}))
    finally:
        watcher.close()
