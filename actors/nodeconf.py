"""The node configuration (``node.toml``): which sliver this is and what it talks to.

Parsed once into a frozen :class:`NodeConfig`; errors name the file, the key
and what is wrong. Relative paths are taken from the file's folder.

::

    slice = "demo"                  # the slice (application) this sliver belongs to
    sliver = "s1"                   # this sliver's name: one channel element
    workspace = "/var/lib/dsmt/s1"  # packages, versions, logs, state db, run dir
    plan = "plan.toml"              # optional: a plan to install and run at start
    labels = ["edge"]               # optional: for placement constraints
    emit_rate = 10                  # seconds between status re-emissions (install monitors)
    root = "/org/dsmt/ns/deployment/"   # optional: the channel root
    heartbeat = 1.0                 # seconds between this sliver's heartbeats (coordinator)
    suspect_after = 3               # missed heartbeats before a peer is suspected (and skipped)
    dead_after = 10                 # further seconds of silence before it is declared dead
    key_file = "slice.key"          # optional: the slice key that signs commands
                                    # (without it every command is rejected: "no-key")

    [bridge]                        # optional: without it the sliver is not on PsEPR
    routers = ["127.0.0.1:23345"]   # host:port, tried in random order
    service = "dsmt"                # the PsEPR account …
    password_file = "dsmt.secret"   # … and its password (first line of the file)
    export = ["/org/dsmt/ns/deployment/demo/"]   # default: the slice's channels
    import = ["/org/dsmt/ns/deployment/demo/plan/", "/org/dsmt/ns/deployment/demo/sliver/",
              "/org/dsmt/ns/deployment/demo/org.dsmt.component.sliver/command/"]
                                    # default: what a sliver reads (sliver_reads)

    [limits]                        # per application process (see actors.container.limits)
    nofile = 4096
    memory_max = 536870912          # bytes, cgroup v2 when available
    cpu_max = 0.5                   # CPUs, cgroup v2 when available
    disk_quota = 1073741824         # bytes under the workspace
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dsmt import channels, config
from dsmt.channels import Layout
from dsmt.errors import ChannelError

from actors.commander import COMPONENT as COMMANDER_COMPONENT
from actors.container.limits import Limits
from gateways.bridge import BridgeConfig


@dataclass(frozen=True)
class NodeConfig:
    slice: str
    sliver: str
    workspace: Path
    plan: Path | None = None
    labels: tuple[str, ...] = ()
    emit_rate: float = 10.0
    root: str = channels.ROOT
    bridge: BridgeConfig | None = None
    limits: Limits = field(default_factory=Limits)
    disk_quota: int | None = None
    heartbeat: float = 1.0
    suspect_after: int = 3
    dead_after: float = 10.0
    key_file: Path | None = None

    @property
    def layout(self) -> Layout:
        return Layout(self.slice, self.root)

    @property
    def run_dir(self) -> Path:
        return self.workspace / "run"


def load(path: str | Path) -> NodeConfig:
    return parse(config.load(path))


def parse(top: config.Table) -> NodeConfig:
    slice_ = _element(top, "slice")
    sliver = _element(top, "sliver")
    root = top.str("root", channels.ROOT)
    try:
        layout = Layout(slice_, root)
    except ChannelError as exc:
        raise top.error("root", str(exc)) from None
    emit_rate = top.duration("emit_rate", 10.0)
    if not emit_rate:
        raise top.error("emit_rate", "must be a positive number of seconds")
    limits_table = top.table("limits")
    disk_quota = limits_table.int("disk_quota", None, min=1)
    node = NodeConfig(
        slice=slice_,
        sliver=sliver,
        workspace=top.path("workspace"),
        plan=top.path("plan", None),
        labels=top.strings("labels", ()),
        emit_rate=emit_rate,
        root=root,
        bridge=_bridge(top.table("bridge"), layout, sliver) if "bridge" in top else None,
        limits=_limits(limits_table),
        disk_quota=disk_quota,
        heartbeat=top.number("heartbeat", 1.0, min=0.01),
        suspect_after=top.int("suspect_after", 3, min=1),
        dead_after=top.number("dead_after", 10.0, min=0),
        key_file=top.path("key_file", None),
    )
    top.done()
    return node


def _element(t: config.Table, key: str) -> str:
    value = t.str(key)
    if "/" in value:
        raise t.error(key, "must be one channel element (no '/')")
    try:
        channels.join(value)
    except ChannelError as exc:
        raise t.error(key, f"must be one channel element ({exc.why})") from None
    return value


def _address(t: config.Table, key: str, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise t.error(key, f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def sliver_reads(layout: Layout) -> tuple[str, ...]:
    """The channels a sliver's actors read from its hub: the bridge's default imports.

    The plan and every sliver's heartbeat (the coordinator, see
    :mod:`actors.coordinator.reader`; the ``sliver/`` prefix also holds the
    resource reports) and the commands to slivers (:mod:`actors.commander`,
    component ``sliver``). Not the other slivers' component statuses or the
    replies to commands: nothing on a sliver reads them, and importing them
    cost every node a hop through the PsEPR client, the bridge, the hub and
    the bridge's reader per event (a 10-sliver slice: ~6 of the ~16 events a
    second each node imported). Import the slice's base to have everything.
    """
    return (layout.plan(), layout.heartbeat(), layout.command(COMMANDER_COMPONENT))


def _bridge(t: config.Table, layout: Layout, sliver: str) -> BridgeConfig:
    routers = tuple(_address(t, "routers", r) for r in t.strings("routers"))
    if not routers:
        raise t.error("routers", "needs at least one HOST:PORT")
    service = t.str("service", "dsmt")
    password_file = t.path("password_file", None)
    password = t.str("password", None)
    if password_file is not None:
        try:
            password = password_file.read_text().splitlines()[0]
        except (OSError, IndexError) as exc:
            raise t.error("password_file", f"cannot read a password: {exc}") from None
    if password is None:
        raise t.error("password_file", "missing (or give password)")
    prefixes = {}
    defaults = {"export": (layout.base,), "import": sliver_reads(layout)}
    for key in ("export", "import"):
        values = t.strings(key, defaults[key])
        for i, prefix in enumerate(values):
            try:
                channels.validate_subscription(prefix)
            except ChannelError as exc:
                raise t.error(f"{key}[{i}]", exc.why) from None
        prefixes[key] = values
    try:
        bridge = BridgeConfig(
            routers=routers,
            service=service,
            password=password,
            export_prefixes=prefixes["export"],
            import_prefixes=prefixes["import"],
            reconnect_min=t.number("reconnect_min", 0.5, min=0.01),
            reconnect_max=t.number("reconnect_max", 10.0, min=0.01),
            connect_wait=t.duration("connect_wait", 5.0),
        )
    except (ValueError, ChannelError) as exc:
        raise t.error("-", str(exc)) from None
    t.done()
    return bridge


def _limits(t: config.Table) -> Limits:
    values = {}
    for key in ("nofile", "address_space", "data", "core", "nproc", "memory_max"):
        if key in t:
            values[key] = t.int(key, min=0)
    if "cpu_max" in t:
        values["cpu_max"] = t.number("cpu_max", min=0.01)
    t.done()
    return Limits(**values)
