"""Hub benchmark: DSMT events/s through the hub next to raw pyzmq through a C proxy.

Run: ``python -m benchmarks hub [--events N] [--rounds R] [--idle K] [--actors A]
[--asks Q]`` (JSON on stdout; ``make bench BENCH_ARGS=hub``). Defaults: 100,000
events, 5 rounds, 1,000 idle subscriptions, 1,000 actors, 10,000 asks.

Every figure is publisher -> middle -> subscriber in three processes on this
machine, with the same bytes on the wire, in the same run:

- ``baseline``: a hand-written loop sends pre-encoded ``[channel, msgpack
  body]`` frames of DSMT status events (``send(ch, SNDMORE)``, ``send(body)``)
  into a plain XSUB/XPUB ``zmq.proxy``; the subscriber does ``recv()`` twice
  (a receive timeout ends the round if the end marker never comes).
- ``baseline_msgpack``: the same hand loop, but the publisher packs each
  body from its 12 fields (``msgpack.Packer.pack``, the very bytes the
  baseline sends) and the subscriber unpacks each one (``msgpack.unpackb``,
  no validation, no Event): the least any bus of msgpack events costs, so
  ``ratio_dsmt_to_baseline_msgpack`` is what DSMT's event model (stamping,
  validation, Event objects, gap detection, the hub's keeper) costs on top
  of its wire format, and ``ratio_baseline_msgpack_to_baseline`` is the
  ceiling of any design that packs each event when it is published and
  unpacks it when it is read, against the pre-encoded loop. (It replaces
  ``baseline_polling``, whose subscriber polled before every event as this
  baseline did until 2026-12.)
- ``dsmt``: the Bus API end to end: ``Publisher.publish`` (stamps an Event,
  codec.encode) -> :class:`dsmt.hub.Hub` (the C proxy forwards; its keeper
  thread, subscribed to everything, validates and keeps the retained state)
  -> ``Subscriber.recv`` (codec.decode to an Event, gap detection).
- ``dsmt_via_plain_proxy``: the same Publisher and the same decoding
  subscriber loop, but through the C proxy instead of the hub: what the
  event model costs without the hub, so the hub's own share is visible.

Rounds alternate the order of the four. Rates are events received divided
by (subscriber's last receive - publisher's first send), CLOCK_MONOTONIC
being system-wide. Every socket of a round (publisher, hub or proxy,
subscriber) has a high-water mark of at least ``--events`` (:func:`burst_hwm`;
100,000 = dsmt.hub.HWM at the default), so any one queue holds the whole
burst and none can overflow however far behind the hub or the subscriber
falls; publishers block rather than drop (XPUB_NODROP) and close only once
the subscriber has everything (no linger can cut the tail). Nothing is
assumed: publishers count drops, subscribers count what they got (and, for
DSMT, the gaps they saw), and ``lost`` is sent - received per round.

Memory: RSS growth of a client process holding ``--idle`` idle Bus
subscribers (and, as the baseline, the same number of raw SUB sockets), and
the hub process's growth while they are connected (both kinds wait for the
hub's welcome, so every connection is complete when RSS is read).

Actors (``actors``): in a fresh process, ``ask()`` round trips to one DSMT
actor (p50/p99 over ``--asks`` calls) next to the same loop on a bare
``pykka.ThreadingActor``; and the RSS growth of ``--actors`` idle DSMT
actors under one supervisor (no bus: ``publishers=None``) next to as many
bare pykka actors. CPU time per event (``cpu_us_per_event``) counts every
thread of each process, ZeroMQ's I/O threads included.

This module orchestrates the rounds and summarises them; the processes of a
round (publisher, hub or proxy, subscriber) and the memory figures' idle
client are in :mod:`benchmarks._hub_processes`, the actor figures in
:mod:`benchmarks._hub_actors`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
from typing import Any

from benchmarks import _hub_actors
from benchmarks._stats import spread
from benchmarks._hub_processes import (
    HWM, TIMEOUT, encoded_frames, ipc_endpoints, must, run_hub, run_idle_client, run_proxy,
    run_publisher, run_subscriber,
)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks hub")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--actors", type=int, default=1000)
    parser.add_argument("--asks", type=int, default=10_000)
    args = parser.parse_args(argv or [])
    mp_ctx = mp.get_context("spawn")
    runs: dict[str, list[dict]] = {"baseline": [], "dsmt": [], "dsmt_via_plain_proxy": [],
                                   "baseline_msgpack": []}
    order = list(runs)
    for round_ in range(args.rounds):
        for mode in (order if round_ % 2 == 0 else order[::-1]):
            runs[mode].append(_round(mp_ctx, mode, args.events, burst_hwm(args.events)))
    ratios = [d["events_per_s"] / b["events_per_s"] for d, b in zip(runs["dsmt"], runs["baseline"])]
    plain = [d["events_per_s"] / b["events_per_s"]
             for d, b in zip(runs["dsmt_via_plain_proxy"], runs["baseline"])]
    packed = [d["events_per_s"] / b["events_per_s"]
              for d, b in zip(runs["dsmt"], runs["baseline_msgpack"])]
    ceiling = [p["events_per_s"] / b["events_per_s"]
               for p, b in zip(runs["baseline_msgpack"], runs["baseline"])]
    result: dict[str, Any] = {
        "benchmark": "hub",
        "events_per_round": args.events,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "body_bytes": len(encoded_frames(1)[0][1]),
        **{mode: _summary(rounds) for mode, rounds in runs.items()},
        "ratio_dsmt_to_baseline": spread(ratios, 3),
        "ratio_dsmt_via_plain_proxy_to_baseline": spread(plain, 3),
        "ratio_dsmt_to_baseline_msgpack": spread(packed, 3),
        "ratio_baseline_msgpack_to_baseline": spread(ceiling, 3),
        "target_ratio": 0.8,
    }
    if args.idle:
        result["memory"] = _memory(mp_ctx, args.idle)
    if args.actors or args.asks:
        result["actors"] = _hub_actors.measure(mp_ctx, args.actors, args.asks)
    print(json.dumps(result, indent=2))
    ratio = result["ratio_dsmt_to_baseline"]
    print(f"dsmt/baseline: median {ratio['median']} (min {ratio['min']}, max {ratio['max']}, "
          f"spread {ratio['spread_pct']}%) over {args.rounds} rounds; lost: "
          + ", ".join(f"{mode} {result[mode]['lost_total']}" for mode in runs),
          file=sys.stderr)
    return result


# -- one round ----------------------------------------------------------------------


def burst_hwm(events: int) -> int:
    """A high-water mark that queues a whole burst of ``events`` (plus the markers)."""
    return max(HWM, events + 1000)


def _round(mp_ctx: Any, mode: str, events: int, hwm: int) -> dict:
    import psutil
    with tempfile.TemporaryDirectory(prefix="dsmt-bench-") as tmp:
        ready, stop, go, synced, done = (mp_ctx.Event() for _ in range(5))
        results = mp_ctx.Queue()
        middle_target = run_hub if mode == "dsmt" else run_proxy
        middle = mp_ctx.Process(target=middle_target, args=(tmp, ready, stop, results, hwm))
        middle.start()
        try:
            must(ready.wait(TIMEOUT), "middle process did not start")
            endpoints = ipc_endpoints(tmp)
            ready.clear()
            sub = mp_ctx.Process(target=run_subscriber,
                                 args=(mode, endpoints, ready, synced, results, hwm))
            sub.start()
            must(ready.wait(TIMEOUT), "subscriber did not start")
            pub = mp_ctx.Process(target=run_publisher,
                                 args=(mode, endpoints, events, go, synced, results, done, hwm))
            pub.start()
            middle_cpu = psutil.Process(middle.pid)
            cpu_before = sum(middle_cpu.cpu_times()[:2])
            go.set()
            got = {}
            for _ in range(2):
                item = results.get(timeout=TIMEOUT)
                got[item.pop("role")] = item
            middle_seconds = sum(middle_cpu.cpu_times()[:2]) - cpu_before
            done.set()
            pub.join(TIMEOUT)
            sub.join(TIMEOUT)
        finally:
            stop.set()
            middle.join(TIMEOUT)
            for proc in (middle,):
                if proc.is_alive():
                    proc.kill()
    p, s = got["publisher"], got["subscriber"]
    seconds = s["t_last"] - p["t_start"]
    return {
        "events_per_s": round(s["received"] / seconds) if seconds > 0 else 0,
        "publisher_events_per_s": round(p["sent"] / (p["t_end"] - p["t_start"])),
        "sent": p["sent"], "received": s["received"],
        "publisher_dropped": p["dropped"], "subscriber_gaps_missing": s.get("missing", 0),
        "lost": p["sent"] - s["received"],
        "cpu_us_per_event": {  # every thread of each process, ZeroMQ's I/O threads included
            "publisher": round(p["cpu"] / p["sent"] * 1e6, 2),
            "middle": round(middle_seconds / p["sent"] * 1e6, 2),
            "subscriber": round(s["cpu"] / p["sent"] * 1e6, 2),
        },
    }


# -- memory -------------------------------------------------------------------------


def _memory(mp_ctx: Any, count: int) -> dict:
    """Each kind against a fresh hub process (RSS never shrinks, so no reuse)."""
    import psutil
    out: dict[str, Any] = {"count": count}
    for kind in ("raw_sub_sockets", "bus_subscribers"):
        with tempfile.TemporaryDirectory(prefix="dsmt-bench-") as tmp:
            ready, stop = mp_ctx.Event(), mp_ctx.Event()
            results = mp_ctx.Queue()
            middle = mp_ctx.Process(target=run_hub, args=(tmp, ready, stop, results))
            middle.start()
            try:
                must(ready.wait(TIMEOUT), "hub did not start")
                hub_proc = psutil.Process(middle.pid)
                hub_before = hub_proc.memory_info().rss
                proc = mp_ctx.Process(target=run_idle_client,
                                      args=(kind, ipc_endpoints(tmp), count, results))
                proc.start()
                item = results.get(timeout=TIMEOUT)
                item["hub_rss_growth_kib"] = round((hub_proc.memory_info().rss - hub_before) / 1024)
                proc.join(TIMEOUT)
                out[kind] = item
            finally:
                stop.set()
                middle.join(TIMEOUT)
    return out


# -- statistics ---------------------------------------------------------------------



def _summary(rounds: list[dict]) -> dict:
    return {
        "events_per_s": spread([r["events_per_s"] for r in rounds]),
        "publisher_events_per_s": spread([r["publisher_events_per_s"] for r in rounds]),
        "lost_total": sum(r["lost"] for r in rounds),
        "publisher_dropped_total": sum(r["publisher_dropped"] for r in rounds),
        "subscriber_gaps_missing_total": sum(r["subscriber_gaps_missing"] for r in rounds),
        "cpu_us_per_event_median": {
            role: statistics.median(r["cpu_us_per_event"][role] for r in rounds)
            for role in ("publisher", "middle", "subscriber")},
        "sent_total": sum(r["sent"] for r in rounds),
        "received_total": sum(r["received"] for r in rounds),
    }


if __name__ == "__main__":
    main(sys.argv[1:])
