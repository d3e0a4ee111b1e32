"""A whole slice on this machine: one PsEPR router and N slivers, each its own process.

What ``dsmt up`` runs and what the end-to-end tests start. Everything lives
under one folder (``root``)::

    root/accounts.toml        the router's account (scrypt hash of a fresh password)
    root/slice.secret         that password, 0600
    root/slice.key            the slice key that signs commands, 0600 (every node.toml names it)
    root/router.log
    root/<sliver>/node.toml   each sliver's configuration
    root/<sliver>/ws/         its workspace (packages, versions, logs, run/ hub sockets)
    root/<sliver>/node.log

:meth:`LocalSlice.start` starts the router (``dsmt router`` on a free
loopback port), then every ``dsmt node``; :meth:`LocalSlice.stop` sends
SIGTERM to every node, waits, then to the router, and finally SIGKILLs the
process group of anything left — every process is started in its own
session, so nothing outlives the slice.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from dsmt import commands
from dsmt.channels import Layout

SERVICE = "dsmt"
LISTENING = re.compile(rb"listening on ([\d.]+):(\d+)")  # what an app instance logs


@dataclass
class Sliver:
    name: str
    folder: Path
    process: subprocess.Popen | None = None

    @property
    def config(self) -> Path:
        return self.folder / "node.toml"

    @property
    def workspace(self) -> Path:
        return self.folder / "ws"

    @property
    def run_dir(self) -> Path:
        return self.workspace / "run"

    def app_port(self, service: str = "demo-app", instance: int = 0) -> int | None:
        """The port an app instance last said it listens on (its stdout log), or None."""
        log = self.workspace / "logs" / f"{service}-{instance}.out.log"
        try:
            found = LISTENING.findall(log.read_bytes())
        except FileNotFoundError:
            return None
        return int(found[-1][1]) if found else None


def answers_health(port: int, timeout: float = 2.0) -> bool:
    """Whether ``GET /health`` on ``127.0.0.1:port`` answers 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as reply:
            return reply.status == 200
    except OSError:
        return False


