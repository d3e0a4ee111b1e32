"""The one way the benchmarks wait for a condition: poll it, give up with a clear error."""

from __future__ import annotations

import time
from typing import Any, Callable


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               poll: float = 0.01) -> Any:
    """The first truthy value of ``predicate()``; RuntimeError naming ``what`` after ``timeout``.

    Benchmarks poll (``poll`` seconds apart) where tests would wait on an
    event: what they wait for lives in other processes (a pid, a port, a
    lease), and a short poll is part of what restart latency is measured
    against, identically for every tool.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
