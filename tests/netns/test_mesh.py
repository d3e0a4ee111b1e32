"""Two peered routers on two hosts, slivers split 3 + 2 between them: a partition between the
routers splits the slice, and healing it brings back exactly 3 instances and one plan version."""

from __future__ import annotations

import time

import pytest

from dsmt.event import RECORD, Address, Sequencer
from dsmt.testing import wait_for
from tests.netns.observe import Sampler, Watcher

pytestmark = pytest.mark.timeout(300)

MAJORITY, MINORITY = ["s1", "s2", "s3"], ["s4", "s5"]


def test_a_partition_between_peered_routers_splits_the_slice_and_healing_it_converges(
        net_slice, demo_plan_3):
    slice_ = net_slice(slivers=5, plan=demo_plan_3, routers=2,
                       homes={**{s: "r1" for s in MAJORITY}, **{s: "r2" for s in MINORITY}})
    slice_.start()
    sampler = Sampler(slice_, 3).start()
    watchers = {}
    try:
        watchers = {r: Watcher(slice_, r) for r in ("r1", "r2")}
        for w in watchers.values():
            wait_for(w.granted, timeout=30, message="the watchers' leases")

        def beats_everywhere(version: int) -> bool:
            return all((w.beat(s) or {}).get("plan_version") == version
                       for w in watchers.values() for s in MAJORITY + MINORITY)

        wait_for(lambda: sampler.settled(0, 2.0) and beats_everywhere(1), timeout=120,
                 message=lambda: f"3 instances and every beat through both routers, have "
                                 f"{sampler.latest()}")

        def last_beat(router: str, sliver: str) -> float:
            payload = watchers[router].beat(sliver) or {}
            return float(payload.get("seq") or 0)

        cut = time.monotonic()
        slice_.partition(["r1"], ["r2"])  # the routers only: each sliver keeps its own
        # each side stops hearing the other: the beats of s4 stop reaching r1, s1's r2
        frozen = {("r1", "s4"): last_beat("r1", "s4"), ("r2", "s1"): last_beat("r2", "s1")}
        wait_for(lambda: last_beat("r1", "s1") >= frozen[("r2", "s1")] + 5, timeout=30,
                 message="s1 beating on its own side for 5 beats")
        assert last_beat("r1", "s4") <= frozen[("r1", "s4")] + 2, "r1 still hears s4"
        assert last_beat("r2", "s1") <= frozen[("r2", "s1")] + 2, "r2 still hears s1"

        # the majority side re-places the minority's instances; the minority only suspects
        def majority_runs_3() -> dict[str, int] | None:
            counts = sampler.latest()[1]
            return counts if sum(counts[s] for s in MAJORITY) == 3 else None

        split = wait_for(majority_runs_3, timeout=60,
                         message=lambda: f"3 instances on {MAJORITY}, have {sampler.latest()}")
        split_after = time.monotonic() - cut

        # a new plan version deployed on the majority's side during the split
        text = demo_plan_3.read_text().replace("version = 1", "version = 2", 1)
        event = Sequencer(Address("deployer", "test")).make(
            slice_.layout.plan(), RECORD, {"version": 2, "toml": text}, retain=True)
        watchers["r1"].client.publish(event)
        wait_for(lambda: all((watchers["r1"].beat(s) or {}).get("plan_version") == 2
                             for s in MAJORITY), timeout=20, message="plan 2 on the majority")
        assert all((watchers["r2"].beat(s) or {}).get("plan_version") == 1 for s in MINORITY)

        healed = time.monotonic()
        slice_.heal()
        wait_for(lambda: beats_everywhere(2), timeout=60,
                 message=lambda: "plan 2 in every beat through both routers, have " + str(
                     {r: {s: (w.beat(s) or {}).get("plan_version") for s in MAJORITY + MINORITY}
                          for r, w in watchers.items()}))
        settled = wait_for(lambda: sampler.settled(healed, 2.0), timeout=60,
                           message=lambda: f"exactly 3 instances, have {sampler.latest()}")
        converged_after = settled - healed
        print(f"\nsplit: the majority ran 3 instances {split_after:.2f}s after the cut "
              f"(counts {split}); overshoot max +{sampler.overshoot_max}; heal -> 3 instances "
              f"after {converged_after:.2f}s, plan 2 everywhere")
        assert converged_after < 30
    finally:
        for w in watchers.values():
            w.close()
        sampler.stop()