@dataclass
class LocalSlice:
    root: Path
    slivers: int = 2
    plan: Path | None = None
    slice: str = "demo"
    emit_rate: float = 5.0
    port: int | None = None
    python: str = sys.executable
    router: subprocess.Popen | None = None
    members: list[Sliver] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.members = [Sliver(f"s{i + 1}", self.root / f"s{i + 1}") for i in range(self.slivers)]

    @property
    def layout(self) -> Layout:
        return Layout(self.slice)

    @property
    def address(self) -> tuple[str, int]:
        assert self.port is not None, "the router is not started"
        return "127.0.0.1", self.port

    @property
    def key_path(self) -> Path:
        """The slice key file every sliver verifies commands with."""
        return self.root / "slice.key"

    @property
    def key(self) -> bytes:
        return commands.load_key(self.key_path)

    @property
    def password(self) -> str:
        return (self.root / "slice.secret").read_text().strip()

    # --- lifecycle -----------------------------------------------------------------

    def write(self) -> None:
        """Write the accounts, the password and every node.toml (start() calls it)."""
        from gateways.psepr import accounts

        self.root.mkdir(parents=True, exist_ok=True)
        secret = self.root / "slice.secret"
        if not secret.exists():
            secret.write_text(secrets.token_urlsafe(18) + "\n")
            secret.chmod(0o600)
        password = self.password
        if not self.key_path.exists():
            commands.write_key(self.key_path)
        (self.root / "accounts.toml").write_text(
            f'[accounts]\n"{SERVICE}" = "{accounts.hash_password(password)}"\n')
        if self.port is None:
            self.port = _free_port()
        for member in self.members:
            member.folder.mkdir(parents=True, exist_ok=True)
            plan = f'plan = "{self.plan}"\n' if self.plan else ""
            routers = ", ".join(f'"{address}"' for address in self.routers_for(member))
            member.config.write_text(
                f'slice = "{self.slice}"\nsliver = "{member.name}"\nworkspace = "ws"\n{plan}'
                f'emit_rate = {self.emit_rate}\nkey_file = "{self.key_path}"\n\n[bridge]\n'
                f'routers = [{routers}]\nservice = "{SERVICE}"\n'
                f'password_file = "{secret}"\nreconnect_min = 0.2\nreconnect_max = 2\n')

    def routers_for(self, member: Sliver) -> list[str]:
        """The ``host:port`` routers a sliver's bridge dials (hook: the multi-host harness)."""
        return [f"127.0.0.1:{self.port}"]

    def wrap(self, where: str, argv: list[str]) -> list[str]:
        """The command that runs ``argv`` for ``where`` ("router" or a sliver's name).

        Here: ``argv`` itself. Hook for the multi-host harness, which runs
        each in its own network namespace.
        """
        return argv

    def start(self, timeout: float = 30.0) -> LocalSlice:
        self.write()
        self.start_router(timeout)
        for member in self.members:
            self.start_sliver(member.name)
        return self

    def start_router(self, timeout: float = 30.0) -> None:
        log = open(self.root / "router.log", "ab")
        self.router = subprocess.Popen(
            self.wrap("router", [
                self.python, "-m", "dsmt.cli", "router", "--listen", f"127.0.0.1:{self.port}",
                "--accounts", str(self.root / "accounts.toml")]),
            stdout=subprocess.PIPE, stderr=log, start_new_session=True, cwd=self.root)
        line = _readline(self.router, timeout)
        if "listening" not in line:
            raise RuntimeError(f"the router did not start: {line!r} (see {log.name})")

    def start_sliver(self, name: str) -> Sliver:
        member = self.member(name)
        log = open(member.folder / "node.log", "ab")
        member.process = subprocess.Popen(
            self.wrap(name, [self.python, "-m", "dsmt.cli", "node", "--config",
                             str(member.config)]),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=member.folder)
        return member

    def member(self, name: str) -> Sliver:
        for member in self.members:
            if member.name == name:
                return member
        raise KeyError(name)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the slivers, then the router; SIGKILL whatever is left.

        Application processes run in sessions of their own (so that a node
        killed with -9 leaves them to be re-adopted), so after the nodes
        stopped, any process still working under this slice's folder is
        killed too.
        """
        for member in self.members:
            _terminate(member.process, timeout)
        _terminate(self.router, timeout)
        self.kill_leftovers()

    def kill_leftovers(self) -> None:
        """SIGKILL every process still working under this slice's folder, and reap it."""
        leftovers = self.processes()
        for process in leftovers:
            try:
                process.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(leftovers, timeout=5)

    def instances(self, program: str = "server.py") -> dict[str, list[psutil.Process]]:
        """Per sliver, the live application processes (``program`` in their command line)
        working under its workspace (zombies left out): one scan of the process table."""
        roots = {m.name: str(m.workspace.resolve()) + os.sep for m in self.members}
        found: dict[str, list[psutil.Process]] = {name: [] for name in roots}
        for process in psutil.process_iter(["cwd", "cmdline", "status"]):
            cwd = process.info.get("cwd") or ""
            if process.info.get("status") == psutil.STATUS_ZOMBIE:
                continue
            if not any(part.endswith(program) for part in process.info.get("cmdline") or ()):
                continue
            for name, root in roots.items():
                if cwd.startswith(root):
                    found[name].append(process)
        return found

    def processes(self) -> list[psutil.Process]:
        """Every process of this machine whose working directory is under ``root``."""
        root = str(self.root.resolve())
        found = []
        for process in psutil.process_iter(["cwd"]):
            cwd = process.info.get("cwd") or ""
            if cwd == root or cwd.startswith(root + os.sep):
                found.append(process)
        return found

    def __enter__(self) -> LocalSlice:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _readline(process: subprocess.Popen, timeout: float) -> str:
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline().decode(errors="replace")


def _terminate(process: subprocess.Popen | None, timeout: float) -> None:
    if process is None:
        return
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    # Whatever is left in the group (a stuck node, an app process): gone.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
