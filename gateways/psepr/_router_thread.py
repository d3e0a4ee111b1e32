"""Running a :class:`gateways.psepr.router.Router`: in a thread of its own, or until cancelled.

Imported through :mod:`gateways.psepr.router`, which re-exports
:class:`RouterThread` (tests, embedding) and :func:`serve` (``dsmt router``).
Both build the router inside the call: ``router`` imports this module, so
importing ``Router`` at the top here would make the two modules import
each other.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Callable

from gateways.psepr._loop import new_event_loop
from gateways.psepr.config import RouterConfig

if TYPE_CHECKING:
    from gateways.psepr.router import Router


class RouterThread:
    """A router running in its own thread and event loop (tests, benchmarks, embedding).

    ``start()`` returns once the listeners are bound (``address`` is known)
    and raises what the router's start raised. ``call(fn)`` runs ``fn()`` in
    the router's loop and returns its result. ``stop()`` is idempotent.
    """

    def __init__(self, config: RouterConfig) -> None:
        from gateways.psepr.router import Router

        self.router = Router(config)
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"router-{config.name}",
                                        daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.router.address

    @property
    def mesh_address(self) -> tuple[str, int] | None:
        return self.router.mesh_address

    def start(self, timeout: float = 10.0) -> RouterThread:
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError("router did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.router.start())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.router.stop())
        self.loop.close()

    def call(self, fn: Callable, timeout: float = 10.0):
        future = asyncio.run_coroutine_threadsafe(_call(fn), self.loop)
        return future.result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive() and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)


async def _call(fn: Callable):
    return fn()


async def serve(config: RouterConfig, ready: Callable[[Router], None] | None = None) -> None:
    """Run a router until cancelled."""
    from gateways.psepr.router import Router

    router = Router(config)
    await router.start()
    if ready is not None:
        ready(router)
    try:
        await asyncio.Event().wait()
    finally:
        await router.stop()


