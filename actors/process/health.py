"""Health checks of a service: tcp connect, http GET, command; run on a schedule.

A check is a frozen dataclass whose ``run(timeout)`` returns ``(ok, detail)``
and never raises for a failing service:

- :class:`TcpCheck` — a TCP connection to ``host:port`` is accepted;
- :class:`HttpCheck` — ``GET path`` answers with a 2xx status;
- :class:`CommandCheck` — ``argv`` exits 0 (killed, with its process group,
  after the timeout).

:class:`HealthMonitor` runs one check every ``interval`` seconds on a worker
thread (never the caller's), each attempt bounded by ``timeout``, and calls
``on_result`` with a :class:`HealthResult` after each attempt, in the worker
thread. ``healthy`` turns False once ``threshold`` attempts in a row have
failed and True again at the first success; ``changed`` marks the attempt at
which it turned. ``on_result`` must be quick (typically a ``tell()``); if it
raises, the error is logged and the schedule goes on.
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Protocol

from dsmt.clock import Clock, system_clock

log = logging.getLogger(__name__)


class Check(Protocol):
    def run(self, timeout: float) -> tuple[bool, str]: ...


@dataclass(frozen=True)
class TcpCheck:
    port: int
    host: str = "127.0.0.1"

    def run(self, timeout: float) -> tuple[bool, str]:
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                return True, f"tcp {self.host}:{self.port} accepted"
        except OSError as exc:
            return False, f"tcp {self.host}:{self.port}: {exc}"


@dataclass(frozen=True)
class HttpCheck:
    port: int
    path: str = "/"
    host: str = "127.0.0.1"

    def run(self, timeout: float) -> tuple[bool, str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", self.path, headers={"User-Agent": "dsmt-health"})
            status = conn.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            return False, f"http GET {self.path}: {exc}"
        finally:
            conn.close()
        return 200 <= status < 300, f"http GET {self.path}: {status}"


@dataclass(frozen=True)
class CommandCheck:
    argv: tuple[str, ...]
    cwd: str | None = None

    def run(self, timeout: float) -> tuple[bool, str]:
        try:
            proc = subprocess.Popen(self.argv, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
        except OSError as exc:
            return False, f"command {self.argv[0]}: {exc}"
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            return False, f"command {self.argv[0]}: timed out after {timeout}s"
        return code == 0, f"command {self.argv[0]}: exit {code}"


@dataclass(frozen=True)
class HealthPolicy:
    """How often and how patiently to check: seconds, and failures in a row to be unhealthy."""

    interval: float = 10.0
    timeout: float = 2.0
    threshold: int = 3

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.timeout <= 0 or self.threshold < 1:
            raise ValueError("health: interval and timeout must be > 0, threshold >= 1")


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    detail: str
    failures: int
    healthy: bool
    changed: bool
    elapsed: float


_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dsmt-health")


class HealthMonitor:
    """Runs ``check`` per ``policy`` until :meth:`stop`; results go to ``on_result``."""

    def __init__(
        self,
        check: Check,
        policy: HealthPolicy,
        on_result: Callable[[HealthResult], None],
        *,
        clock: Clock | None = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.check = check
        self.policy = policy
        self._on_result = on_result
        self._clock = clock or system_clock()
        self._executor = executor or _executor
        self._lock = threading.Lock()
        self._timer = None
        self._stopped = False
        self._failures = 0
        self._healthy = True

    def start(self, delay: float = 0.0) -> None:
        """First check after ``delay`` seconds, then every ``interval``."""
        self._schedule(delay)

    def stop(self) -> None:
        """No check starts after this; one already running may still report (idempotent)."""
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()

    def _schedule(self, delay: float) -> None:
        with self._lock:
            if not self._stopped:
                self._timer = self._clock.call_later(delay, self._submit)

    def _submit(self) -> None:
        if not self._stopped:
            self._executor.submit(self._attempt)

    def _attempt(self) -> None:
        began = time.monotonic()
        try:
            ok, detail = self.check.run(self.policy.timeout)
        except Exception as exc:
            log.exception("health check %r raised", self.check)
            ok, detail = False, f"check raised {type(exc).__name__}: {exc}"
        with self._lock:
            if self._stopped:
                return
            self._failures = 0 if ok else self._failures + 1
            healthy = ok or (self._healthy and self._failures < self.policy.threshold)
            changed, self._healthy = healthy != self._healthy, healthy
            result = HealthResult(ok, detail, self._failures, healthy, changed,
                                  time.monotonic() - began)
        self._schedule(self.policy.interval)
        try:
            self._on_result(result)
        except Exception:
            log.exception("health result callback failed")
