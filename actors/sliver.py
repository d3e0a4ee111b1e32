"""The sliver tree: what ``dsmt node`` runs under its root supervisor (DESIGN.md §5).

::

    /<sliver>                         root supervisor, rest_for_one
    ├── bridge                        PsEPR bridge (when [bridge] is configured)
    ├── container-mgr                 supervisor, one_for_one
    │   ├── container                 workspace, limits, resource reports
    │   └── install-monitor
    ├── deployment-agent              supervisor, one_for_one
    │   ├── agent                     fetch → verify → unpack → install → activate
    │   └── install-monitor
    ├── app                           application supervisor: one supervisor per service
    ├── app-monitor                   the app's install monitor
    ├── coordinator                   applies the plan
    └── commander                     verifies and runs signed slice commands

Deviation from the drawing in DESIGN.md, and why: a dsmt actor cannot have
children unless it is a supervisor, so each component with an install
monitor is a small supervisor holding the component and its monitor; the
application supervisor's children are its services only (it starts them
dynamically), so its monitor is its sibling ``app-monitor``. The install
monitor of a component restarts it through that component's own supervisor.

``rest_for_one`` at the root: a component depends on those started before
it (the agent on the workspace, the app on the agent, the coordinator on
the app), so when one is restarted, those after it are restarted too.
"""

from __future__ import annotations

from typing import Any

from dsmt.childspec import ONE_FOR_ONE, ChildSpec
from dsmt.commands import ReplayCache
from dsmt.supervisor import Supervisor

from actors.agent import DeploymentAgent
from actors.app import AppSupervisor
from actors.commander import Commander
from actors.container import ContainerManager
from actors.coordinator import Coordinator
from actors.monitor import InstallMonitor
from actors.nodeconf import NodeConfig
from actors.workspace import Workspace
from gateways.bridge import Bridge


def children(config: NodeConfig) -> list[ChildSpec]:
    """The root supervisor's child specs for the sliver described by ``config``."""
    base = f"/{config.sliver}"
    workspace = Workspace.create(config.workspace)
    agent_path = f"{base}/deployment-agent/agent"
    container_path = f"{base}/container-mgr/container"
    monitor = {"emit_rate": config.emit_rate}
    specs = []
    if config.bridge is not None:
        specs.append(ChildSpec("bridge", Bridge, {"config": config.bridge}))
    specs += [
        _component(base, "container-mgr", ChildSpec("container", ContainerManager, {
            "workspace": config.workspace, "limits": config.limits,
            "quota": config.disk_quota, "report_interval": 10.0, "app": f"{base}/app",
        }), monitor),
        _component(base, "deployment-agent", ChildSpec("agent", DeploymentAgent, {
            "workspace": workspace, "app": f"{base}/app",
        }), monitor),
        ChildSpec("app", AppSupervisor, {"logs": workspace.logs, "agent": agent_path,
                                         "container": container_path}),
        ChildSpec("app-monitor", InstallMonitor, {"target": f"{base}/app", **monitor}),
        ChildSpec("coordinator", Coordinator, {
            "plan": config.plan, "agent": agent_path, "app": f"{base}/app",
            "workspace": config.workspace, "labels": config.labels,
            "heartbeat": config.heartbeat, "suspect_after": config.suspect_after,
            "dead_after": config.dead_after, "container": container_path}),
        # Last, so rest_for_one never restarts the others because of it; the
        # replay cache lives in the spec so a restarted commander keeps it, and
        # in the state database so a restarted node keeps it too.
        ChildSpec("commander", Commander, {"key_file": config.key_file,
                                           "replay": ReplayCache(path=workspace.state_db)}),
    ]
    return specs


def _component(base: str, name: str, component: ChildSpec, monitor: dict[str, Any]) -> ChildSpec:
    """A small supervisor holding ``component`` and the install monitor that follows it."""
    monitor_spec = ChildSpec("install-monitor", InstallMonitor,
                             {"target": f"{base}/{name}/{component.id}", **monitor})
    return ChildSpec(name, Supervisor, {
        "children": [component, monitor_spec], "strategy": ONE_FOR_ONE,
        "intensity": 3, "period": 30.0,
    })
