"""A TCP relay that adds latency: the harness's stand-in for ``tc qdisc … netem``.

This machine's kernel has no ``sch_netem``, so latency is added in user
space. One relay process runs in a router's namespace with one listener per
sliver; a sliver's bridge dials its listener, and every connection is
forwarded to the router. Each chunk read from either side is written to the
other side ``delay`` seconds after it arrived, in order (the delay of the
listener at the chunk's arrival), so a delay of d adds d to each direction
(an event and its reply: 2d).

Usage (``--route`` repeatable)::

    python -m tests.netns.delay --route 0.0.0.0:24001=127.0.0.1:23345 --control PATH

Once every listener is bound it prints ``relay listening`` and flushes.
Control, a Unix socket at PATH (not scoped by the network namespace), one
line per request, one line per reply::

    delay PORT SECONDS      -> ok          (PORT: a listener's port; 0 = every listener)
    show                    -> {"24001": 0.2, ...}

A connection whose other side cannot be reached (the router is down) is
closed at once, so the sliver reconnects as it would to a dead router.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys

CHUNK = 65536


class Relay:
    def __init__(self, routes: dict[tuple[str, int], tuple[str, int]]) -> None:
        self.routes = routes
        self.delay = {port: 0.0 for _, port in routes}

    async def serve(self, control: str) -> None:
        for (host, port), target in self.routes.items():
            await asyncio.start_server(
                lambda r, w, p=port, t=target: self._accepted(r, w, p, t), host, port,
                reuse_address=True)
        if os.path.exists(control):
            os.unlink(control)
        await asyncio.start_unix_server(self._control, control)
        print("relay listening", flush=True)
        await asyncio.Event().wait()

    async def _accepted(self, reader, writer, port: int, target: tuple[str, int]) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pump(reader, up_writer, port),
                             self._pump(up_reader, writer, port))

    async def _pump(self, reader, writer, port: int) -> None:
        """Copy ``reader`` to ``writer``, each chunk ``delay[port]`` after it arrived.

        Each chunk is handed to the loop's timer for its due time; a chunk is
        never due before the one ahead of it (a delay lowered meanwhile does
        not reorder the stream), so each timer writes the oldest chunk left.
        """
        loop = asyncio.get_running_loop()
        pending: collections.deque = collections.deque()
        closed = loop.create_future()
        due = 0.0

        def deliver() -> None:
            data = pending.popleft()
            if data is None:
                writer.close()
                closed.set_result(None)
            elif not writer.is_closing():
                writer.write(data)

        def later(data: bytes | None) -> None:
            nonlocal due
            due = max(loop.time() + self.delay[port], due)
            pending.append(data)
            loop.call_at(due, deliver)

        try:
            while data := await reader.read(CHUNK):
                later(data)
        except OSError:
            pass
        later(None)  # the end: close once everything before it went out
        await closed

    async def _control(self, reader, writer) -> None:
        while line := await reader.readline():
            words = line.decode(errors="replace").split()
            if words[:1] == ["delay"] and len(words) == 3:
                port, seconds = int(words[1]), float(words[2])
                for known in self.delay:
                    if port in (0, known):
                        self.delay[known] = seconds
                reply = "ok"
            elif words == ["show"]:
                reply = json.dumps({str(p): d for p, d in self.delay.items()})
            else:
                reply = "error: expected 'delay PORT SECONDS' or 'show'"
            writer.write(reply.encode() + b"\n")
            await writer.drain()
        writer.close()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.netns.delay", description=__doc__)
    parser.add_argument("--route", action="append", required=True,
                        help="LISTEN_HOST:PORT=TARGET_HOST:PORT")
    parser.add_argument("--control", required=True, help="Unix socket path for control")
    args = parser.parse_args(argv)
    routes = {}
    for route in args.route:
        listen, _, target = route.partition("=")
        routes[_address(listen)] = _address(target)
    try:
        asyncio.run(Relay(routes).serve(args.control))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
