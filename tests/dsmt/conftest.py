"""Fixtures and test actors for the actor and supervisor suites.

Every test gets its own :class:`dsmt.registry.Registry`, a
:class:`dsmt.testing.FakeClock` and a :class:`dsmt.testing.RecordingPublishers`;
teardown stops every actor of the registry (then pykka's global registry,
as a safety net) and releases every event a test may have left blocking.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import pykka
import pytest
import zmq

from dsmt.bus import Bus
from dsmt.hub import Hub
from dsmt.actor import NORMAL, SHUTDOWN, Actor, Origin
from dsmt.channels import Layout
from dsmt.childspec import ChildSpec
from dsmt.context import Context
from dsmt.registry import Registry
from dsmt.supervisor import Supervisor
from dsmt.testing import FakeClock, RecordingPublishers, stop_all, wait_for

BOUND = 5.0  # seconds: the longest any single wait in these suites may take


class Journal:
    """A thread-safe, ordered record of what test actors did: (what, path) pairs."""

    def __init__(self) -> None:
        self._items: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def add(self, what: str, path: str) -> None:
        with self._lock:
            self._items.append((what, path))

    @property
    def items(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._items)

    def paths(self, what: str) -> list[str]:
        return [path for kind, path in self.items if kind == what]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class Worker(Actor):
    """A test child: journals start/stop, and exits on command.

    Messages (``tell``): ``"crash"`` raises, ``"exit_normal"`` /
    ``"exit_shutdown"`` stop it with that reason, ``("block", event)`` blocks
    the handler until ``event`` is set.
    """

    def __init__(self, origin: Origin, journal: Journal | None = None,
                 fail_start: bool = False, stop_gate: threading.Event | None = None,
                 **config: Any) -> None:
        super().__init__(origin, **config)
        self.journal = journal or Journal()
        self.fail_start = fail_start
        self.stop_gate = stop_gate

    def on_start(self) -> None:
        if self.fail_start:
            raise RuntimeError("cannot start")
        self.journal.add("start", self.path)

    def on_stop(self) -> None:
        self.journal.add("stopping", self.path)
        if self.stop_gate is not None:
            self.stop_gate.wait(BOUND * 4)
        self.journal.add("stop", self.path)

    def on_failure(self, *exc_info: Any) -> None:
        self.journal.add("failure", self.path)

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("boom")
        if message == "exit_normal":
            return self.stop(NORMAL)
        if message == "exit_shutdown":
            return self.stop(SHUTDOWN)
        if isinstance(message, tuple) and message[0] == "block":
            self.journal.add("blocked", self.path)
            message[1].wait(BOUND * 4)
            self.journal.add("unblocked", self.path)
            return None
        self.journal.add(f"got {message}", self.path)
        return None


class Collector(pykka.ThreadingActor):
    """A plain pykka parent that queues every message it receives."""

    def __init__(self, inbox: queue.Queue) -> None:
        super().__init__()
        self.inbox = inbox

    def on_receive(self, message: Any) -> None:
        self.inbox.put(message)


def spec(child_id: Any, journal: Journal, **fields: Any) -> ChildSpec:
    """A Worker spec journaling into ``journal``; ``fields`` go to ChildSpec or kwargs."""
    kwargs = {"journal": journal, **fields.pop("kwargs", {})}
    return ChildSpec(child_id, Worker, kwargs, **fields)


class Tree:
    """Handy access to a running supervisor in tests (all calls bounded)."""

    def __init__(self, ref: Any, origin: Origin) -> None:
        self.ref = ref
        self.origin = origin
        self.proxy = ref.proxy()

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.proxy, name)(*args, **kwargs).get(timeout=BOUND)

    def children(self) -> dict[Any, Any]:
        return {info.id: info for info in self.call("which_children")}

    def ref_of(self, child_id: Any) -> Any:
        return self.children()[child_id].ref

    def record(self, child_id: Any) -> dict[str, Any]:
        return next(c for c in self.call("inspect_children") if c["id"] == child_id)

    def wait_state(self, child_id: Any, state: str) -> dict[str, Any]:
        return wait_for(lambda: _record_in(self, child_id, state), BOUND,
                        lambda: f"{child_id!r} in state {state}: {self.call('inspect_children')}")

    def wait_restarted(self, child_id: Any, old: Any) -> Any:
        def fresh() -> Any:
            info = self.children().get(child_id)
            if (info is not None and info.ref is not None and info.ref is not old
                    and info.state == "running"):
                return info.ref
            return None
        return wait_for(fresh, BOUND, f"{child_id!r} to be restarted")

    def wait_exit(self) -> Any:
        reason = self.origin.lifeline.wait_exited(BOUND)
        assert reason is not None, "supervisor did not exit"
        return reason


def _record_in(tree: Tree, child_id: Any, state: str) -> dict[str, Any] | None:
    try:
        record = tree.record(child_id)
    except StopIteration:
        return None
    return record if record["state"] == state else None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> RecordingPublishers:
    return RecordingPublishers()


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def ctx(clock: FakeClock, events: RecordingPublishers, registry: Registry):
    context = Context(sliver="s1", layout=Layout("demo"), clock=clock,
                      hostname="host-1", publishers=events, registry=registry)
    yield context
    try:
        stop_all(registry, timeout=BOUND * 2)
    finally:
        pykka.ActorRegistry.stop_all(block=True, timeout=BOUND)


@pytest.fixture
def journal() -> Journal:
    return Journal()


@pytest.fixture
def gates():
    """Events a test may leave blocking an actor; all are released at teardown."""
    made: list[threading.Event] = []

    def make() -> threading.Event:
        made.append(threading.Event())
        return made[-1]

    yield make
    for gate in made:
        gate.set()


@pytest.fixture
def start_tree(ctx: Context):
    """``start_tree(specs, **flags)`` starts a root supervisor at /s1 and waits for its start."""

    def start(specs: list[ChildSpec], **flags: Any) -> Tree:
        origin = Origin.root(ctx)
        ref = Supervisor.start(origin, specs, **flags)
        started = origin.lifeline.wait_started(BOUND)
        assert started is not None, "supervisor did not start in time"
        return Tree(ref, origin)

    return start


@pytest.fixture
def zctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def hub(zctx, tmp_path):
    with Hub(zctx, tmp_path / "run", stats_interval=None) as running:
        yield running


@pytest.fixture(params=["ipc", "inproc"])
def bus(request, zctx, hub):
    """A bus on the hub over ipc and over inproc; generous timeouts: a snapshot is
    answered once the hub's keeper has caught up with the stream, which on a
    loaded 2-core machine can take seconds."""
    return Bus(zctx, hub.endpoints if request.param == "ipc" else hub.inproc_endpoints,
               connect_timeout=30.0)
