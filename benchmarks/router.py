"""Router benchmark: events/s and latency publisher -> router -> subscriber, router RSS.

Run: ``python -m benchmarks router [--events N] [--rounds R] [--latency-seconds S]
[--clients C] [--background SHARE]`` (JSON on stdout). Defaults: 60,000 events,
5 rounds, 3 s, 1,000 clients, 0.5 of a core. The router runs in its own process (``dsmt router``,
:mod:`benchmarks._router_process`); publisher and subscriber are raw sockets
in this process (two threads), so the figures are the router's, not a
client library's.

Figures, each next to its baseline from the same run, as median, min, max and
spread over ``--rounds`` rounds (the machine may be shared: ``load_avg_*``
says how busy it was):

- ``lxml_baseline``: a bare lxml ``fromstring`` + ``tostring`` of each of the
  same stanzas, in this process (what one core does with the XML alone, no
  I/O); measured once per round, interleaved with the throughput rounds;
- ``throughput``: events/s through the router at full speed (the publisher
  writes batches of 128 stanzas as fast as the router reads), its ratio to
  the baseline of the same round, and the router's CPU time per event (less
  sensitive to load from elsewhere than wall-clock rates);
- ``latency``: p50/p99/max (ms) publisher -> router -> subscriber, paced at
  half the median full-speed rate (``latency_at_half_target``: the same at
  10,000 events/s, half the issue's 20,000 target; rounds of both
  alternate), from the publisher's clock just before it writes to when the
  subscriber thread reads the event; ``at_socket``
  ends instead when the bytes reached the subscriber's socket (the kernel's
  receive time, ``SO_TIMESTAMPNS``, Linux), which leaves out how late the
  subscriber thread itself got the CPU;
- ``relay_baseline``: the same two latency measurements, in the same rounds,
  through a bare asyncio relay in its own process that forwards the bytes
  unparsed (:mod:`benchmarks._relay`): what any Python forwarder's latency
  is on this machine at that moment, so the router's own part is the
  difference;
- ``contention`` in each: cores kept busy by the router, by this process
  (the load generators) and by everything else on the machine, and how
  long the router waited for a CPU (:class:`benchmarks._router_process.CpuShare`),
  per round; a slow round with high ``others_cpu_cores`` or
  ``router_wait_cores`` was a contended machine, not a slow router;
- ``under_load``: the latency rounds at 10,000 events/s again, router and
  relay alike, while a neighbour process keeps ``--background`` of a core
  busy in 10 ms bursts (:mod:`benchmarks._load`): how the tail holds when
  the machine is not quiet, measured rather than hoped for;
- ``memory``: router RSS idle, and with ``--clients`` logged-in clients
  holding 10 leases each.

``lost_total`` counts events sent but not received (should be 0).

This module runs the rounds and summarises them; the rounds themselves (the
raw-socket publisher and subscriber, and how they time each event) are in
:mod:`benchmarks._router_rounds`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree

from benchmarks._load import BackgroundLoad
from benchmarks._relay import RelayProcess
from benchmarks._router_process import RouterProcess
from benchmarks._router_rounds import (
    latency_round, login, relay_pair, router_pair, throughput_round,
)
from benchmarks._stats import spread
from dsmt.event import ATTRIBUTE, Address, Sequencer
from gateways.psepr import _loop, stream

TARGET_RATE = 20000  # events/s (issue 3); latency is also measured at half of it


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks router")
    parser.add_argument("--events", type=int, default=60000, help="events per throughput round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=1000, help="for the memory figure; 0: skip")
    parser.add_argument("--background", type=float, default=0.5,
                        help="share of a core kept busy by a neighbour for the latency rounds "
                             "under load; 0: skip")
    args = parser.parse_args(argv or [])
    _raise_fd_limit()
    stanzas = _stanzas(min(args.events, 20000))
    result: dict = {
        "benchmark": "router",
        "cpus": os.cpu_count(),
        "event_loop": _loop.kind(),  # router and relay alike (DSMT_EVENT_LOOP)
        "load_avg_before": [round(x, 2) for x in os.getloadavg()],
        "rounds": args.rounds,
        "stanza_bytes": len(stanzas[0]),
        "event_bytes": len(_event_part(stanzas[0])),
    }
    baseline, throughput, latency, at_target = [], [], [], []
    relay_latency, relay_at_target = [], []
    with tempfile.TemporaryDirectory() as tmp, RouterProcess(Path(tmp)) as router, \
            RelayProcess(Path(tmp)) as relay:
        for _ in range(args.rounds):
            # Interleaved, so that load from elsewhere hits both alike.
            baseline.append(_lxml_baseline(stanzas))
            throughput.append(throughput_round(router, stanzas, args.events))
        rate = statistics.median(r["events_per_s"] for r in throughput) / 2
        paced = _stanzas(int(rate * args.latency_seconds))
        target = _stanzas(int(TARGET_RATE / 2 * args.latency_seconds))
        for _ in range(args.rounds):
            latency.append(latency_round(router, router_pair(router), paced, rate))
            relay_latency.append(latency_round(relay, relay_pair(relay), paced, rate))
            at_target.append(latency_round(router, router_pair(router), target, TARGET_RATE / 2))
            relay_at_target.append(
                latency_round(relay, relay_pair(relay), target, TARGET_RATE / 2))
        if args.background:
            result["under_load"] = _under_load(router, relay, target, args.background,
                                               args.rounds)
        if args.clients:
            result["memory"] = _memory(router, clients=args.clients, leases=10)
    ratios = [t["events_per_s"] / b for t, b in zip(throughput, baseline)]
    result["lxml_baseline"] = {"what": "lxml fromstring+tostring of the same stanzas, "
                                       "in this process", "events_per_s": spread(baseline)}
    result["throughput"] = {
        "events_per_s": spread([t["events_per_s"] for t in throughput]),
        "router_cpu_us_per_event": spread([t["router_cpu_us"] for t in throughput], 1),
        "ratio_to_lxml_baseline": spread(ratios, 3),
        "events_per_round": args.events,
        "lost_total": sum(t["lost"] for t in throughput),
        "contention": _shares(throughput),
    }
    result["latency"] = _latency_summary(latency, rate)
    result["latency_at_half_target"] = _latency_summary(at_target, TARGET_RATE / 2)
    result["relay_baseline"] = {
        "what": "bare asyncio relay in its own process, bytes forwarded unparsed",
        "latency": _latency_summary(relay_latency, rate),
        "latency_at_half_target": _latency_summary(relay_at_target, TARGET_RATE / 2),
    }
    result["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["targets"] = {"events_per_s": TARGET_RATE, "p99_ms_at_half_rate": 10.0}
    print(json.dumps(result, indent=2))
    return result


def _under_load(router: RouterProcess, relay: RelayProcess, stanzas: list[bytes],
                share: float, rounds: int) -> dict:
    """Latency at half the target rate while a neighbour keeps ``share`` of a core busy."""
    mine, relayed = [], []
    with BackgroundLoad(share):
        for _ in range(rounds):
            mine.append(latency_round(router, router_pair(router), stanzas, TARGET_RATE / 2))
            relayed.append(latency_round(relay, relay_pair(relay), stanzas, TARGET_RATE / 2))
    return {
        "what": f"latency at {TARGET_RATE // 2} events/s while another process spins "
                f"{share} of every 10 ms (benchmarks._load); others_cpu_cores measures it",
        "background_share": share,
        "latency_at_half_target": _latency_summary(mine, TARGET_RATE / 2),
        "relay_baseline": _latency_summary(relayed, TARGET_RATE / 2),
    }



def _latency_summary(rounds: list[dict], rate: float) -> dict:
    summary = {
        "rate_events_per_s": round(rate),
        "p50_ms": spread([r["p50_ms"] for r in rounds], 3),
        "p99_ms": spread([r["p99_ms"] for r in rounds], 3),
        "max_ms": spread([r["max_ms"] for r in rounds], 3),
        "router_cpu_us_per_event": spread([r["router_cpu_us"] for r in rounds], 1),
        "lost_total": sum(r["lost"] for r in rounds),
        "contention": _shares(rounds),
    }
    if all(r["at_socket"] for r in rounds):
        summary["at_socket"] = {key: spread([r["at_socket"][key] for r in rounds], 3)
                                for key in ("p50_ms", "p99_ms", "max_ms")}
    return summary


def _shares(rounds: list[dict]) -> dict:
    """The CPU shares of each round (CpuShare), as a spread per figure."""
    keys = [k for k, v in rounds[0]["contention"].items() if v is not None]
    return {key: spread([r["contention"][key] for r in rounds], 3) for key in keys}


def _stanzas(n: int) -> list[bytes]:
    seq = Sequencer(Address("pub", "1"))
    return [stream.message_stanza(
        seq.make("/b/l/", ATTRIBUTE, {"field": "load", "value": f"{i % 1000:04d}"}),
        to="psepr_registry@bench") for i in range(n)]


def _event_part(stanza: bytes) -> bytes:
    return stanza[stanza.index(b"<event"):stanza.index(b"</event>") + 8]


def _lxml_baseline(stanzas: list[bytes]) -> float:
    """Events/s of a bare lxml parse + serialize of each stanza (one core, no I/O)."""
    start = time.perf_counter()
    for data in stanzas:
        etree.tostring(etree.fromstring(data))
    return len(stanzas) / (time.perf_counter() - start)


def _memory(router: RouterProcess, clients: int, leases: int) -> dict:
    """Router RSS idle, and with ``clients`` logged in holding ``leases`` leases each."""
    idle = router.ps.memory_info().rss
    sel = selectors.DefaultSelector()
    counts: dict[socket.socket, int] = {}
    socks = []
    for c in range(clients):
        sock = login(router.address, "c", [f"/m/{c}/{k}/" for k in range(leases)])
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ)
        counts[sock] = 0
        socks.append(sock)
    pending = clients
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(1.0):
            sock = key.fileobj
            data = sock.recv(1 << 16)
            before = counts[sock]
            counts[sock] += data.count(b"<op>lease</op>")
            if before < leases <= counts[sock]:
                pending -= 1
    loaded = router.ps.memory_info().rss
    for sock in socks:
        sock.close()
    return {
        "clients": clients,
        "leases_per_client": leases,
        "granted_clients": clients - pending,
        "rss_idle_mb": round(idle / 2**20, 1),
        "rss_loaded_mb": round(loaded / 2**20, 1),
        "kb_per_client": round((loaded - idle) / clients / 1024, 1),
    }


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":
    main(sys.argv[1:])
