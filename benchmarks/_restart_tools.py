"""The supervisors the restart benchmark compares (see :mod:`benchmarks.restart`).

:data:`SERVER` is the supervised program (a TCP server that answers each
connection with its pid; :func:`ask_pid` asks it). A :class:`Tool` starts
one supervising process in its own session and kills its whole group at
the end; :func:`make_tool` builds the one named: ``dsmt``, ``dsmt-otp`` and
``dsmt-limits`` (``python -m benchmarks.restart --serve-dsmt``), ``circus``,
``supervisord``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

SERVER = """\
import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
me = str(os.getpid()).encode()
while True:
    c, _ = s.accept()
    c.sendall(me)
    c.close()
"""

REPO = Path(__file__).resolve().parent.parent
TOOLS = ("dsmt", "dsmt-otp", "dsmt-limits", "circus", "supervisord")


def ask_pid(port: int, timeout: float = 0.5) -> int | None:
    """The pid the server on ``port`` answers with, or None if nothing accepts."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            data = sock.recv(32)
        return int(data) if data else None
    except (OSError, ValueError):
        return None


# --- the supervisors ----------------------------------------------------------------


class Tool:
    """One supervising process started in its own session in ``work``."""

    def __init__(self, name: str, work: Path, port: int, server: Path) -> None:
        self.name = name
        self.work = work
        self.port = port
        self.server = server
        self.proc: subprocess.Popen | None = None
        self.seen: set[int] = set()  # every server pid, to clean up

    def argv_app(self) -> list[str]:
        return [sys.executable, "-I", "-S", str(self.server), str(self.port)]

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.stderr = open(self.work / f"{self.name}.stderr", "wb")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        self.proc = subprocess.Popen(self.command(), cwd=self.work, stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr,
                                     start_new_session=True, env=env)

    def server_pid(self) -> int | None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
        return ask_pid(self.port)

    def stop(self) -> None:
        """Ask politely, then kill the tool's group and every server pid ever seen."""
        if self.proc is not None and self.proc.poll() is None:
            self.quit()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for pgid in ([self.proc.pid] if self.proc is not None else []) + sorted(self.seen):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in sorted(self.seen):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.stderr.close()

    def quit(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def error_text(self) -> str:
        path = self.work / f"{self.name}.stderr"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


class Dsmt(Tool):
    def __init__(self, *args: Any, mode: str) -> None:
        super().__init__(*args)
        self.mode = mode

    def command(self) -> list[str]:
        return [sys.executable, "-m", "benchmarks.restart", "--serve-dsmt", self.mode,
                json.dumps(self.argv_app())]

    def quit(self) -> None:
        self.proc.stdin.close()  # the runner stops its tree cleanly on end of input


class Circus(Tool):
    def command(self) -> list[str]:
        conf = self.work / "circus.ini"
        conf.write_text(textwrap.dedent(f"""\
            [circus]
            endpoint = ipc://{self.work}/circus-ctl.sock
            pubsub_endpoint = ipc://{self.work}/circus-pub.sock
            statsd = false

            [watcher:app]
            cmd = {self.argv_app()[0]}
            args = {' '.join(self.argv_app()[1:])}
            numprocesses = 1
            check_flapping = false
            copy_env = true
            """))
        return [str(Path(sys.executable).parent / "circusd"), str(conf)]


class Supervisord(Tool):
    def command(self) -> list[str]:
        conf = self.work / "supervisord.conf"
        conf.write_text(textwrap.dedent(f"""\
            [supervisord]
            nodaemon = true
            logfile = {self.work}/supervisord.log
            pidfile = {self.work}/supervisord.pid
            childlogdir = {self.work}

            [program:app]
            command = {' '.join(self.argv_app())}
            startsecs = 0
            autorestart = true
            stopasgroup = true
            killasgroup = true
            stopwaitsecs = 2
            """))
        return [str(Path(sys.executable).parent / "supervisord"), "-n", "-c", str(conf)]


def make_tool(name: str, work: Path, port: int, server: Path) -> Tool:
    if name == "dsmt":
        return Dsmt(name, work, port, server, mode="actor")
    if name == "dsmt-otp":
        return Dsmt(name, work, port, server, mode="otp")
    if name == "dsmt-limits":
        return Dsmt(name, work, port, server, mode="limits")
    if name == "circus":
        return Circus(name, work, port, server)
    if name == "supervisord":
        return Supervisord(name, work, port, server)
    raise SystemExit(f"unknown tool {name!r}; choose from {', '.join(TOOLS)}")
