#!/usr/bin/env python3
"""The DSMT demo service: a tiny HTTP server that says who and how loaded it is.

Endpoints (JSON):
  GET  /health  200 {"status": "ok", "sliver", "version", "load", "uptime"}
                (503 {"status": "failing", ...} when DEMO_MODE=unhealthy)
  GET  /load    200 {"load", "sliver", "version", "requests"}
  POST /load    body {"load": <number>} sets the reported load (scaling tests);
                {"load": null} returns to the machine's load average per CPU

Environment: PORT (listen port; 0 picks a free one; the manifest's [env]
gives the default), HOST (default 127.0.0.1), DSMT_SLIVER (the sliver name),
DSMT_VERSION (set by DSMT; else read from dsmt-app.toml), DEMO_LOAD (fixed
starting load), DEMO_MODE = ok | unhealthy | crash (crash exits with code 3
before listening, for the "fatal" tests).

Prints one line "demo-app <version> (<sliver>) listening on <host>:<port>"
once it accepts connections; on SIGTERM or SIGINT it stops accepting,
finishes, prints "demo-app: stopped" and exits 0. Standard library only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent


class State:
    def __init__(self, version: str, sliver: str, mode: str, load: float | None) -> None:
        self.version = version
        self.sliver = sliver
        self.mode = mode
        self.load = load
        self.requests = 0
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def current_load(self) -> float:
        if self.load is not None:
            return self.load
        return round(os.getloadavg()[0] / (os.cpu_count() or 1), 3)


class Handler(BaseHTTPRequestHandler):
    server_version = "dsmt-demo"
    state: State

    def do_GET(self) -> None:
        s = self.state
        with s.lock:
            s.requests += 1
        if self.path == "/health":
            healthy = s.mode != "unhealthy"
            self.reply(200 if healthy else 503, {
                "status": "ok" if healthy else "failing", "sliver": s.sliver,
                "version": s.version, "load": s.current_load(),
                "uptime": round(time.monotonic() - s.started, 3),
            })
        elif self.path == "/load":
            self.reply(200, {"load": s.current_load(), "sliver": s.sliver,
                             "version": s.version, "requests": s.requests})
        else:
            self.reply(404, {"error": f"no such path {self.path}"})

    def do_POST(self) -> None:
        if self.path != "/load":
            return self.reply(404, {"error": f"no such path {self.path}"})
        try:
            length = int(self.headers.get("Content-Length", "0"))
            value = json.loads(self.rfile.read(min(length, 4096)) or b"{}").get("load")
            if value is not None and not isinstance(value, (int, float)):
                raise ValueError("load must be a number or null")
        except (ValueError, AttributeError) as exc:
            return self.reply(400, {"error": str(exc)})
        self.state.load = None if value is None else float(value)
        self.reply(200, {"load": self.state.current_load()})

    def reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"demo-app: {self.address_string()} {format % args}\n")


def main() -> int:
    mode = os.environ.get("DEMO_MODE", "ok")
    if mode == "crash":
        print("demo-app: DEMO_MODE=crash, exiting before listening", file=sys.stderr, flush=True)
        return 3
    with open(HERE / "dsmt-app.toml", "rb") as f:
        manifest = tomllib.load(f)
    version = os.environ.get("DSMT_VERSION", manifest["version"])
    sliver = os.environ.get("DSMT_SLIVER", socket.gethostname())
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", manifest.get("env", {}).get("PORT", "8080")))
    load = os.environ.get("DEMO_LOAD")
    Handler.state = State(version, sliver, mode, float(load) if load else None)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True

    def stop(signum: int, frame: object) -> None:
        # shutdown() waits for serve_forever() to return, so it cannot run in this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"demo-app {version} ({sliver}) listening on {host}:{server.server_port}", flush=True)
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    print("demo-app: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
