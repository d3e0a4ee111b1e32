"""The process actor: one OS process of a service, as a child of the application supervisor.

A :class:`ProcessActor` runs a :class:`~.machine.ProcessMachine` in its own
pykka thread and mirrors every move of the machine into
:meth:`dsmt.actor.Actor.change_state` (machine :data:`dsmt.states.PROCESS`),
so each one is validated and published as a retained status event with the
pid, attempt, restarts, last exit and ``ready`` (running and passing its
health check, see :mod:`.machine`); a change of readiness without a move is
re-published the same way (:meth:`dsmt.actor.Actor.update_detail`), so an
observer of the path -- the application supervisor -- hears of each one.

Life cycle:

- ``on_start`` spawns the process, or re-adopts the journaled one when
  started with ``record=`` (falling back to a fresh spawn if the record is
  stale: the pid is gone or was reused), and returns at once: the
  supervisor sees the actor started while the process is ``starting``.
  With ``replace=`` (a reason) as well, the adopted process is one to get
  rid of (an older version): it is stopped like any other and a fresh one
  started. A supervisor restarting the actor hands it the same record;
  by then the process is gone, so the restart spawns.
- Exits, health results and timers arrive in other threads and are
  ``tell()``-ed to the actor, so the machine only ever runs in the actor's
  thread. A crash is seen by the pidfd watcher and the restart is spawned by
  the actor within a couple of milliseconds.
- Restarts *inside* the actor follow the :class:`~.policy.ProcessPolicy`
  (supervisord semantics). When the machine settles without a process —
  ``exited`` with no restart wanted, or ``fatal`` — the actor stops itself:
  :data:`dsmt.actor.NORMAL` for an expected exit code, otherwise an
  :class:`dsmt.actor.Error` (``ProcessExited`` / ``ProcessFatal``), and the
  application supervisor's restart type, backoff and intensity take over.
  ``autorestart="never"`` therefore hands every restart decision to OTP.
- ``on_stop`` (the supervisor's ``shutdown``, or ``ref.stop()``) stops the
  process group — stopsignal, ``stopwaitsecs``, SIGKILL — and blocks until
  it is gone; give the child spec a ``shutdown`` longer than
  ``stopwaitsecs`` (:func:`process_spec` does). A crash of the actor itself
  (``on_failure``) does the same. A ``brutal_kill`` runs neither hook: the
  group is then sent SIGKILL from the actor's teardown, without waiting.
- ``container`` (optional, the registry path of the sliver's
  :class:`actors.container.ContainerManager`; needs ``service`` and
  ``instance`` in the config): ``on_start`` asks it once for the instance's
  limits (:meth:`~actors.container.ContainerManager.limits_for_process`, a
  bounded ask) and every process of the actor starts under them -- rlimits
  and the instance's cgroup, applied in the child before exec; the actor
  tells it :meth:`~actors.container.ContainerManager.release_process` when
  it ends. No container there, no answer within :data:`LIMITS_TIMEOUT`, or
  a refusal (the sliver is deselected): the actor fails to start with that
  reason and no process runs unlimited.
- ``journal(path, record)`` (optional) is called in the actor's thread with
  the :class:`~.handle.ProcessRecord` of each new process (an adopted one
  included, unless it is being replaced: its journal entry stays as it
  was) and with None when it is gone, so the node agent can persist what
  to re-adopt. If it raises, the error is logged and the process goes on.

Deviation, and why: the brutal-kill cleanup overrides pykka's private
``_actor_loop_teardown`` (as :mod:`dsmt.actor` overrides its siblings),
because pykka runs no public hook for an actor stopped that way.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Hashable, Mapping

import pykka

from dsmt.actor import NORMAL, SHUTDOWN, Actor, Error, Origin
from dsmt.childspec import ChildSpec
from dsmt.errors import DsmtError
from dsmt.states import EXITED, FATAL, PROCESS, STOPPED, Machine

from actors.process.handle import ProcessRecord
from actors.process.machine import ProcessMachine
from actors.process.policy import ProcessPolicy
from actors.process.logread import Cursor, since, tail
from actors.process.rotating import LogSpec
from actors.process.seam import ProcessOs, RealOs
from actors.process.spawn import Command

log = logging.getLogger(__name__)

Journal = Callable[[str, "ProcessRecord | None"], None]

# The supervisor's wait for on_stop beyond stopwaitsecs: SIGKILL and reaping take a moment.
SHUTDOWN_MARGIN = 5.0
# The most of a log ``log_tail`` returns: a command's reply crosses PsEPR as one stanza.
TAIL_BYTES = 8192
# Seconds a process actor waits for the container manager's answer about its limits.
LIMITS_TIMEOUT = 10.0


class LimitsUnavailable(DsmtError):
    """The container manager could not be asked for a process's limits."""


