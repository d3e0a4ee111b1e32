"""The health window of an upgrade: the probes and the timer that judge a new version.

Private to :class:`actors.app.AppSupervisor`, whose module docstring states
the rule (every instance must pass once within ``health_window`` seconds; an
instance that passed and turns unhealthy fails the upgrade). An
:class:`UpgradeWatch` only runs the probes and the timer: each probe result
comes back to the app as a :class:`Probe` and the end of the window as a
:class:`WindowEnd`, both ``tell``\\ed to the app's actor from the monitors'
and the clock's threads, so the app decides everything in its own thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsmt.actor import tell
from dsmt.clock import Clock

from actors.process.health import HealthMonitor, HealthResult
from actors.service import health_check, health_policy


@dataclass
class UpgradeWatch:
    """The health window of an upgrade: which instances passed, the timer, the probes."""

    token: int
    previous: str
    monitors: list[HealthMonitor] = field(default_factory=list)
    passed: set[int] = field(default_factory=set)
    timer: Any = None
    last: str = "no result yet"

    def start(self, ref: Any, name: str, health: Any, ports: list[int], version_dir: Path,
              window: float, clock: Clock) -> None:
        """Probe each instance of ``name`` (with a ``health`` check); end in ``window`` seconds."""
        token = self.token
        if health is not None:
            for index, port in enumerate(ports):
                def deliver(result: HealthResult, index: int = index) -> None:
                    tell(ref, Probe(name, token, index, result))
                monitor = HealthMonitor(health_check(health, port, version_dir),
                                        health_policy(health), deliver, clock=clock)
                self.monitors.append(monitor)
                monitor.start(health.start_period)
        self.timer = clock.call_later(window, lambda: tell(ref, WindowEnd(name, token)))

    def stop(self) -> None:
        """Stop the probes and the timer (what they already sent may still arrive)."""
        for monitor in self.monitors:
            monitor.stop()
        if self.timer is not None:
            self.timer.cancel()


@dataclass(frozen=True)
class Probe:
    """One health check result of instance ``instance`` in the window ``token``."""

    service: str
    token: int
    instance: int
    result: HealthResult


@dataclass(frozen=True)
class WindowEnd:
    """The window ``token`` of ``service`` is over."""

    service: str
    token: int
