"""Swarm: what a node spends on its peers' heartbeats in a large slice, with real processes.

``python -m benchmarks swarm [--peers 0,100,300] [--seconds 10] [--rounds 3]``
(JSON on stdout, progress on stderr)

A slice of one real sliver -- a PsEPR router and a ``dsmt node`` (no plan:
nothing to place or run) started by :class:`actors.localslice.LocalSlice`
-- and, in this process, a PsEPR client that beats for N simulated peers:
one heartbeat per peer per second (the default period), spread evenly,
each the record a coordinator sends (:func:`actors.coordinator.beats.build`)
on the peer's heartbeat channel, retained. The node imports every beat
(bridge -> hub), its coordinator reads it into its world view, and its hub
keeps it; so the node does, per beat, what a node of an (N + 1)-sliver
slice does for each peer's beat.

For each N of ``--peers`` (0 is the baseline: the same node with no
peers, in the same rounds; sizes alternate their order from round to
round), after :data:`SETTLE` seconds at that rate: the CPU (every thread,
from ``schedstat``, see :mod:`benchmarks._proc`) of the node and of the
router per second of wall time over ``--seconds``, the node's wake-ups per
second, the heartbeats per second the node's hub delivered (its own
included; read by this process on that hub, so none is assumed), and the
node's CPU per added beat against the baseline of the same round:
``(cpu(N) - cpu(0)) / (beats(N) - beats(0))``. The router's cost is
there for completeness: here it forwards each beat to one node only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from actors.coordinator import beats
from actors.localslice import SERVICE, LocalSlice
from benchmarks._proc import sample
from benchmarks._stats import spread
from benchmarks._waiting import wait_until
from dsmt.event import HEARTBEAT

SETTLE = 3.0  # seconds at a rate before measuring it (new members admitted, queues steady)
START_TIMEOUT = 60.0


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks swarm")
    parser.add_argument("--peers", default="0,100,300", help="simulated peers, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one window")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv or [])
    sizes = sorted({0, *(int(n) for n in args.peers.split(",") if n)})
    runs: dict[int, list[dict]] = {n: [] for n in sizes}
    with tempfile.TemporaryDirectory(prefix="dsmt-bench-swarm-") as tmp, \
            LocalSlice(Path(tmp), slivers=1) as slice_:
        node, router = slice_.member("s1").process.pid, slice_.router.pid
        with _Swarm(slice_) as swarm, _BeatCounter(slice_) as counter:
            wait_until(lambda: counter.count > 0, START_TIMEOUT, "the node's own heartbeat")
            for round_ in range(args.rounds):
                for n in (sizes if round_ % 2 == 0 else sizes[::-1]):
                    _progress(f"round {round_ + 1}: {n} peers")
                    swarm.rate(n)
                    time.sleep(SETTLE)  # a benchmark's own pacing, not a test's wait
                    runs[n].append(_window(node, router, counter, args.seconds))
            swarm.rate(0)
    result = {
        "benchmark": "swarm", "cpus": os.cpu_count(), "seconds": args.seconds,
        "rounds": args.rounds, "heartbeat_s": 1.0,
        "peers": {str(n): _summary(runs[n], runs[0] if n else None) for n in sizes},
        "baseline": "the same node with no simulated peers (0), same rounds",
    }
    print(json.dumps(result, indent=2))
    return result


def _summary(runs: list[dict], baseline: list[dict] | None) -> dict:
    """Each figure's spread; with the baseline's runs (same rounds), the node's CPU per beat."""
    out = {key: spread([r[key] for r in runs], 2)
           for key in ("node_cpu_ms_per_s", "node_wakeups_per_s", "router_cpu_ms_per_s",
                       "beats_per_s")}
    if baseline is not None:
        out["node_cpu_us_per_beat_above_baseline"] = spread(
            [1000 * (r["node_cpu_ms_per_s"] - b["node_cpu_ms_per_s"])
             / max(r["beats_per_s"] - b["beats_per_s"], 1e-9) for r, b in zip(runs, baseline)],
            1)
    return out


def _window(node: int, router: int, counter: _BeatCounter, seconds: float) -> dict:
    before = [sample(pid) for pid in (node, router)]
    count, started = counter.count, time.monotonic()
    time.sleep(seconds)  # the measurement window itself
    wall = time.monotonic() - started
    after = [sample(pid) for pid in (node, router)]
    return {"node_cpu_ms_per_s": (after[0][0] - before[0][0]) / wall * 1000,
            "node_wakeups_per_s": (after[0][1] - before[0][1]) / wall,
            "router_cpu_ms_per_s": (after[1][0] - before[1][0]) / wall * 1000,
            "beats_per_s": (counter.count - count) / wall}


class _Swarm:
    """A PsEPR client beating for ``n`` simulated peers at once per second each."""

    def __init__(self, slice_: LocalSlice) -> None:
        from gateways.psepr.client import Client
        self._layout = slice_.layout
        self._client = Client([slice_.address], SERVICE, slice_.password, instance="swarm")
        self._n = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="swarm", daemon=True)

    def __enter__(self) -> _Swarm:
        self._client.start()
        if not self._client.wait_connected(START_TIMEOUT):
            raise RuntimeError("the swarm's client did not connect to the router")
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._client.close()

    def rate(self, n: int) -> None:
        self._n = n

    def _run(self) -> None:
        seq, due = 0, time.monotonic()
        while not self._stop.is_set():
            n = self._n
            if n == 0:
                self._stop.wait(0.05)
                due = time.monotonic()
                continue
            seq += 1
            for i in range(n):
                self._client.publish(self._client.make(
                    self._layout.heartbeat(f"peer{i}"), HEARTBEAT, _beat(f"peer{i}", seq),
                    retain=True))
                due += 1.0 / n
                delay = due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return


def _beat(sliver: str, seq: int) -> dict:
    beat = beats.build(sliver=sliver, epoch="swarm", plan_version=0, labels=[], services={},
                       ready={}, assigned={}, metrics={}, scaling={}, quarantined=None,
                       restarts=0)
    beat.update(seq=seq, late=0.0, period=1.0)
    return beat


class _BeatCounter:
    """Counts the heartbeats the node's hub delivers (this process reads that hub)."""

    def __init__(self, slice_: LocalSlice) -> None:
        self._run_dir = slice_.member("s1").run_dir
        self._layout = slice_.layout
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="beat-counter", daemon=True)

    def __enter__(self) -> _BeatCounter:
        wait_until(lambda: (self._run_dir / "subscribe.sock").exists(), START_TIMEOUT,
                   "the node's hub")
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        import zmq

        from dsmt.bus import Bus
        from dsmt.hub import Endpoints
        context = zmq.Context()
        try:
            bus = Bus(context, Endpoints.ipc(self._run_dir))
            with bus.subscriber(self._layout.heartbeat()) as sub:
                while not self._stop.is_set():
                    event = sub.recv(0.2)
                    if event is not None and self._layout.parse_heartbeat(event.channel):
                        self.count += 1
        finally:
            context.destroy(linger=0)


def _progress(text: str) -> None:
    print(f"swarm: {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
