"""`dsmt deselect` and `dsmt select` on real `dsmt node` processes through a real router.

Three slivers run the demo app with replicas = 1. Deselecting the sliver
that runs it drains it -- another sliver starts the instance before its own
stops, so the slice never runs none -- then stops its instance, releases its
workspace and keeps it out of placement (its heartbeat says ``quarantined:
deselected``), also when its node restarts; selecting it
again brings it back into placement,
where rendezvous placement hands it its instance again: installed afresh
into the released workspace, and running.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading

from dsmt.testing import wait_for
from gateways.view import SliceView

from tests.e2e.conftest import Watcher, write_plan
from tests.e2e.test_commands import _answers
from tests.e2e.test_slice import counts, stable_total

BOUND = 30.0


def dsmt(slice_, *args: str) -> str:
    """Run the real CLI against the slice; its stdout (fails the test on a non-zero exit)."""
    done = subprocess.run(
        [sys.executable, "-m", "dsmt.cli", *args, "--router", "%s:%d" % slice_.address,
         "--password-file", str(slice_.root / "slice.secret"), "--slice", slice_.slice,
         "--key-file", str(slice_.key_path)],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_deselected_sliver_stops_its_instance_releases_its_workspace_and_comes_back_on_select(
        local_slice, tmp_path):
    from actors.deploy.package import DEMO_DIR, build, build_demo

    archive, sha256 = build_demo(tmp_path / "packages")
    plan = write_plan(tmp_path / "plan.toml", archive, sha256, replicas=1)
    slice_ = local_slice(slivers=3, plan=plan).start()
    layout = slice_.layout
    placed = stable_total(slice_, 1, timeout=40)
    victim = next(name for name, k in placed.items() if k)
    member = slice_.member(victim)
    beats = Watcher(slice_, layout.heartbeat(victim))
    container = Watcher(slice_, layout.status("container-mgr.container", victim))
    view = SliceView([slice_.address], "dsmt", slice_.password, layout).start(BOUND)
    try:
        wait_for(lambda: _answers(view, slice_.key, victim), timeout=BOUND,
                 message=f"an inspect round trip to {victim}")
        assert list((member.workspace / "versions").iterdir()), "installed before"

        # Drained: the instance runs elsewhere before it stops here -- never none.
        totals: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                totals.append(sum(counts(slice_).values()))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            said = dsmt(slice_, "deselect", victim)
        finally:
            done.set()
            sampler.join(BOUND)
        assert re.fullmatch(rf"deselect {victim}: done \(deselected; drained in [\d.]+ s\)",
                            said), said
        assert len(totals) > 10 and min(totals) >= 1 and max(totals) == 2, totals
        assert not (member.workspace / "drain.json").exists(), "an ended drain is not kept"
        moved = stable_total(slice_, 1, timeout=BOUND)
        assert moved[victim] == 0, moved
        assert list((member.workspace / "versions").iterdir()) == []
        assert list((member.workspace / "current").iterdir()) == []
        assert (member.workspace / "logs" / "demo-app-0.out.log").exists(), "logs kept"
        wait_for(lambda: any(e.payload.get("quarantined") == "deselected"
                             for e in beats.on(layout.heartbeat(victim))),
                 timeout=BOUND, message=f"{victim}'s heartbeat saying it is deselected")
        channel = layout.status("container-mgr.container", victim)
        assert container.on(channel)[-1].payload["state"] == "deselected"

        # A new service while deselected runs on the others; nothing of it is installed
        # here, and the stopped app is told nothing (no "nobody at ..." error).
        other, other_sha = build(DEMO_DIR, tmp_path / "other", manifest_text=(
            DEMO_DIR / "dsmt-app.toml").read_text().replace('name = "demo-app"', 'name = "other"'))
        plan2 = write_plan(tmp_path / "plan2.toml", archive, sha256, plan_version=2, extra=(
            f'\n[services.other]\npackage = "file://{other}"\nsha256 = "{other_sha}"\n'
            'version = "1.0.0"\nreplicas = 1\n'))
        assert dsmt(slice_, "deploy", str(plan2)).startswith("deployed plan version 2")
        two = stable_total(slice_, 2, timeout=BOUND)
        assert two[victim] == 0, two
        assert list((member.workspace / "versions").iterdir()) == []
        assert "nobody at" not in (member.folder / "node.log").read_text()

        # A deselect outlives a restart of the node.
        member.process.terminate()
        member.process.wait(timeout=BOUND)
        slice_.start_sliver(victim)
        wait_for(lambda: any(e.payload.get("reason") == "deselected before this container "
                             "manager started" for e in container.on(channel)),
                 timeout=BOUND, message=f"{victim}'s new node saying it is still deselected")
        wait_for(lambda: _answers(view, slice_.key, victim), timeout=BOUND,
                 message=f"an inspect round trip to {victim}'s new node")
        again = stable_total(slice_, 2, timeout=BOUND)
        assert again[victim] == 0, again
        assert beats.on(layout.heartbeat(victim))[-1].payload["quarantined"] == "deselected"

        assert dsmt(slice_, "select", victim) == f"select {victim}: done (installed)"
        back = stable_total(slice_, 2, timeout=BOUND * 2)
        assert back[victim] >= 1, f"placement gives {victim} its instance again: {back}"
        assert list((member.workspace / "versions").iterdir()), "installed again"
        latest = beats.on(layout.heartbeat(victim))[-1].payload
        assert latest["quarantined"] is None and latest["services"].get("demo-app") == 1
    finally:
        view.close()
        beats.close()
        container.close()
    assert sum(counts(slice_).values()) == 2
