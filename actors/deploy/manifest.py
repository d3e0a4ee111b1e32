"""The package manifest ``dsmt-app.toml``: what a package is and how to install, start and check it.

The manifest sits in the package root and is parsed once, by :func:`load`,
into a frozen :class:`Manifest`. A mistake raises
:class:`dsmt.errors.ConfigError` naming the file, the dotted key and what is
wrong; unknown keys are refused. ``conf/dsmt-app.md`` documents every key
with a commented example; in short::

    name = "demo-app"                 # [a-z0-9][a-z0-9._-]*
    version = "1.0.0"                 # starts with a digit
    requirements = ["./wheels/x.whl"] # optional: pip specifiers for the version's venv

    [install]                         # optional
    command = ["python", "install.py"]
    timeout = 60                      # seconds, or "infinity"

    [start]
    command = ["python", "server.py"]
    stop_signal = "SIGTERM"
    stop_timeout = 10

    [health]                          # optional
    kind = "http"                     # tcp | http | command
    path = "/health"                  # http only
    interval = 2
    timeout = 1
    failure_threshold = 3
    start_period = 5

    [env]
    PORT = "8080"

Durations are seconds as floats; "forever" is ``None`` (``"infinity"`` in TOML).
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from dsmt import config
from dsmt.errors import ConfigError

from actors.workspace import NAME_RE, VERSION_RE

FILENAME = "dsmt-app.toml"
HEALTH_KINDS = ("tcp", "http", "command")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class InstallStep:
    """The command run once in the version directory after unpacking."""

    command: tuple[str, ...]
    timeout: float | None = 300.0


@dataclass(frozen=True)
class StartSpec:
    """How a process of this package is started and stopped."""

    command: tuple[str, ...]
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float | None = 10.0


@dataclass(frozen=True)
class HealthCheck:
    """A periodic probe; ``failure_threshold`` failures in a row mark the instance unhealthy.

    ``port`` None means the instance's ``PORT``; ``command`` is for kind ``command``.
    """

    kind: str
    interval: float = 5.0
    timeout: float = 2.0
    failure_threshold: int = 3
    start_period: float = 0.0
    port: int | None = None
    path: str = "/health"
    expect_status: int = 200
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """A parsed ``dsmt-app.toml``; ``source`` is the file it came from."""

    name: str
    version: str
    start: StartSpec
    install: InstallStep | None = None
    health: HealthCheck | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    requirements: tuple[str, ...] = ()
    source: Path | None = None


def load(path: str | Path) -> Manifest:
    """Parse the manifest at ``path`` (a file, or a package directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    return _parse(config.load(path))


def loads(text: str, source: str = FILENAME) -> Manifest:
    """Parse manifest text; ``source`` names it in errors."""
    return _parse(config.loads(text, source))


def _parse(top: config.Table) -> Manifest:
    name = top.str("name")
    if not NAME_RE.match(name):
        raise top.error("name", f"{name!r} is not a package name ([a-z0-9][a-z0-9._-]*)")
    version = top.str("version")
    if not VERSION_RE.match(version):
        raise top.error("version", f"{version!r} must start with a digit (then [A-Za-z0-9._+-])")
    requirements = top.strings("requirements", ())
    install = _install(top.table("install")) if "install" in top else None
    start = _start(top.table("start", required=True))
    health = parse_health(top.table("health")) if "health" in top else None
    env = parse_env(top.table("env"))
    top.done()
    source = top.source if isinstance(top.source, Path) else None
    return Manifest(name, version, start, install, health, env, requirements, source)


def _install(t: config.Table) -> InstallStep:
    step = InstallStep(_command(t, "command"), t.duration("timeout", 300.0))
    t.done()
    return step


def _start(t: config.Table) -> StartSpec:
    command = _command(t, "command")
    name = t.str("stop_signal", "SIGTERM")
    try:
        sig = signal.Signals[name if name.startswith("SIG") else f"SIG{name}"]
    except KeyError:
        raise t.error("stop_signal", f"unknown signal {name!r}") from None
    spec = StartSpec(command, sig, t.duration("stop_timeout", 10.0))
    t.done()
    return spec


def parse_health(t: config.Table) -> HealthCheck:
    kind = t.str("kind", choices=HEALTH_KINDS)
    interval = t.duration("interval", 5.0)
    timeout = t.duration("timeout", 2.0)
    for key, value in (("interval", interval), ("timeout", timeout)):
        if not value:
            raise t.error(key, "must be a positive number of seconds")
    if timeout > interval:
        raise t.error("timeout", f"{timeout}s is longer than interval {interval}s")
    threshold = t.int("failure_threshold", 3, min=1)
    start_period = t.duration("start_period", 0.0)
    if start_period is None:
        raise t.error("start_period", "must be a finite number of seconds")
    port = path = status = command = None
    if kind in ("tcp", "http"):
        port = t.int("port", None, min=1)
        if port is not None and port > 65535:
            raise t.error("port", f"must be <= 65535, got {port}")
    if kind == "http":
        path = t.str("path", "/health")
        if not path.startswith("/"):
            raise t.error("path", f"must start with '/', got {path!r}")
        status = t.int("expect_status", 200, min=100)
    if kind == "command":
        command = _command(t, "command")
    t.done()
    return HealthCheck(
        kind, interval, timeout, threshold, start_period, port,
        path or "/health", status or 200, command or (),
    )


def _command(t: config.Table, key: str) -> tuple[str, ...]:
    argv = t.strings(key)
    if not argv:
        raise t.error(key, "must be a non-empty list (argv, no shell)")
    return argv


def parse_env(t: config.Table) -> Mapping[str, str]:
    env = {}
    for key in list(t.keys()):
        if not _ENV_KEY.match(key):
            raise t.error(key, "is not a valid environment variable name")
        value = t.raw(key)
        if not isinstance(value, str):
            raise t.error(key, f"expected a string (quote numbers), got {value!r}")
        env[key] = value
    t.done()
    return MappingProxyType(env)


def check_matches(manifest: Manifest, name: str, version: str) -> None:
    """Raise ConfigError unless the manifest describes package ``name`` at ``version``."""
    for key, want, got in (("name", name, manifest.name), ("version", version, manifest.version)):
        if want != got:
            raise ConfigError(manifest.source or FILENAME, key,
                              f"is {got!r}, the plan asks for {want!r}")
