"""Health checks against real loopback servers and real commands, and their schedule."""

from __future__ import annotations

import http.server
import queue
import socket
import sys
import threading

import pytest

from actors.process import (
    CommandCheck,
    HealthMonitor,
    HealthPolicy,
    HttpCheck,
    TcpCheck,
)
from dsmt.testing import FakeClock

pytestmark = pytest.mark.timeout(30)

BOUND = 5.0


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        code = {"/ok": 200, "/created": 201, "/bad": 500, "/moved": 301}.get(self.path, 404)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(BOUND)


def test_tcp_check_passes_when_the_port_accepts(listener):
    ok, detail = TcpCheck(listener.getsockname()[1]).run(1.0)
    assert ok, detail


def test_tcp_check_fails_when_nothing_listens():
    ok, detail = TcpCheck(free_port()).run(1.0)
    assert not ok and "refused" in detail.lower()


@pytest.mark.parametrize("path,expected", [("/ok", True), ("/created", True), ("/bad", False),
                                           ("/moved", False), ("/missing", False)])
def test_http_check_passes_only_on_a_2xx_answer(http_port, path, expected):
    ok, detail = HttpCheck(http_port, path).run(1.0)
    assert ok is expected, detail


def test_http_check_fails_on_a_port_that_accepts_but_never_answers(listener):
    ok, detail = HttpCheck(listener.getsockname()[1]).run(0.2)
    assert not ok and "timed out" in detail


def test_command_check_passes_on_exit_zero_and_fails_otherwise():
    assert CommandCheck((sys.executable, "-c", "pass")).run(BOUND)[0]
    ok, detail = CommandCheck((sys.executable, "-c", "raise SystemExit(2)")).run(BOUND)
    assert not ok and detail.endswith("exit 2")


def test_command_check_is_killed_after_its_timeout():
    ok, detail = CommandCheck((sys.executable, "-c", "import signal; signal.pause()")).run(0.2)
    assert not ok and "timed out" in detail


def test_a_missing_check_command_is_a_failure_not_an_exception(tmp_path):
    ok, _ = CommandCheck((str(tmp_path / "nope"),)).run(1.0)
    assert not ok


class _Scripted:
    """A check answering from a list, then always the last answer."""

    def __init__(self, answers):
        self.answers = list(answers)

    def run(self, timeout):
        ok = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return ok, "scripted"


def collect(clock, check, policy):
    results: queue.Queue = queue.Queue()
    monitor = HealthMonitor(check, policy, results.put, clock=clock)
    return monitor, results


def test_monitor_turns_unhealthy_after_threshold_failures_in_a_row_and_back_on_success():
    clock = FakeClock()
    check = _Scripted([True, False, False, True, False, False, False, True])
    monitor, results = collect(clock, check, HealthPolicy(interval=10, timeout=1, threshold=3))
    monitor.start()
    clock.advance(0)
    seen = []
    for _ in range(8):
        seen.append(results.get(timeout=BOUND))
        clock.advance(10)  # the next attempt was scheduled before the result was delivered
    monitor.stop()
    assert [r.failures for r in seen] == [0, 1, 2, 0, 1, 2, 3, 0]
    assert [r.healthy for r in seen] == [True, True, True, True, True, True, False, True]
    assert [i for i, r in enumerate(seen) if r.changed] == [6, 7]


def test_monitor_checks_a_real_port_off_the_callers_thread(listener):
    results: queue.Queue = queue.Queue()
    callers = set()

    def record(result):
        callers.add(threading.get_ident())
        results.put(result)

    monitor = HealthMonitor(TcpCheck(listener.getsockname()[1]), HealthPolicy(interval=0.01),
                            record)
    monitor.start()
    try:
        assert results.get(timeout=BOUND).ok
        assert results.get(timeout=BOUND).ok
    finally:
        monitor.stop()
    assert threading.get_ident() not in callers


def test_a_stopped_monitor_starts_no_further_check():
    clock = FakeClock()
    monitor, results = collect(clock, _Scripted([True]), HealthPolicy(interval=1))
    monitor.start(delay=5)
    monitor.stop()
    clock.advance(100)
    assert clock.pending() == [] and results.empty()
