"""Router benchmark: events/s and latency publisher -> router -> subscriber, router RSS.

Run: ``python -m benchmarks router`` (JSON on stdout). The router runs in its
own process (``dsmt router``); publisher and subscriber are raw sockets in
this process, so the figures are the router's, not a client library's.

Figures, each next to its baseline from the same run:

- ``lxml_baseline``: raw lxml parse + serialize of the same stanzas, in this
  process (what one core can do with the XML alone);
- ``throughput``: events/s through the router at full speed (the publisher
  writes as fast as the router reads);
- ``latency``: p50/p99 (ms) at half the measured maximum rate, paced;
- ``memory``: router RSS idle, and with 1,000 logged-in clients holding 10
  leases each.
"""

from __future__ import annotations

import json
import os
import re
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from lxml import etree

from dsmt.event import ATTRIBUTE, LEASE, Address, Sequencer
from gateways.psepr import accounts, stream

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench"
END = b"</message>"
_ID = re.compile(rb'd:id="([^"]+)"')


def main(argv: list[str] | None = None) -> dict:
    args = argv or []
    events = int(args[0]) if args else 60000
    _raise_fd_limit()
    stanzas = _stanzas(min(events, 20000))
    result = {
        "benchmark": "router",
        "stanza_bytes": len(stanzas[0]),
        "event_bytes": len(_event_part(stanzas[0])),
    }
    result["lxml_baseline"] = _lxml_baseline(stanzas)
    with tempfile.TemporaryDirectory() as tmp, _Router(Path(tmp)) as router:
        result["throughput"] = _throughput(router.address, stanzas, events)
        rate = result["throughput"]["events_per_s"] / 2
        result["latency"] = _latency(router.address, rate, seconds=3.0)
        result["memory"] = _memory(router, clients=1000, leases=10)
    base = result["lxml_baseline"]["events_per_s"]
    result["throughput"]["ratio_to_lxml_baseline"] = round(
        result["throughput"]["events_per_s"] / base, 3)
    result["targets"] = {"events_per_s": 20000, "p99_ms_at_half_rate": 10.0}
    print(json.dumps(result, indent=2))
    return result


def _stanzas(n: int) -> list[bytes]:
    seq = Sequencer(Address("pub", "1"))
    return [stream.message_stanza(
        seq.make("/b/l/", ATTRIBUTE, {"field": "load", "value": f"{i % 1000:04d}"}),
        to="psepr_registry@bench") for i in range(n)]


def _event_part(stanza: bytes) -> bytes:
    return stanza[stanza.index(b"<event"):stanza.index(b"</event>") + 8]


def _lxml_baseline(stanzas: list[bytes]) -> dict:
    start = time.perf_counter()
    for data in stanzas:
        etree.tostring(etree.fromstring(data))
    elapsed = time.perf_counter() - start
    return {"events_per_s": round(len(stanzas) / elapsed), "what": "lxml fromstring+tostring"}


class _Router:
    """``dsmt router`` in a subprocess with generous limits."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def __enter__(self) -> "_Router":
        hashed = accounts.hash_password(PASSWORD)
        (self.tmp / "router.toml").write_text(
            '[router]\nname = "bench"\nlisten = "127.0.0.1:0"\nheartbeat = "infinity"\n'
            '[limits]\nrate = 10000000.0\nburst = 1000000\nmax_queue = 268435456\n'
            f'[accounts]\npub = "{hashed}"\nsub = "{hashed}"\nc = "{hashed}"\n')
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from dsmt.cli import main; main()", "router",
             "--config", str(self.tmp / "router.toml")],
            stdout=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        line = self.proc.stdout.readline().decode().split()
        host, port = line[4].rsplit(":", 1)
        self.address = (host, int(port))
        self.ps = psutil.Process(self.proc.pid)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _login(address, service: str, leases: list[str] = ()) -> socket.socket:
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


def _throughput(address, stanzas: list[bytes], events: int) -> dict:
    sub = _login(address, "sub", ["/b/"])
    _read_until(sub, b"<op>lease</op>", 1)
    pub = _login(address, "pub")
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
    start = time.perf_counter()
    thread.start()
    for chunk in chunks:
        pub.sendall(chunk)
    done.wait(120)
    elapsed = time.perf_counter() - start
    pub.close()
    sub.close()
    return {"events": received[0], "seconds": round(elapsed, 3),
            "events_per_s": round(received[0] / elapsed)}


def _latency(address, rate: float, seconds: float) -> dict:
    n = int(rate * seconds)
    stanzas = _stanzas(n)
    ids = [_ID.search(s).group(1) for s in stanzas]
    sub = _login(address, "sub", ["/b/"])
    _read_until(sub, b"<op>lease</op>", 1)
    pub = _login(address, "pub")
    _read_until(pub, b"type=\"result\"", 1)
    sent: dict[bytes, float] = {}
    got: dict[bytes, float] = {}
    done = threading.Event()

    def reader() -> None:
        buf = b""
        sub.settimeout(30)
        while len(got) < n:
            chunk = sub.recv(1 << 20)
            now = time.perf_counter()
            if not chunk:
                break
            buf += chunk
            cut = buf.rfind(END)
            if cut < 0:
                continue
            for match in _ID.finditer(buf, 0, cut):
                got[match.group(1)] = now
            buf = buf[cut + len(END):]
        done.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    start = time.perf_counter()
    i = 0
    while i < n:
        due = min(n, int((time.perf_counter() - start) * rate) + 1)
        if due > i:
            now = time.perf_counter()
            pub.sendall(b"".join(stanzas[i:due]))
            for k in range(i, due):
                sent[ids[k]] = now
            i = due
        else:
            time.sleep(0.0002)
    done.wait(60)
    pub.close()
    sub.close()
    lat = sorted((got[k] - sent[k]) * 1000 for k in got if k in sent)
    return {
        "rate_events_per_s": round(rate),
        "events": len(lat),
        "p50_ms": round(statistics.median(lat), 3),
        "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 3),
        "max_ms": round(lat[-1], 3),
    }


def _memory(router: _Router, clients: int, leases: int) -> dict:
    idle = router.ps.memory_info().rss
    sel = selectors.DefaultSelector()
    counts: dict[socket.socket, int] = {}
    socks = []
    for c in range(clients):
        sock = _login(router.address, "c", [f"/m/{c}/{k}/" for k in range(leases)])
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