class NoLogs(DsmtError):
    """A process actor asked for its logs has none (started without a LogSpec)."""


@dataclass(frozen=True)
class _Run:
    """An event from another thread (exit, health result, timer), run in the actor's thread."""

    fn: Callable[[], None]


class ProcessActor(Actor):
    """Start with ``ProcessActor.start(origin, command=..., policy=..., logs=..., record=...)``."""

    machine: ClassVar[Machine] = PROCESS
    exit_states: ClassVar[Mapping[str, str]] = {SHUTDOWN: STOPPED}

    def __init__(
        self,
        origin: Origin,
        command: Command,
        policy: ProcessPolicy = ProcessPolicy(),
        logs: LogSpec | None = None,
        record: ProcessRecord | None = None,
        journal: Journal | None = None,
        replace: str | None = None,
        os: ProcessOs | None = None,
        container: str | None = None,
        **config: Any,
    ) -> None:
        if container is not None and ("service" not in config or "instance" not in config):
            raise ValueError("a process actor with a container needs its service and instance")
        super().__init__(origin, argv=list(command.argv), container=container, **config)
        self.process = ProcessMachine(
            command, policy, os=os or RealOs(clock=self.ctx.clock), clock=self.ctx.clock,
            logs=logs, post=self._post, on_change=self._on_change,
            on_ready=lambda ready: self.update_detail(ready=ready))
        self._record = record
        self._replace = replace
        self._journal = journal
        self._journaled: ProcessRecord | None = None
        self._container = container
        self.limits: Any = None  # the container's ProcessLimits, once asked

    # --- hooks (actor thread) ------------------------------------------------------

    def on_start(self) -> None:
        if self._container is not None:
            self._ask_limits()
        if self._record is not None:
            if self._replace is not None:
                self._journaled = self._record  # keep its entry until its successor's
            if self.process.adopt(self._record, self._replace):
                return
            self._journaled = None
        if self._record is not None:
            log.info("%s: journaled pid %d is gone or reused; starting afresh",
                     self.path, self._record.pid)
        self.process.start("started")
        self._settle()

    def on_stop(self) -> None:
        self.process.shutdown()
        self._write_journal()
        self._release()

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.process.shutdown()
        except Exception:
            log.exception("%s: stopping the process after a failure failed", self.path)
        self._write_journal()
        self._release()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Run):
            message.fn()
            self._settle()
            return None
        return super().on_receive(message)

    # --- API (actor thread, through a proxy) ------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return self.process.snapshot()

    def log_tail(self, stream: str = "out", lines: int = 40,
                 follow: bool = False) -> dict[str, Any]:
        """The last ``lines`` lines of the process's ``stream`` log (``out`` or ``err``), from
        at most :data:`TAIL_BYTES` of it, and the cursor a follower reads on from (with
        ``follow``, a line still being written is left to it); raises :class:`NoLogs`
        without log files."""
        logs = self._logs()
        found = tail(logs, stream, lines, TAIL_BYTES, whole=follow)
        return {**self._log_of(logs, stream), "lines": found.lines,
                "truncated": found.truncated, "cursor": found.cursor.to_wire()}

    def log_since(self, stream: str, cursor: Cursor) -> dict[str, Any]:
        """The whole lines of ``stream`` after ``cursor``, at most :data:`TAIL_BYTES` of
        them (see :mod:`actors.process.logread`)."""
        logs = self._logs()
        chunk = since(logs, stream, cursor, TAIL_BYTES)
        return {**self._log_of(logs, stream), "lines": chunk.lines,
                "cursor": chunk.cursor.to_wire(), "more": chunk.more, "skipped": chunk.skipped,
                "lost": chunk.lost}

    def _log_of(self, logs: LogSpec, stream: str) -> dict[str, Any]:
        return {"path": self.path, "stream": stream, "file": str(logs.path(stream))}

    def _logs(self) -> LogSpec:
        logs = self.process.logs
        if logs is None:
            raise NoLogs(f"{self.path} has no log files: its output goes to /dev/null")
        return logs

    def inspect(self) -> dict[str, Any]:
        return {**super().inspect(), "process": self.process.snapshot(),
                "limits": None if self.limits is None else self.limits.summary()}

    # --- internals ----------------------------------------------------------------------

    def _ask_limits(self) -> None:
        """Get this instance's limits from the container manager; they apply to every spawn."""
        ref = self.ctx.registry.get(self._container)
        if ref is None:
            raise LimitsUnavailable(f"no container manager at {self._container}")
        service, instance = self.config["service"], self.config["instance"]
        try:
            limits = ref.proxy().limits_for_process(service, instance).get(
                timeout=LIMITS_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            raise LimitsUnavailable(f"{self._container} did not give the limits of "
                                    f"{service}/{instance}: {exc or type(exc).__name__}") from None
        self.limits = limits
        machine = self.process
        machine.command = dataclasses.replace(machine.command, preexec=limits.preexec)

    def _release(self) -> None:
        """Tell the container manager this instance's actor is done (its cgroup may go)."""
        if self.limits is None:
            return
        ref = self.ctx.registry.get(self._container)
        if ref is not None:
            try:
                ref.proxy().release_process(self.config["service"], self.config["instance"])
            except pykka.ActorDeadError:
                pass

    def _post(self, fn: Callable[[], None]) -> None:
        try:
            self.actor_ref.tell(_Run(fn))
        except pykka.ActorDeadError:
            pass  # the actor has ended; on_stop already dealt with the process

    def _on_change(self, state: str, reason: str | None, detail: dict) -> None:
        self.change_state(state, reason, **detail)
        self.count(f"state.{state}")
        self._write_journal()

    def _write_journal(self) -> None:
        handle = self.process.handle
        record = handle.record if handle is not None else None
        if record != self._journaled and self._journal is not None:
            try:
                self._journal(self.path, record)
            except Exception:  # a boundary: the process must not pay for its journal
                log.exception("%s: journaling pid %s failed", self.path,
                              None if record is None else record.pid)
        self._journaled = record

    def _settle(self) -> None:
        """End the actor when the machine is left without a process (see the module docstring)."""
        state, last = self.process.state, self.process.last_exit
        if state == FATAL:
            self.stop(Error("ProcessFatal", self.reason or "fatal"))
        elif state == EXITED:
            expected = last is not None and last.code in self.process.policy.exitcodes
            self.stop(NORMAL if expected else Error("ProcessExited", str(last)))

    def _actor_loop_teardown(self) -> None:
        self.process.kill()  # brutally killed, no on_stop ran; after on_stop there is no process
        super()._actor_loop_teardown()


def process_spec(
    child_id: Hashable,
    command: Command,
    policy: ProcessPolicy = ProcessPolicy(),
    *,
    logs: LogSpec | None = None,
    record: ProcessRecord | None = None,
    journal: Journal | None = None,
    replace: str | None = None,
    os: ProcessOs | None = None,
    container: str | None = None,
    **spec: Any,
) -> ChildSpec:
    """A :class:`dsmt.childspec.ChildSpec` for a process actor, with a fitting ``shutdown``."""
    if "shutdown" not in spec:
        spec["shutdown"] = None if policy.stopwaitsecs is None \
            else policy.stopwaitsecs + SHUTDOWN_MARGIN
    kwargs = {"command": command, "policy": policy, "logs": logs, "record": record,
              "journal": journal, "replace": replace, "os": os, "container": container}
    return ChildSpec(child_id, ProcessActor, kwargs, **spec)
