"""A sliver's deployment half for tests: root supervisor → deployment agent + app supervisor.

Real actors under a real :class:`dsmt.supervisor.Supervisor`, real packages
built with :func:`actors.deploy.package.build_demo`, real processes; events
are recorded (and every pid a status event names has its process group
killed at teardown, failing the test if one outlived it). Import the
fixtures into a test module with ``from tests.actors.sliver_tree import *``.
"""

from __future__ import annotations

import http.client
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.agent import DeploymentAgent
from actors.app import AppSupervisor
from actors.deploy.fetch import FetchLimits
from actors.deploy.manifest import HealthCheck
from actors.deploy.package import DEMO_DIR, build, build_demo
from actors.messages import Deploy
from actors.plan import Plan, Service
from actors.process.testing import GroupReaper
from dsmt.actor import Origin
from dsmt.channels import Layout
from dsmt.childspec import ChildSpec
from dsmt.context import Context
from dsmt.registry import Registry
from dsmt.supervisor import Supervisor
from dsmt.testing import RecordingPublishers, stop_all, wait_for

__all__ = ["BOUND", "FAST_HEALTH", "Sliver", "events", "get", "package", "reaper", "sliver",
           "service"]

BOUND = 10.0  # seconds: the longest any single wait may take (installs and process starts)
FAST_HEALTH = HealthCheck("http", interval=0.1, timeout=0.5, failure_threshold=2,
                          start_period=0.0, path="/health")


class Tracking(RecordingPublishers):
    """Records events and tracks the process group of every pid a status event names."""

    def __init__(self, reaper: GroupReaper) -> None:
        super().__init__()
        self.reaper = reaper

    def _record(self, event):
        payload = event.payload if isinstance(event.payload, dict) else {}
        for key in ("pid", "exit_pid"):
            if payload.get(key):
                self.reaper.track(payload[key])
        super()._record(event)


@pytest.fixture
def reaper():
    reaper = GroupReaper()
    yield reaper
    try:
        wait_for(lambda: not reaper.survivors(), 3.0,
                 lambda: f"no process left behind, but {reaper.survivors()} still run")
    finally:
        reaper.kill_all()


@pytest.fixture
def events(reaper):
    return Tracking(reaper)


def get(port: int, path: str = "/health") -> int | None:
    """The HTTP status of GET ``path`` on loopback ``port``, or None if nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


class Sliver:
    """The running tree and shortcuts to its agent and app (every call bounded)."""

    def __init__(self, ctx: Context, workspace, root: Any) -> None:
        self.ctx = ctx
        self.workspace = workspace
        self.root = root
        self.events: RecordingPublishers = ctx.publishers  # type: ignore[assignment]

    @property
    def agent(self) -> Any:
        return wait_for(lambda: self.ctx.registry.get("/s1/deployment-agent"), BOUND, "the agent")

    @property
    def app(self) -> Any:
        return wait_for(lambda: self.ctx.registry.get("/s1/app"), BOUND, "the app")

    def deploy(self, *services: Service, version: int = 1) -> None:
        self.agent.tell(Deploy(Plan(version, {s.name: s for s in services})))

    def agent_channel(self) -> str:
        return self.ctx.layout.status("deployment-agent", "s1")

    def channel(self, component: str) -> str:
        return self.ctx.layout.status(component, "s1")

    def agent_events(self) -> list[dict]:
        return [e.payload for e in self.events.on(self.agent_channel())]

    def wait_agent(self, state: str, after: int = 0, **detail: Any) -> dict:
        """The first agent status (from index ``after``) in ``state`` whose detail matches."""
        def found():
            return next((p for p in self.agent_events()[after:] if p["state"] == state
                         and all(p.get(k) == v for k, v in detail.items())), None)
        return wait_for(found, BOUND, lambda: f"agent {state} {detail}: "
                        f"{[(p['state'], p['reason']) for p in self.agent_events()]}")

    def instances(self, name: str) -> list[dict]:
        return self.app.proxy().instances(name).get(timeout=BOUND)

    def services(self) -> dict[str, dict]:
        return self.app.proxy().services().get(timeout=BOUND)

    def wait_serving(self, name: str, version: str, count: int = 1,
                     exclude: set[int] = frozenset()) -> list[dict]:
        """Wait until ``count`` instances of ``version`` run (pids not in ``exclude``) and
        answer."""
        def ready():
            summary = self.services().get(name)
            if summary is None or summary["version"] != version or summary["state"] != "running":
                return None
            rows = self.instances(name)
            if len(rows) != count or any(r["pid"] is None or r["pid"] in exclude
                                         or r["state"] != "running" for r in rows):
                return None
            return rows if all(get(r["port"]) == 200 for r in rows) else None
        return wait_for(ready, BOUND, lambda: f"{name} {version} serving: {self.services()}")


@pytest.fixture
def sliver(events, tmp_path, workspace):
    """A started tree: /s1 (rest_for_one) → deployment-agent, app (health window 5 s)."""
    ctx = Context(sliver="s1", layout=Layout("demo"), hostname="host-1", publishers=events,
                  registry=Registry())
    agent = ChildSpec("deployment-agent", DeploymentAgent,
                      {"workspace": workspace, "fetch_limits": FetchLimits(tries=1, timeout=2.0)})
    app = ChildSpec("app", AppSupervisor, {"logs": workspace.logs, "health_window": 5.0})
    origin = Origin.root(ctx)
    made: list[Sliver] = []

    def start(specs=(agent, app)) -> Sliver:
        ref = Supervisor.start(origin, list(specs), strategy="rest_for_one", intensity=0)
        assert origin.lifeline.wait_started(BOUND) is True
        made.append(Sliver(ctx, workspace, ref))
        return made[-1]

    yield start
    try:
        stop_all(ctx.registry, timeout=BOUND * 2)
    finally:
        pykka.ActorRegistry.stop_all(block=True, timeout=BOUND)


@pytest.fixture
def package(tmp_path):
    """``package(version, variant, name="demo-app") -> (file:// URL, sha256)`` of a demo build."""
    def make(version: str = "1.0.0", variant: str = "ok", name: str = "demo-app"):
        out = tmp_path / "dist" / f"{name}-{version}-{variant}"
        if name == "demo-app":
            archive, sha = build_demo(out, version=version, variant=variant)
        else:
            text = (DEMO_DIR / "dsmt-app.toml").read_text()
            text = text.replace('name = "demo-app"', f'name = "{name}"')
            text = text.replace('version = "1.0.0"', f'version = "{version}"')
            text = text.replace('DEMO_MODE = "ok"', f'DEMO_MODE = "{variant}"')
            archive, sha = build(DEMO_DIR, out, manifest_text=text)
        return Path(archive).as_uri(), sha
    return make


def service(name: str, url: str, sha: str, version: str, **fields: Any) -> Service:
    """A plan entry with fast health checks and quick give-ups unless ``fields`` say otherwise."""
    fields.setdefault("health", FAST_HEALTH)
    fields.setdefault("intensity", 3)
    fields.setdefault("period", 10.0)
    fields.setdefault("stop_timeout", 3.0)
    return Service(name=name, package=url, sha256=sha, version=version, **fields)
