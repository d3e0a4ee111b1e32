"""A slice scales a service on the app's own metric: the demo app's load driven up grows the
replicas to the policy's max, driven down shrinks them to its min, one step per cooldown."""

from __future__ import annotations

import json
import urllib.request

from dsmt.event import STATUS
from dsmt.testing import wait_for

from tests.e2e.conftest import Watcher, write_plan

SERVICE = "demo-app"
COOLDOWN = 2.0
MAX = 3
SCALING = f"""
[services.{SERVICE}.scaling]
metric = "load"
high = 0.8
low = 0.2
min = 1
max = {MAX}
cooldown = {COOLDOWN}

[services.{SERVICE}.env]
DEMO_LOAD = "0.5"
"""  # a new instance starts between the thresholds: only the test moves the load


def running(slice_) -> int:
    """Demo app server processes working under the slice's slivers."""
    return sum(len(found) for found in slice_.instances().values())


def set_load(slice_, value: float) -> int:
    """POST ``value`` as the load of every instance that answers; returns how many did."""
    body = json.dumps({"load": value}).encode()
    told = 0
    for member in slice_.members:
        for instance in range(MAX):
            port = member.app_port(SERVICE, instance)
            if port is None:
                continue
            request = urllib.request.Request(f"http://127.0.0.1:{port}/load", data=body,
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=1) as reply:
                    told += reply.status == 200
            except OSError:
                pass
    return told


def steps(watcher: Watcher, slice_) -> list[tuple[float, int]]:
    """The slice's scaling decisions as the beats carried them: (wall time, replicas), in order,
    a decision taken again by a coordinator that had not heard it yet counted once."""
    seen = set()
    for member in slice_.members:
        for beat in watcher.on(slice_.layout.heartbeat(member.name)):
            entry = (beat.payload.get("scaling") or {}).get(SERVICE)
            if entry:
                seen.add((entry["changed"], entry["replicas"]))
    out: list[tuple[float, int]] = []
    for changed, replicas in sorted(seen):
        if not out or out[-1][1] != replicas:
            out.append((changed, replicas))
    return out


def test_driving_the_apps_load_up_grows_replicas_to_max_and_down_shrinks_them_to_min(
        local_slice, tmp_path):
    from actors.deploy.package import build_demo

    archive, sha256 = build_demo(tmp_path / "packages")
    plan = write_plan(tmp_path / "plan.toml", archive, sha256, replicas=1, extra=SCALING)
    slice_ = local_slice(slivers=4, plan=plan).start()
    watcher = Watcher(slice_, slice_.layout.base)
    try:
        wait_for(lambda: running(slice_) == 1 and set_load(slice_, 0.5) == 1, timeout=30,
                 message=lambda: f"one instance answering, {running(slice_)} running")

        # Keep every instance, including the ones the slice adds, above `high`.
        wait_for(lambda: set_load(slice_, 0.95) >= MAX and running(slice_) == MAX, timeout=20,
                 message=lambda: f"{MAX} instances, {running(slice_)} running, "
                                 f"steps {steps(watcher, slice_)}")

        wait_for(lambda: set_load(slice_, 0.05) >= 1 and running(slice_) == 1, timeout=20,
                 message=lambda: f"1 instance, {running(slice_)} running, "
                                 f"steps {steps(watcher, slice_)}")
        wait_for(lambda: [r for _, r in steps(watcher, slice_)][-1:] == [1], timeout=5,
                 message=lambda: f"the beats saying 1, steps {steps(watcher, slice_)}")

        taken = steps(watcher, slice_)
        print(f"\nscaling steps (wall time, replicas): {taken}")
        assert [r for _, r in taken] == [2, 3, 2, 1], taken
        gaps = [b[0] - a[0] for a, b in zip(taken, taken[1:])]
        assert all(gap >= COOLDOWN for gap in gaps), gaps

        decisions = [e.payload["scaling"][SERVICE]["decisions"]
                     for e in watcher.events
                     if e.type == STATUS and str(e.payload.get("path", "")).endswith(
                         "/coordinator") and SERVICE in (e.payload.get("scaling") or {})]
        assert decisions and {d["to"] for d in decisions[-1]} <= {1, 2, 3}, decisions[-1:]
        assert any(d["value"] is not None and d["value"] > 0.8 for ds in decisions for d in ds)
    finally:
        watcher.close()
