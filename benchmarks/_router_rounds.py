"""The router benchmark's rounds, a raw-socket publisher and subscriber (:mod:`benchmarks.router`).

:func:`login` opens a PsEPR connection (stream header, authentication, leases);
:func:`throughput_round` runs one round at full speed through the router, and
:func:`latency_round` one round paced at a rate through the router or the relay
baseline (:func:`router_pair`, :func:`relay_pair` give its publisher and
subscriber), timing each event by its ``d:id`` from just before the publisher
writes to when the subscriber thread reads it, and, on Linux, to when the
kernel received it (``SO_TIMESTAMPNS``). Each returns the round's raw figures;
:mod:`benchmarks.router` summarises them.
"""

from __future__ import annotations

import re
import socket
import statistics
import struct
import sys
import threading
import time

from benchmarks._relay import RelayProcess
from benchmarks._router_process import PASSWORD, CpuShare, RouterProcess
from dsmt.event import LEASE, Address, Sequencer
from gateways.psepr import stream

END = b"</message>"
_ID = re.compile(rb'd:id="([^"]+)"')
# The kernel's receive time of the bytes read (Linux; socket has no name for it).
SO_TIMESTAMPNS = 35 if sys.platform.startswith("linux") else None


def login(address, service: str, leases: list[str] = ()) -> socket.socket:
    sock = socket.create_connection(address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    seq = Sequencer(Address(service, "1"))
    data = [stream.stream_header(to="bench"), stream.auth_set("a", service, PASSWORD, "1")]
    for i, channel in enumerate(leases):
        data.append(stream.message_stanza(seq.make(channel, LEASE, {
            "op": "register", "identifier": f"l{i}", "duration": 600.0, "type": None}),
            to="psepr_registry@bench"))
    sock.sendall(b"".join(data))
    return sock


def _read_until(sock: socket.socket, marker: bytes, count: int, timeout: float = 30.0) -> bytes:
    sock.settimeout(timeout)
    buf = b""
    while buf.count(marker) < count:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("router closed the connection")
        buf += chunk
    return buf


def throughput_round(router: RouterProcess, stanzas: list[bytes], events: int) -> dict:
    """One round at full speed: the publisher writes as fast as the router reads."""
    sub = login(router.address, "sub", ["/b/"])
    _read_until(sub, b"<op>lease</op>", 1)
    pub = login(router.address, "pub")
    _read_until(pub, b"type=\"result\"", 1)
    rounds = -(-events // len(stanzas))
    chunks = []
    batch = 128
    for _ in range(rounds):
        for i in range(0, len(stanzas), batch):
            chunks.append(b"".join(stanzas[i:i + batch]))
    total = rounds * len(stanzas)
    received = [0]
    done = threading.Event()

    def reader() -> None:
        tail = b""
        sub.settimeout(60)
        while received[0] < total:
            chunk = sub.recv(1 << 20)
            if not chunk:
                break
            data = tail + chunk
            received[0] += data.count(END)
            tail = data[-(len(END) - 1):]
        done.set()

    thread = threading.Thread(target=reader, daemon=True)
    cpu = router.cpu()
    share = CpuShare(router).start()
    start = time.perf_counter()
    thread.start()
    for chunk in chunks:
        pub.sendall(chunk)
    done.wait(120)
    elapsed = time.perf_counter() - start
    cpu = router.cpu() - cpu
    contention = share.stop()
    pub.close()
    sub.close()
    return {"events_per_s": received[0] / elapsed, "lost": total - received[0],
            "router_cpu_us": cpu / max(received[0], 1) * 1e6, "contention": contention}


def router_pair(router: RouterProcess) -> tuple[socket.socket, socket.socket]:
    """A subscriber holding a lease on ``/b/`` and a logged-in publisher."""
    sub = login(router.address, "sub", ["/b/"])
    _read_until(sub, b"<op>lease</op>", 1)
    pub = login(router.address, "pub")
    _read_until(pub, b"type=\"result\"", 1)
    return pub, sub


def relay_pair(relay: RelayProcess) -> tuple[socket.socket, socket.socket]:
    sub = relay.connect("sub")
    return relay.connect("pub"), sub


def latency_round(served, pair: tuple[socket.socket, socket.socket], stanzas: list[bytes],
                  rate: float) -> dict:
    """One round paced at ``rate``: latency of each event publisher -> ``served`` -> subscriber
    (``served``: the router, or the relay baseline; ``pair``: publisher and subscriber)."""
    n = len(stanzas)
    ids = [_ID.search(s).group(1) for s in stanzas]
    pub, sub = pair
    sent: dict[bytes, float] = {}
    got: dict[bytes, float] = {}
    arrived: dict[bytes, float] = {}
    done = threading.Event()
    if SO_TIMESTAMPNS is not None:
        sub.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)

    def reader() -> None:
        buf = b""
        sub.settimeout(30)
        while len(got) < n:
            chunk, ancillary, _, _ = sub.recvmsg(1 << 20, 256)
            now = time.time()  # the kernel's receive time is on the same (real-time) clock
            if not chunk:
                break
            kernel = _received_at(ancillary)
            buf += chunk
            cut = buf.rfind(END)
            if cut < 0:
                continue
            for match in _ID.finditer(buf, 0, cut):
                got[match.group(1)] = now
                if kernel is not None:
                    arrived[match.group(1)] = kernel
            buf = buf[cut + len(END):]
        done.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    cpu = served.cpu()
    share = CpuShare(served).start()
    start = time.time()
    i = 0
    while i < n:
        due = min(n, int((time.time() - start) * rate) + 1)
        if due > i:
            now = time.time()
            pub.sendall(b"".join(stanzas[i:due]))
            for k in range(i, due):
                sent[ids[k]] = now
            i = due
        else:
            time.sleep(0.0002)
    done.wait(60)
    cpu = served.cpu() - cpu
    contention = share.stop()
    pub.close()
    sub.close()
    lat = sorted((got[k] - sent[k]) * 1000 for k in got if k in sent)
    at_socket = sorted((arrived[k] - sent[k]) * 1000 for k in arrived if k in sent)
    return {
        "events": len(lat),
        "lost": n - len(lat),
        **_percentiles(lat),
        "at_socket": _percentiles(at_socket) if len(at_socket) == len(lat) else None,
        "router_cpu_us": cpu / max(len(lat), 1) * 1e6,
        "contention": contention,
    }


def _percentiles(lat: list[float]) -> dict:
    return {"p50_ms": statistics.median(lat), "p99_ms": lat[int(len(lat) * 0.99) - 1],
            "max_ms": lat[-1]}


def _received_at(ancillary) -> float | None:
    """The kernel's receive time (UNIX seconds) in recvmsg's ancillary data, if there."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds + nanoseconds * 1e-9
    return None
