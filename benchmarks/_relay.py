"""The router benchmark's latency baseline: a bare asyncio relay in its own process.

``python -m benchmarks._relay`` listens on a free loopback port, prints
``listening on HOST:PORT`` and forwards, unparsed and unchanged, every byte
a ``pub`` connection sends to every ``sub`` connection. A connection names
its role in its first line (``pub\\n`` or ``sub\\n``) and gets ``ok\\n``.

It is what any Python asyncio forwarder costs on this machine: the same
event loop (the kind the router runs on, see :mod:`gateways.psepr._loop`;
``DSMT_EVENT_LOOP`` switches both), the same sockets (TCP_NODELAY, as
asyncio sets it), the same scheduling of one Python process among the
others, and none of the router's work (XML parsing, routing, leases).
Measured in the same rounds as the router, its latency tells which part of
the router's comes from the router and which from the machine.
:class:`RelayProcess` runs it with the interface
:class:`benchmarks._router_process.RouterProcess` has.
"""

from __future__ import annotations

import asyncio
import socket
import sys

from benchmarks._router_process import ServedProcess
from gateways.psepr._loop import run


class RelayProcess(ServedProcess):
    """The relay in a subprocess (``python -m benchmarks._relay``)."""

    command = (sys.executable, "-m", "benchmarks._relay")

    def connect(self, role: str) -> socket.socket:
        """A socket joined as ``role`` (``pub`` or ``sub``), acknowledged by the relay."""
        sock = socket.create_connection(self.address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(role.encode() + b"\n")
        sock.settimeout(30)
        if sock.recv(3) != b"ok\n":
            raise ConnectionError(f"relay refused {role}")
        return sock


async def _serve() -> None:
    subscribers: set[asyncio.StreamWriter] = set()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        role = await reader.readline()
        writer.write(b"ok\n")
        if role == b"sub\n":
            subscribers.add(writer)
            await reader.read()  # until the subscriber closes
            subscribers.discard(writer)
        elif role == b"pub\n":
            while data := await reader.read(1 << 16):
                for sub in subscribers:
                    sub.write(data)
        writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"relay: listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    run(_serve())
