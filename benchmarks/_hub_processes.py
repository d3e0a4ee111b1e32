"""The hub benchmark's processes: publisher, hub or proxy, subscriber, idle client.

Each ``run_*`` function is the target of one spawned process of
:mod:`benchmarks.hub`, which orchestrates the rounds and summarises them
(:mod:`benchmarks.instructions` runs the same functions under callgrind).
``run_hub`` and ``run_proxy`` are the middle (``dsmt`` mode gets the DSMT
hub, every other mode a plain XSUB/XPUB ``zmq.proxy``); ``run_subscriber``
and ``run_publisher`` run one end of a round in the given mode and put their
counts on ``results``; ``run_idle_client`` holds idle subscribers for the
memory figures.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

CHANNELS = [f"/bench/org.dsmt.component.web/status/sliver-{i}/" for i in range(100)]
PREFIX = "/bench/"
END = "/bench/end/"
SYNC = b"/bench/sync/"
HWM = 100_000
TIMEOUT = 120.0


# -- shared by the processes and the orchestration ----------------------------------


def ipc_endpoints(tmp: str) -> tuple[str, str, str]:
    return tuple(f"ipc://{tmp}/run/{part}.sock" for part in ("publish", "subscribe", "snapshot"))


def _cpu() -> float:
    """CPU seconds of every thread of this process so far."""
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def must(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(what)


def encoded_frames(n: int) -> list[tuple[bytes, bytes]]:
    """Pre-encoded DSMT status events, what the baseline sends by hand."""
    from dsmt import codec
    from dsmt.event import STATUS, Address, Sequencer
    seq = Sequencer(Address("bench", "0"))
    return [codec.encode(seq.make(CHANNELS[i % len(CHANNELS)], STATUS, _payload(i),
                                  retain=True)) for i in range(n)]


def _payload(i: int) -> dict:
    return {"state": "running", "component": "web", "pid": 4242, "attempt": 1, "n": i}


# -- processes (top level: spawned) ---------------------------------------------------


def run_hub(tmp: str, ready: Any, stop: Any, results: Any, hwm: int = HWM) -> None:
    import zmq
    from dsmt.hub import Hub
    context = zmq.Context()
    hub = Hub(context, Path(tmp) / "run", hwm=hwm, stats_interval=None).start()
    ready.set()
    stop.wait()
    hub.stop()
    context.term()


def run_proxy(tmp: str, ready: Any, stop: Any, results: Any, hwm: int = HWM) -> None:
    import threading

    import zmq
    os.makedirs(f"{tmp}/run", mode=0o700)
    context = zmq.Context()
    publish, subscribe, _ = ipc_endpoints(tmp)

    def run() -> None:
        xsub, xpub = context.socket(zmq.XSUB), context.socket(zmq.XPUB)
        for sock in (xsub, xpub):
            sock.linger = 0
            sock.sndhwm = sock.rcvhwm = hwm
        xsub.bind(publish)
        xpub.bind(subscribe)
        ready.set()
        try:
            zmq.proxy(xsub, xpub)
        except zmq.ContextTerminated:
            pass
        finally:
            xsub.close()
            xpub.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    stop.wait()
    context.term()
    thread.join(5)


def run_subscriber(mode: str, endpoints: tuple, ready: Any, synced: Any, results: Any,
                    hwm: int = HWM) -> None:
    import zmq
    context = zmq.Context()
    if mode == "dsmt":
        out = _dsmt_subscriber(context, endpoints, ready, hwm)
    else:
        out = _raw_subscriber(context, endpoints, ready, synced,
                              decode=mode == "dsmt_via_plain_proxy",
                              unpack=mode == "baseline_msgpack", hwm=hwm)
    results.put({"role": "subscriber", **out})
    context.destroy(linger=0)


def _dsmt_subscriber(context: Any, endpoints: tuple, ready: Any, hwm: int = HWM) -> dict:
    from dsmt.bus import Bus
    from dsmt.hub import Endpoints
    sub = Bus(context, Endpoints(*endpoints), hwm=hwm).subscriber(PREFIX)
    cpu = _cpu()
    ready.set()
    received, t_last = 0, 0.0
    recv = sub.recv
    while True:
        event = recv(TIMEOUT)
        if event is None or event.channel == END:
            break
        received += 1
    t_last = time.monotonic()
    cpu = _cpu() - cpu
    missing = sub.gap_detector.missing
    sub.close()
    return {"received": received, "t_last": t_last, "missing": missing, "cpu": cpu}


def _raw_subscriber(context: Any, endpoints: tuple, ready: Any, synced: Any,
                    decode: bool, unpack: bool = False, hwm: int = HWM) -> dict:
    import msgpack
    import zmq
    from dsmt import codec
    from dsmt.gaps import GapDetector
    sock = context.socket(zmq.SUB)
    sock.linger = 0
    sock.rcvhwm = hwm
    sock.rcvtimeo = int(TIMEOUT * 1000)
    sock.connect(endpoints[1])
    sock.subscribe(PREFIX.encode())
    cpu = _cpu()
    ready.set()
    end, sync = END.encode(), SYNC
    received = 0
    detector = GapDetector()
    unpackb = msgpack.unpackb
    while True:
        try:
            channel = sock.recv()
            body = sock.recv()
        except zmq.Again:  # TIMEOUT without an event
            break
        if channel == sync:
            synced.set()
            continue
        if channel == end:
            break
        if decode:
            detector.observe(codec.decode((channel, body)))
        elif unpack:
            unpackb(body)
        received += 1
    t_last = time.monotonic()
    cpu = _cpu() - cpu
    sock.close()
    return {"received": received, "t_last": t_last, "missing": detector.missing, "cpu": cpu}


def run_publisher(mode: str, endpoints: tuple, events: int, go: Any, synced: Any,
                   results: Any, done: Any, hwm: int = HWM) -> None:
    import zmq
    context = zmq.Context()
    if mode in ("baseline", "baseline_msgpack"):
        out = _raw_publisher(context, endpoints, events, go, synced, results, done, hwm,
                             pack=mode == "baseline_msgpack")
    else:
        out = _dsmt_publisher(context, endpoints, events, go, synced, results, done, hwm,
                              via_proxy=mode != "dsmt")
    context.term()
    return out


def _report_then_close(results: Any, done: Any, out: dict, close: Any) -> dict:
    """Report, then close only once the subscriber has everything.

    Closing earlier would leave the tail of the burst to the socket's linger
    (1 s for a Publisher): with a hub or subscriber more than that behind,
    ZeroMQ would discard the rest and the round would wait for an end marker
    that never comes.
    """
    results.put({"role": "publisher", **out})
    done.wait(TIMEOUT)
    close()
    return out


def _raw_publisher(context: Any, endpoints: tuple, events: int, go: Any, synced: Any,
                   results: Any, done: Any, hwm: int = HWM, pack: bool = False) -> dict:
    import msgpack
    import zmq
    sock = context.socket(zmq.PUB)
    sock.sndhwm = hwm
    sock.setsockopt(zmq.XPUB_NODROP, 1)
    sock.connect(endpoints[0])
    frames = encoded_frames(len(CHANNELS))
    fields = [msgpack.unpackb(body) for _, body in frames]
    packer = msgpack.Packer(use_bin_type=True)
    must(all(packer.pack(f) == body for f, (_, body) in zip(fields, frames)),
          "packing the fields again must give the baseline's bytes")
    _sync_through_proxy(sock, synced)
    go.wait()
    n = len(frames)
    cpu = _cpu()
    t_start = time.monotonic()
    if pack:
        pack_ = packer.pack
        for i in range(events):
            sock.send(frames[i % n][0], zmq.SNDMORE)
            sock.send(pack_(fields[i % n]))
    else:
        for i in range(events):
            channel, body = frames[i % n]
            sock.send(channel, zmq.SNDMORE)
            sock.send(body)
    t_end = time.monotonic()
    sock.send(END.encode(), zmq.SNDMORE)
    sock.send(frames[0][1])
    out = {"sent": events, "dropped": 0, "t_start": t_start, "t_end": t_end,
           "cpu": _cpu() - cpu}
    return _report_then_close(results, done, out, lambda: sock.close(linger=0))


def _sync_through_proxy(sock: Any, synced: Any) -> None:
    """Probe until the subscriber sees a probe: its subscription reached us."""
    import zmq
    from dsmt import codec
    from dsmt.event import Address, Sequencer
    body = codec.encode(Sequencer(Address("sync")).make(SYNC.decode(), "t", None))[1]
    while not synced.is_set():
        sock.send(SYNC, zmq.SNDMORE)
        sock.send(body)
        synced.wait(0.005)


def _dsmt_publisher(context: Any, endpoints: tuple, events: int, go: Any, synced: Any,
                    results: Any, done: Any, hwm: int, via_proxy: bool) -> dict:
    from dsmt.bus import Bus
    from dsmt.event import STATUS, Address
    from dsmt.hub import Endpoints
    pub = Bus(context, Endpoints(*endpoints), hwm=hwm).publisher(Address("bench", "0"))
    if via_proxy:
        # The C proxy has no welcome: probe until the subscriber is reached.
        _sync_through_proxy(pub._sock, synced)
    go.wait()
    publish, channels, n = pub.publish, CHANNELS, len(CHANNELS)
    payloads = [_payload(i) for i in range(n)]  # the baseline's payloads, byte for byte
    cpu = _cpu()
    t_start = time.monotonic()
    for i in range(events):
        publish(channels[i % n], STATUS, payloads[i % n], retain=True)
    t_end = time.monotonic()
    pub.publish(END, STATUS, None)
    out = {"sent": pub.sent - 1, "dropped": pub.dropped, "t_start": t_start, "t_end": t_end,
           "cpu": _cpu() - cpu}
    return _report_then_close(results, done, out, pub.close)


# -- memory: the client holding idle subscribers ------------------------------------


def run_idle_client(kind: str, endpoints: tuple, count: int, results: Any) -> None:
    import psutil
    import zmq
    from dsmt.bus import Bus
    from dsmt.hub import Endpoints
    context = zmq.Context()
    context.max_sockets = count + 64
    me = psutil.Process()
    before = me.memory_info().rss
    held = []
    if kind == "bus_subscribers":
        bus = Bus(context, Endpoints(*endpoints))
        held = [bus.subscriber(f"/idle/{i}/") for i in range(count)]
    else:
        from dsmt.hub import sync_channel
        for i in range(count):
            sock = context.socket(zmq.SUB)
            sock.linger = 0
            sock.connect(endpoints[1])
            sock.subscribe(f"/idle/{i}/".encode())
            sock.subscribe(sync_channel(f"raw{i}").encode())  # so the hub answers: connected
            held.append(sock)
        for sock in held:
            must(bool(sock.poll(TIMEOUT * 1000)), "no welcome for a raw socket")
            sock.recv_multipart()
    after = me.memory_info().rss
    results.put({"client_rss_growth_kib": round((after - before) / 1024),
                 "per_socket_kib": round((after - before) / 1024 / count, 1)})
    for item in held:
        item.close()
    context.term()
