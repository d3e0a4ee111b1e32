"""The metric sampler asks each instance for its metric over HTTP and keeps the latest values."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from actors.metrics import MetricSampler, http_metric
from dsmt.testing import wait_for


@pytest.fixture
def instance():
    class Handler(BaseHTTPRequestHandler):
        body = {"load": 0.75, "sliver": "s1"}

        def do_GET(self):
            data = json.dumps(self.body if self.path == "/load" else {"error": "no"}).encode()
            self.send_response(200 if self.path == "/load" else 404)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server.server_port, Handler
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_an_instance_reports_its_metric_under_the_metric_name(instance):
    port, _ = instance
    assert http_metric(port, "load", 1.0) == 0.75
    assert http_metric(port, "queue", 1.0) is None


def test_the_sampler_keeps_one_value_per_answering_instance(instance):
    port, handler = instance
    sampler = MetricSampler(0.05).start()
    try:
        sampler.set_targets({"web": ("load", [port, _closed_port()])})
        wait_for(lambda: sampler.snapshot() == {"web": {"load": [0.75]}}, timeout=5)
        handler.body = {"load": 0.1}
        wait_for(lambda: sampler.snapshot() == {"web": {"load": [0.1]}}, timeout=5)
        sampler.set_targets({})
        assert sampler.snapshot() == {}
    finally:
        sampler.stop()


def test_a_fetch_seam_replaces_http():
    sampler = MetricSampler(1.0, fetch=lambda port, metric, timeout: port / 10)
    sampler.set_targets({"web": ("load", [1, 2]), "idle": ("load", [])})
    sampler.sample()
    assert sampler.snapshot() == {"web": {"load": [0.1, 0.2]}}


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
