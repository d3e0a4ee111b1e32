"""The one place that makes the PsEPR client's and router's asyncio event loops.

uvloop (libuv) when it is installed -- it is a dependency on Linux and
macOS -- else asyncio's own loop; ``DSMT_EVENT_LOOP=asyncio`` in the
environment chooses asyncio's loop anyway (an escape hatch, and the
benchmarks' way to compare the two). Why uvloop: the client and the router
wake up for every event they receive, and at the rates DSMT sees (a node
reads a few to a few hundred events a second) the loop's own cost per
wake-up is a large part of what an event costs. Measured on this project's
2-core machine, a thread reading 800-byte messages from a socket 200 times
a second: asyncio's selector loop ~80 us of CPU per wake-up, uvloop ~30 us,
a bare blocking ``recv`` loop ~15 us.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Coroutine

try:
    import uvloop
except ImportError:  # pragma: no cover - platforms without uvloop
    uvloop = None

ENV = "DSMT_EVENT_LOOP"


def kind() -> str:
    """``"uvloop"`` or ``"asyncio"``: what :func:`new_event_loop` makes now."""
    if uvloop is None or os.environ.get(ENV, "").strip().lower() == "asyncio":
        return "asyncio"
    return "uvloop"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop of the kind :func:`kind` names (see the module docstring)."""
    return uvloop.new_event_loop() if kind() == "uvloop" else asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run(main)`` on a loop from :func:`new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
