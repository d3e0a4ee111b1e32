"""A chaos run: seeded faults on a 5-sliver slice in namespaces, invariants checked after each.

::

    .venv/bin/python -m tests.netns.chaos --seed 12345 --minutes 30    # the long run
    .venv/bin/python -m pytest -q -m chaos tests/netns/test_chaos.py   # the short run

The slice: one router, 5 slivers (heartbeat 1 s, suspected after k = 3
missed beats), a plan running the demo app with replicas = 3. Faults come
from :func:`tests.netns.faults.schedule` (a pure function of the seed), one
at a time, until the run has lasted ``seconds`` *and* injected ``faults``.

Invariants, checked after every fault and its heal (each failure is a
*violation* in the report; the run fails on any):

1. **convergence**: the slice is back to exactly 3 instances, held for
   :data:`STABLE` s, within the kind's bound (:data:`faults.BOUND`), and each
   answers ``/health``; at the end, sliver kills converged in ≤ 5 s p50;
2. **the plan is never lost**: every running sliver's heartbeat carries the
   plan's version; and no coordinator's published status calls a running
   sliver dead or suspected (its view healed too);
3. **no silent loss**: for every running sliver, the newest status event a
   PsEPR subscriber (the :class:`observe.Watcher`) holds on each of the
   sliver's status channels is the one the sliver's hub holds; where it is
   not, the subscriber must have flagged a gap (:mod:`dsmt.gaps`) or lost its
   own connection, and a resync (the bridges re-send from their snapshot)
   must repair it;
4. **no orphan**: after the run, no process under the slice's folder and no
   namespace of the run is left (checked by :func:`run` once it stopped the slice).

The report (printed, and written to ``reports/chaos/chaos-<seed>.json``):
faults per kind, convergence p50/max per kind, overshoot (most instances
above 3 and the total time above), gaps detected/resynced/unresolved,
violations.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import threading
import time
from typing import Any, Callable

import zmq

from actors.localslice import answers_health
from dsmt.testing import WaitTimeout, wait_for
from tests.netns import faults
from tests.netns.faults import BOUND, LATENCY, Fault
from tests.netns.observe import Sampler, Watcher, truth
from tests.netns.report import summary, write

REPLICAS = 3
SLIVERS = 5
STABLE = 2.0


class Chaos:
    """Runs the schedule of ``seed`` against a started :class:`tests.netns.harness.NetSlice`."""

    def __init__(self, slice_: Any, seed: int, seconds: float, faults_min: int,
                 log: Callable[[str], None] = print) -> None:
        self.slice = slice_
        self.seed = seed
        self.seconds = seconds
        self.faults_min = faults_min
        self.log = log
        self.names = [m.name for m in slice_.members]
        self.convergence: dict[str, list[float]] = {}
        self.injected: dict[str, int] = {}
        self.violations: list[str] = []
        self.history: list[dict[str, Any]] = []
        self.context = zmq.Context()
        self.sampler = Sampler(slice_, REPLICAS)
        self.watcher: Watcher | None = None

    # --- the run ------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.sampler.start()
        began = time.monotonic()
        try:
            self.watcher = Watcher(self.slice)
            wait_for(self.watcher.granted, timeout=30, message="the watcher's lease")
            self._converge("start", time.monotonic(), 120.0)
            self.watcher.reconnected.set()  # joined late: resync once
            self._check("start")
            for fault in faults.schedule(self.seed):
                if fault.index >= self.faults_min and time.monotonic() - began >= self.seconds:
                    break
                self._fault(fault)
            self._check("end")
        finally:
            self.sampler.stop()
            if self.watcher is not None:
                self.watcher.close()
            self.context.term()
        return self.report(time.monotonic() - began)

    def _fault(self, fault: Fault) -> None:
        """Inject ``fault``, heal it, wait for convergence, check the invariants."""
        self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
        entry = {"index": fault.index, "kind": fault.kind, "hold": fault.hold}
        # each returns the target, and when convergence is measured from (None: now)
        target, since = getattr(self, "_" + fault.kind)(fault, entry)
        kind = "sliver_return" if fault.kind == "sliver_kill" else fault.kind
        took = self._converge(kind, since or time.monotonic(), BOUND[kind], fault)
        entry.update(target=target, converged=took)
        self.history.append(entry)
        self.log(f"fault {fault.index:3d} {fault.kind:15s} {target:8s} hold {fault.hold:4.2f}s"
                 + ("" if "killed" not in entry else f" -> re-placed in {entry['killed']:5.2f}s")
                 + (f" -> 3 instances in {took:5.2f}s" if took is not None else " -> stuck"))
        self._check(f"fault {fault.index} {fault.kind} {target}")

    def _placed(self) -> list[str]:
        return [n for n, k in self.sampler.latest()[1].items() if k] or self.names

    def _app_kill(self, fault: Fault, entry: dict) -> tuple[str, float]:
        target, at = fault.choose(self._placed()), time.monotonic()
        self.slice.kill_app(target)
        return target, at

    def _node_kill(self, fault: Fault, entry: dict) -> tuple[str, None]:
        target = fault.choose(self.names)
        self.slice.kill_node(target)
        self._hold(fault.hold)
        self.slice.start_sliver(target)
        return target, None

    def _sliver_kill(self, fault: Fault, entry: dict) -> tuple[str, None]:
        target, at = fault.choose(self._placed()), time.monotonic()
        self.slice.kill_sliver(target)
        entry["killed"] = self._converge("sliver_kill", at, BOUND["sliver_kill"], fault)
        self._hold(fault.hold)
        self.slice.start_sliver(target)  # then measured as sliver_return
        return target, None

    def _router_kill(self, fault: Fault, entry: dict) -> tuple[str, None]:
        self.slice.kill_router()
        self._hold(fault.hold)
        self.slice.start_router()
        return "r1", None

    def _partition_one(self, fault: Fault, entry: dict) -> tuple[str, None]:
        target = fault.choose(self.names)
        self.slice.cut(target)
        self._hold(fault.hold)
        self.slice.restore(target)
        return target, None

    def _partition_split(self, fault: Fault, entry: dict) -> tuple[str, None]:
        pairs = faults.pairs(self.names)
        pair = pairs[fault.pick % len(pairs)]
        self.slice.partition(["r1", *(n for n in self.names if n not in pair)], list(pair))
        self._hold(fault.hold)
        self.slice.heal()
        return "+".join(pair), None

    def _latency(self, fault: Fault, entry: dict) -> tuple[str, None]:
        target = None if fault.pick % 3 == 0 else fault.choose(self.names)
        self.slice.delay(target, LATENCY)
        self._hold(fault.hold)
        self.slice.delay(target, 0.0)
        return target or "all", None

    def _hold(self, seconds: float) -> None:
        """Let the fault last ``seconds`` (a fault's duration, not a wait for a condition)."""
        threading.Event().wait(seconds)

    # --- invariants --------------------------------------------------------------------

    def _converge(self, kind: str, since: float, bound: float,
                  fault: Fault | None = None) -> float | None:
        """Seconds from ``since`` until exactly 3 instances run for good, all healthy.

        "For good": the count stays 3 for :data:`STABLE` s; the time is that of
        the first sample of that run, or of the first moment every instance
        answered ``/health`` in it, whichever is later.
        """
        what = f"{kind} (fault {fault.index})" if fault else kind
        healthy: list[float] = []

        def converged() -> float | None:
            latest = self.sampler.latest()
            if latest is None or latest[0] <= since or sum(latest[1].values()) != REPLICAS:
                healthy.clear()
            elif not healthy and self._healthy():
                healthy.append(time.monotonic())
            settled = self.sampler.settled(since, STABLE)
            return max(settled, healthy[0]) if settled and healthy else None

        try:
            done = wait_for(converged, timeout=bound + STABLE + 5,
                            message=lambda: f"3 healthy instances after {what}, have "
                                            f"{self.sampler.latest()}")
        except WaitTimeout:
            self.violations.append(f"{what}: not back to 3 healthy instances within {bound}s "
                                   f"(have {self.sampler.latest()[1]})")
            # carry on from wherever the slice settles (or stop the run: raises)
            wait_for(converged, timeout=90, message=f"3 instances, long after {what}")
            return None
        took = done - since
        if kind != "start":
            self.convergence.setdefault(kind, []).append(round(took, 3))
            if took > bound:
                self.violations.append(f"{what}: 3 instances after {took:.2f}s > {bound}s")
        return took

    def _healthy(self) -> bool:
        for name, found in self.slice.instances().items():
            if not found:
                continue
            port = self.slice.member(name).app_port()
            if port is None or not self.slice.network.call(name, answers_health, port):
                return False
        return True

    def _check(self, where: str) -> None:
        """Invariants 2 and 3 (see the module docstring), on the running slivers."""
        running = [n for n in self.names if self.slice.running(n)]
        version = 1
        try:
            wait_for(lambda: all((self.watcher.beat(n) or {}).get("plan_version") == version
                                 and not (self.watcher.beat(n) or {}).get("leaving")
                                 for n in running), timeout=20,
                     message=lambda: "plan version %d in every heartbeat, have %s" % (
                         version, {n: (self.watcher.beat(n) or {}).get("plan_version")
                                   for n in running}))
        except WaitTimeout as exc:
            self.violations.append(f"{where}: plan: {exc}")
        self._check_status(where, running)
        try:  # after the status check: the subscriber's view is the hubs' by now
            wait_for(lambda: not self._misjudged(running), timeout=20, message="")
        except WaitTimeout:
            self.violations.append(f"{where}: a coordinator's status misjudges running "
                                   f"slivers: {self._misjudged(running)}")

    def _check_status(self, where: str, running: list[str]) -> None:
        """Invariant 3: the subscriber's newest status per channel is the hubs' (or re-synced)."""
        pending = self.watcher.gaps()
        flagged = bool(pending) or self.watcher.reconnected.is_set()
        self.watcher.reconnected.clear()
        if flagged:
            self.watcher.resync()
        try:
            wait_for(lambda: not self._differences(running), timeout=15, message="")
        except WaitTimeout:
            if flagged:
                self.violations.append(f"{where}: status not re-synced: "
                                       f"{self._differences(running)}")
                return
            self.watcher.resync()
            try:
                wait_for(lambda: not self._differences(running), timeout=15, message="")
                self.violations.append(f"{where}: a status change was lost without a gap "
                                       f"report (a resync repaired it)")
            except WaitTimeout:
                self.violations.append(f"{where}: status differs from the hubs: "
                                       f"{self._differences(running)}")
            return
        self.watcher.resolve(pending)

    def _misjudged(self, running: list[str]) -> dict[str, dict[str, list[str]]]:
        """Per sliver, the running slivers its coordinator's status calls dead or suspected."""
        out = {}
        for name in running:
            status = self.watcher.payload(self.slice.layout.status("coordinator", name))
            wrong = {key: sorted(set(status.get(key) or ()) & set(running))
                     for key in ("dead", "suspected")}
            if not status or any(wrong.values()):
                out[name] = wrong if status else {"no status": []}
        return out

    def _differences(self, slivers: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in slivers:
            try:
                own = truth(self.slice, name, self.context)
            except (TimeoutError, zmq.ZMQError) as exc:
                out[name] = [f"hub unreadable: {exc}"]
                continue
            wrong = [c for c, event_id in own.items() if self.watcher.seen(c) != event_id]
            if wrong:
                out[name] = wrong
        return out

    # --- the report --------------------------------------------------------------------

    def report(self, duration: float) -> dict[str, Any]:
        kills = self.convergence.get("sliver_kill", [])
        if kills and statistics.median(kills) > 5.0:
            self.violations.append(f"sliver_kill convergence p50 {statistics.median(kills):.2f}s"
                                   f" > 5s")
        missing = [k for k in faults.KINDS if not self.injected.get(k)]
        if missing and sum(self.injected.values()) >= len(faults.KINDS):
            self.violations.append(f"fault kinds never injected: {missing}")
        w = self.watcher
        detected = 0 if w is None else w.detector.gaps
        resynced = 0 if w is None else w.resynced
        return {
            "seed": self.seed, "duration_s": round(duration, 1),
            "faults": sum(self.injected.values()), "faults_per_kind": dict(self.injected),
            "convergence": {k: {"n": len(v), "p50_s": round(statistics.median(v), 2),
                                "max_s": round(max(v), 2), "bound_s": BOUND[k]}
                            for k, v in sorted(self.convergence.items())},
            "overshoot": {"max_extra_instances": self.sampler.overshoot_max,
                          "seconds_above_target": round(self.sampler.overshoot_seconds, 2)},
            "gaps": {"detected": detected, "resynced": resynced,
                     "unresolved": detected - resynced,
                     "resync_requests": 0 if w is None else w.requests},
            "violations": list(self.violations),
            "history": self.history,
        }




def run(seed: int, seconds: float, faults_min: int, log: Callable[[str], None] = print,
        make_slice: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Build the slice, run, stop everything; the report (with orphan check), written."""
    from tests.netns.conftest import demo_plan, slice_root, teardown
    from tests.netns.harness import NetSlice

    root = slice_root("chaos")
    slice_ = NetSlice(root, slivers=SLIVERS, plan=demo_plan(root, REPLICAS))
    try:
        slice_.start()
        report = Chaos(slice_, seed, seconds, faults_min, log).run()
    finally:
        try:
            teardown(slice_)
            orphans = None
        except AssertionError as exc:
            orphans = str(exc)
    if orphans:
        report["violations"].append(f"orphans: {orphans}")
    path = write(report)
    log(summary(report) + f"\nreport: {path}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.netns.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--faults", type=int, default=50, help="at least this many faults")
    args = parser.parse_args(argv)
    from tests.netns import network

    why = network.unavailable()
    if why:
        print(f"chaos: {why}", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C: the slice is stopped and the namespaces deleted
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report = run(args.seed, args.minutes * 60, args.faults)
    return 1 if report["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
