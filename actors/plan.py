"""The slice plan: which services run, from which package, how many, and how they restart.

A plan is TOML, parsed once into a frozen :class:`Plan`; errors name the
file, the key and what is wrong (:class:`dsmt.errors.ConfigError`). Every
sliver holds the same plan; ``version`` orders plans (a higher version
replaces a lower one), so it must grow with every change.

::

    version = 1                          # integer, grows with every change

    [services.web]
    package = "file:///srv/demo-app-1.0.0.tar.gz"   # file://, http(s)://
    sha256 = "3b0c…"                     # mandatory
    version = "1.0.0"                    # must match the package manifest
    command = ["python", "server.py"]    # optional: overrides the manifest's start.command
    replicas = 3                         # or "all": one instance on every eligible sliver
    port = "auto"                        # or an integer base port (instance n gets base + n)
    restart = "permanent"                # permanent | transient | temporary
    strategy = "one_for_one"             # the service supervisor's strategy
    intensity = 5                        # restarts …
    period = 10                          # … within this many seconds before giving up
    stop_timeout = 5                     # grace between the stop signal and SIGKILL

    [services.web.backoff]               # optional: delay restarts exponentially
    min = 0.1
    max = 10
    jitter = 0.1
    reset_after = 30

    [services.web.health]                # optional: overrides the manifest's health check
    kind = "http"                        # tcp | http | command
    path = "/health"

    [services.web.placement]             # optional
    require = ["label:edge"]             # sliver names, or label:NAME
    exclude = ["s3"]
    max_per_sliver = 1

    [services.web.scaling]               # optional: threshold policy on a reported metric
    metric = "load"
    high = 0.8
    low = 0.2
    min = 1
    max = 5
    cooldown = 30

    [services.web.env]
    GREETING = "hello"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from dsmt import config
from dsmt.childspec import RESTART_TYPES, STRATEGIES, Backoff
from dsmt.errors import DsmtError

from actors.deploy import manifest

ALL = "all"
AUTO = "auto"
_SERVICE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SOURCES = ("file://", "http://", "https://")


@dataclass(frozen=True)
class Placement:
    require: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_per_sliver: int | None = None


@dataclass(frozen=True)
class Scaling:
    metric: str
    high: float
    low: float
    min: int
    max: int
    cooldown: float = 30.0


@dataclass(frozen=True)
class Service:
    name: str
    package: str
    sha256: str
    version: str
    replicas: int | str = 1
    command: tuple[str, ...] | None = None
    port: int | str = AUTO
    restart: str = "permanent"
    strategy: str = "one_for_one"
    intensity: int = 5
    period: float = 10.0
    stop_timeout: float | None = 5.0
    backoff: Backoff | None = None
    health: manifest.HealthCheck | None = None
    placement: Placement = Placement()
    scaling: Scaling | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Plan:
    version: int
    services: Mapping[str, Service]

    def service(self, name: str) -> Service:
        return self.services[name]


EMPTY = Plan(0, MappingProxyType({}))


def load(path: str | Path) -> Plan:
    return parse(config.load(path))


def loads(text: str, source: str = "<plan>") -> Plan:
    return parse(config.loads(text, source))


def parse(top: config.Table) -> Plan:
    version = top.int("version", min=1)
    services_table = top.table("services")
    services = {}
    for name in list(services_table.keys()):
        if not _SERVICE.match(name):
            raise services_table.error(name, "a service name is [a-z][a-z0-9-]*, at most 63 chars")
        services[name] = _service(name, services_table.table(name))
    services_table.done()
    top.done()
    return Plan(version, MappingProxyType(services))


def _service(name: str, t: config.Table) -> Service:
    package = t.str("package")
    if not package.startswith(_SOURCES):
        raise t.error("package", f"source must start with one of {', '.join(_SOURCES)}")
    sha256 = t.str("sha256").lower()
    if not _SHA256.match(sha256):
        raise t.error("sha256", "expected 64 hex digits")
    replicas = t.raw("replicas", 1)
    if replicas != ALL and (type(replicas) is not int or replicas < 0):
        raise t.error("replicas", f'expected an integer >= 0 or "all", got {replicas!r}')
    port = t.raw("port", AUTO)
    if port != AUTO and (type(port) is not int or not 1 <= port <= 65535):
        raise t.error("port", f'expected "auto" or a port number, got {port!r}')
    command = t.strings("command", None)
    if command is not None and not command:
        raise t.error("command", "must be a non-empty list (argv, no shell)")
    service = Service(
        name=name,
        package=package,
        sha256=sha256,
        version=t.str("version"),
        replicas=replicas,
        command=command,
        port=port,
        restart=t.str("restart", "permanent", choices=RESTART_TYPES),
        strategy=t.str("strategy", "one_for_one", choices=STRATEGIES),
        intensity=t.int("intensity", 5, min=0),
        period=_positive(t, "period", 10.0),
        stop_timeout=t.duration("stop_timeout", 5.0),
        backoff=_backoff(t.table("backoff")) if "backoff" in t else None,
        health=manifest.parse_health(t.table("health")) if "health" in t else None,
        placement=_placement(t.table("placement")),
        scaling=_scaling(t.table("scaling")) if "scaling" in t else None,
        env=manifest.parse_env(t.table("env")),
    )
    t.done()
    return service


def _positive(t: config.Table, key: str, default: float) -> float:
    value = t.number(key, default)
    if value <= 0:
        raise t.error(key, f"must be > 0, got {value}")
    return value


def _backoff(t: config.Table) -> Backoff:
    values = dict(
        min=t.number("min", 0.5, min=0),
        max=t.number("max", 60.0, min=0),
        factor=t.number("factor", 2.0, min=1),
        jitter=t.number("jitter", 0.1, min=0),
        reset_after=t.duration("reset_after", 60.0),
    )
    t.done()
    try:
        return Backoff(**values)
    except DsmtError as exc:
        raise t.error("", str(exc)) from None


def _placement(t: config.Table) -> Placement:
    placement = Placement(
        require=t.strings("require", ()),
        exclude=t.strings("exclude", ()),
        max_per_sliver=t.int("max_per_sliver", None, min=1),
    )
    t.done()
    return placement


def _scaling(t: config.Table) -> Scaling:
    scaling = Scaling(
        metric=t.str("metric"),
        high=t.number("high"),
        low=t.number("low"),
        min=t.int("min", min=0),
        max=t.int("max", min=1),
        cooldown=t.duration("cooldown", 30.0) or 0.0,
    )
    if scaling.low >= scaling.high:
        raise t.error("low", f"must be below high ({scaling.high})")
    if scaling.min > scaling.max:
        raise t.error("min", f"must not exceed max ({scaling.max})")
    t.done()
    return scaling
