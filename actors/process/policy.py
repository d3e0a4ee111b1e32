"""How a process is started, judged, restarted and stopped: :class:`ProcessPolicy`.

Field names and defaults follow supervisord's ``[program:x]`` where it has
one, so its users know them:

- ``startsecs`` — the process must stay up this long to count as started
  (``starting`` → ``running``); a passing health check counts earlier.
  0 means running as soon as it is spawned.
- ``startretries`` — failed starts in a row (an exit while ``starting``, or a
  spawn error) retried, each after ``backoff.delay(attempt)`` in ``backoff``,
  before giving up in ``fatal``.
- ``autorestart`` — after an exit from ``running``: ``always`` restart,
  ``unexpected`` restart unless the exit code is in ``exitcodes``,
  ``never`` stay ``exited``. A restart from ``running`` is immediate.
- ``stopsignal`` / ``stopwaitsecs`` — the stop signal for the process
  group, and the grace before SIGKILL (None: wait forever).
- ``health`` — an optional :class:`HealthSpec`; with ``restart_unhealthy``,
  a process that turns unhealthy while ``running`` is stopped and restarted.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from dsmt.childspec import Backoff

from actors.process.health import Check, HealthPolicy

ALWAYS = "always"
UNEXPECTED = "unexpected"
NEVER = "never"
AUTORESTART = (ALWAYS, UNEXPECTED, NEVER)


@dataclass(frozen=True)
class HealthSpec:
    """A check and its schedule; the first attempt comes ``delay`` seconds after spawn."""

    check: Check
    policy: HealthPolicy = field(default_factory=HealthPolicy)
    delay: float = 0.0


@dataclass(frozen=True)
class ProcessPolicy:
    startsecs: float = 1.0
    startretries: int = 3
    autorestart: str = UNEXPECTED
    exitcodes: frozenset[int] = frozenset({0})
    stopsignal: int = signal.SIGTERM
    stopwaitsecs: float | None = 10.0
    backoff: Backoff = field(default_factory=lambda: Backoff(min=1.0, max=30.0, factor=2.0,
                                                             jitter=0.1, reset_after=None))
    health: HealthSpec | None = None
    restart_unhealthy: bool = True

    def __post_init__(self) -> None:
        if self.autorestart not in AUTORESTART:
            raise ValueError(f"autorestart must be one of {AUTORESTART}")
        if self.startsecs < 0 or self.startretries < 0:
            raise ValueError("startsecs and startretries must be >= 0")
        if self.stopwaitsecs is not None and self.stopwaitsecs <= 0:
            raise ValueError("stopwaitsecs must be > 0 or None")
        object.__setattr__(self, "exitcodes", frozenset(self.exitcodes))
