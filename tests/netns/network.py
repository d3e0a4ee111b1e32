"""Hosts on one machine: network namespaces on a bridge, and the links between them cut at will.

A :class:`Network` owns, for one run, a *switch* namespace holding a Linux
bridge and one namespace per host, each joined to the bridge by a veth pair
(``eth0`` in the host, ``v-<host>`` on the switch) with an address in
198.18.0.0/24 (RFC 2544's benchmarking range: nothing on a real network
uses it, and the bridge lives in its own namespace, so this machine's own
interfaces and routes are never touched)::

    <prefix>sw   br0 ── v-r1 ═ eth0 <prefix>r1   198.18.0.1
                     ── v-s1 ═ eth0 <prefix>s1   198.18.0.11 ...

Faults: :meth:`cut` sets a host's switch port down (nothing in or out, TCP
connections stall as on a pulled cable) and :meth:`restore` sets it up;
:meth:`partition` adds blackhole routes between every pair of hosts in
different groups (silently dropped, as in a real split) and :meth:`heal`
removes them.

Names: every namespace of a run starts with ``dsmtnet-<pid>-``. At start,
namespaces of runs whose process is gone are removed, with any process still
in them (a run killed before its cleanup); :meth:`close` (also registered
with :mod:`atexit`) deletes this run's namespaces, which deletes their veths
and the bridge with them.

:meth:`call` runs a function in a host's namespace, in a thread that
entered it (``setns``): sockets made there, and threads started from there,
live in that namespace. Requires root and ``ip`` (iproute2):
:func:`unavailable` says why not, for a skip.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import ctypes
import os
import re
import shutil
import signal
import subprocess
from typing import Any, Callable

PREFIX = "dsmtnet-"
SUBNET = "198.18.0"
CLONE_NEWNET = 0x40000000


def unavailable() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2 ('ip'): apt-get install -y iproute2"
    probe = f"{PREFIX}probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def namespaces() -> list[str]:
    """Every network namespace of this machine (names)."""
    return [line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.strip()]


def remove_stale() -> list[str]:
    """Delete the namespaces of earlier runs whose process is gone, and kill every
    process still in them (a namespace outlives its name while a process is in it);
    their names."""
    removed = []
    for name in namespaces():
        found = re.match(rf"{re.escape(PREFIX)}(\d+)-", name)
        if found and not _alive(int(found.group(1))):
            for pid in ip("netns", "pids", name, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Network:
    """A switch and hosts in namespaces; see the module docstring."""

    _serial = 0

    def __init__(self, hosts: list[str]) -> None:
        remove_stale()
        Network._serial += 1
        self.prefix = f"{PREFIX}{os.getpid()}-{Network._serial}-"
        self.switch = self.prefix + "sw"
        self.hosts = list(hosts)
        self.addresses = {}
        self._blackholes: set[tuple[str, str]] = set()
        self._threads: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
        self._closed = False
        atexit.register(self.close)
        try:
            ip("netns", "add", self.switch)
            ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            ip("-n", self.switch, "link", "set", "br0", "up")
            for host in self.hosts:
                self.add(host)
        except BaseException:
            self.close()
            raise

    def ns(self, host: str) -> str:
        """The namespace name of ``host``."""
        return self.prefix + host

    def add(self, host: str) -> None:
        """Host ``rN`` gets 198.18.0.N, any other ``xN`` 198.18.0.(10+N)."""
        number = int(host[1:])
        address = f"{SUBNET}.{number if host.startswith('r') else 10 + number}"
        self.addresses[host] = address
        ns, port = self.ns(host), f"v-{host}"
        ip("netns", "add", ns)
        ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")

    # --- faults ----------------------------------------------------------------------

    def cut(self, host: str) -> None:
        """Pull ``host``'s cable: its switch port goes down."""
        ip("-n", self.switch, "link", "set", f"v-{host}", "down")

    def restore(self, host: str) -> None:
        ip("-n", self.switch, "link", "set", f"v-{host}", "up")

    def partition(self, *groups: list[str]) -> None:
        """Drop every packet between hosts of different ``groups`` (blackhole routes)."""
        for i, group in enumerate(groups):
            for other in groups[i + 1:]:
                for a in group:
                    for b in other:
                        self._blackhole(a, b)
                        self._blackhole(b, a)

    def heal(self) -> None:
        """Remove every blackhole route :meth:`partition` added."""
        for host, peer in sorted(self._blackholes):
            ip("-n", self.ns(host), "route", "del", "blackhole", f"{self.addresses[peer]}/32",
               check=False)
        self._blackholes.clear()

    def _blackhole(self, host: str, peer: str) -> None:
        if (host, peer) not in self._blackholes:
            ip("-n", self.ns(host), "route", "add", "blackhole", f"{self.addresses[peer]}/32")
            self._blackholes.add((host, peer))

    # --- running things in a host ------------------------------------------------------

    def exec(self, host: str, argv: list[str]) -> list[str]:
        """``argv`` run in ``host``'s namespace (the command line for Popen)."""
        return ["ip", "netns", "exec", self.ns(host), *argv]

    def call(self, host: str, fn: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
        """``fn(*args)`` run in a thread that is in ``host``'s namespace; its result."""
        pool = self._threads.get(host)
        if pool is None:
            pool = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix=f"netns-{host}", initializer=_enter,
                initargs=(f"/run/netns/{self.ns(host)}",))
            self._threads[host] = pool
        return pool.submit(fn, *args).result(timeout)

    def close(self) -> None:
        """Delete this run's namespaces (their veths and the bridge go with them)."""
        if self._closed:
            return
        self._closed = True
        for pool in self._threads.values():
            pool.shutdown(wait=False, cancel_futures=True)
        for name in namespaces():
            if name.startswith(self.prefix):
                ip("netns", "del", name, check=False)
        atexit.unregister(self.close)


_libc = ctypes.CDLL(None, use_errno=True)


def _enter(path: str) -> None:
    """Move the calling thread into the network namespace at ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
    finally:
        os.close(fd)
