"""The app's own metrics: what each running instance of a service reports, sampled on this sliver.

A :class:`MetricSampler` is a thread of the coordinator. Every ``interval``
seconds it asks each target instance for its metric with
``GET http://127.0.0.1:<port>/<metric>`` (the demo app answers ``/load``
with ``{"load": 0.42, ...}``; a bare JSON number is accepted too) and keeps
the latest values. The coordinator puts :meth:`snapshot` in its heartbeat
(``metrics: {service: {metric: [value per instance]}}``), so every
coordinator sees the metric of every instance of the slice.

Threads: :meth:`set_targets` and :meth:`snapshot` may be called from any
thread (the coordinator's); the HTTP requests run only in the sampler's own
thread, never in an actor's mailbox loop. An instance that does not answer
(starting, stopped, no such path) is left out of the snapshot: no value is
better than a made-up one. ``fetch`` is the seam for tests.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Callable, Mapping, Sequence

log = logging.getLogger(__name__)

Fetch = Callable[[int, str, float], "float | None"]


def http_metric(port: int, metric: str, timeout: float) -> float | None:
    """The value an instance on loopback ``port`` reports at ``/<metric>``, or None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{metric}", timeout=timeout) as r:
            body = json.loads(r.read(65536) or b"null")
    except (OSError, ValueError):
        return None
    value = body.get(metric) if isinstance(body, dict) else body
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class MetricSampler:
    """Polls the instances' metric every ``interval`` seconds in a thread of its own."""

    def __init__(self, interval: float, fetch: Fetch = http_metric, name: str = "metrics") -> None:
        self.interval = interval
        self.fetch = fetch
        self._targets: dict[str, tuple[str, tuple[int, ...]]] = {}
        self._values: dict[str, dict[str, list[float]]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> MetricSampler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def set_targets(self, targets: Mapping[str, tuple[str, Sequence[int]]]) -> None:
        """Sample ``service → (metric, ports)`` from now on (at once if the targets changed)."""
        new = {s: (m, tuple(p)) for s, (m, p) in targets.items() if p}
        with self._lock:
            if new == self._targets:
                return
            self._targets = new
            self._values = {s: v for s, v in self._values.items() if s in new}
        self._wake.set()

    def snapshot(self) -> dict[str, dict[str, list[float]]]:
        """The latest values: ``service → {metric: [value per answering instance]}``."""
        with self._lock:
            return {s: {m: list(v) for m, v in values.items()}
                    for s, values in self._values.items()}

    def sample(self) -> None:
        """One round over the targets (the thread calls it; tests may too)."""
        with self._lock:
            targets = dict(self._targets)
        timeout = max(0.05, min(1.0, self.interval / 2))
        fresh = {}
        for service, (metric, ports) in targets.items():
            values = [self.fetch(port, metric, timeout) for port in ports]
            fresh[service] = {metric: [round(v, 4) for v in values if v is not None]}
        with self._lock:
            for service, values in fresh.items():
                if self._targets.get(service, (None, ()))[1] == targets[service][1]:
                    self._values[service] = values

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.sample()
            except Exception:  # the thread's boundary: keep sampling, say why a round failed
                log.exception("metric sampler: a round failed")
            self._wake.wait(self.interval)
