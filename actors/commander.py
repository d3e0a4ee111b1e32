"""The commander: runs the signed slice commands addressed to this sliver.

One per sliver, the last child of the root supervisor. It reads the command
channels of the local hub (the bridge imports them from PsEPR)::

    {base}org.dsmt.component.sliver/command/            every sliver
    {base}org.dsmt.component.sliver/command/<sliver>/   this sliver

verifies each :data:`dsmt.event.COMMAND` event with the slice key
(:func:`dsmt.commands.verify`) and runs it. A verified command whose body
targets another sliver is ignored (counted ``ignored``).

=========  ==================  ===============================================
command    args                effect
=========  ==================  ===============================================
restart    ``path``            the actor at ``path`` fails (:func:`dsmt.actor.fail`);
                               its supervisor restarts it per its spec
stop       ``path``            ``terminate_child`` on its parent supervisor
inspect    ``path``            the actor's ``inspect()`` snapshot (the result)
logs       ``path``,           the last ``lines`` (1..1000, default 40) lines of
           ``stream``,         the ``out`` or ``err`` log of the process actor at
           ``lines``,          ``path`` (the result: ``{path, stream, file, lines,
           [``follow``],       truncated, cursor}``; at most 8 KiB of log; with
           [``cursor``]        ``follow``, whole lines only); with a ``cursor``
                               (from the previous result), the whole lines written
                               after it instead (``{path, stream, file, lines,
                               cursor, more, skipped, lost}``, see
                               :mod:`actors.process.logread`)
deselect   [``drain``]         told to ``/<sliver>/coordinator`` as a
                               :class:`actors.messages.Drain` (outcome
                               ``forwarded``): out of placement at once, the app
                               kept running until the peers run its share (at
                               most ``drain`` seconds, default 60; 0: at once),
                               then ``deselect()`` of ``/<sliver>/container-mgr/
                               container``: the app stopped, the workspace
                               released; the coordinator replies (result
                               ``{"state", "drained", "seconds"}``, see
                               :mod:`actors.coordinator.drain`). Without a
                               coordinator, the container's ``deselect()`` at once
select     --                  an :class:`~actors.messages.Undrain` to the
                               coordinator (a drain under way ends), then
                               ``select()`` of the container: the app started
                               again, the workspace prepared, back in placement
                               (waited for ``wait`` + ``APP_WAIT`` seconds)
deploy,    as sent             told to ``/<sliver>/coordinator`` as a
undeploy,                      :class:`actors.messages.PlanCommand` (outcome
scale                          ``forwarded``)
=========  ==================  ===============================================

A ``path`` must lie under ``/<sliver>/`` and may not be the commander
itself (a commander that stops itself could not reply).

Every outcome is published, not retained, on ``layout.reply(request)`` as
a :data:`dsmt.event.RECORD`::

    {"request": id, "sliver": name, "command": name or None,
     "outcome": "done" | "forwarded" | "failed" | "rejected",
     "reason": text or None, "result": any or None}

and, unless it is the success of a command that only reads (``inspect``,
``logs``: a follower asks every second), becomes the ``last`` detail of the
commander's own status (re-published).
A rejection whose body names no usable request id is published on the
status only. ``inspect()`` counts ``accepted``, ``rejected``,
``rejected.<reason>``, ``done``, ``failed``, ``ignored``.

Key: ``key_file`` (from node.toml) is loaded at start; without one, or if
it cannot be read (logged), every command is rejected as ``no-key`` and the
status reason says why. The :class:`dsmt.commands.ReplayCache` is given in
the child spec, so a restarted commander keeps the nonces its predecessor
accepted; the sliver gives it the workspace's state database, where the
nonces are kept until they expire, so a node restart keeps them too
(``inspect()``: ``replay_cache``, ``replay_persisted``, ``replay_error``).

Threads: a reader thread owns the bus :class:`dsmt.bus.Subscriber` and only
``tell()``\\s this actor each command event; everything else, including the
bounded waits on other actors (``wait`` seconds), runs in the actor's
thread (:class:`dsmt.reader.HubReader`, stopped at once through its latch).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pykka

from dsmt import commands
from dsmt.actor import Actor, Origin, fail
from dsmt.bus import Bus
from dsmt.commands import Body, CommandRejected, ReplayCache
from dsmt.errors import DsmtError, SupervisorError
from dsmt.event import COMMAND, RECORD, Event
from dsmt.reader import HubReader
from dsmt.states import INITIATED, INSTANTIATED, REQUESTED, RUNNING

from actors.container.manager import APP_WAIT
from actors.process.logread import Cursor
from actors.messages import Drain, PlanCommand, Undrain

log = logging.getLogger(__name__)

COMPONENT = "sliver"  # commands address the sliver as a whole
START_TIMEOUT = 10.0
STOP_TIMEOUT = 3.0
PLAN_COMMANDS = frozenset({"deploy", "undeploy", "scale"})
# Commands that only read: answered, but not recorded as the status's ``last`` (their
# nonces are kept on disk as every command's: no replay after a restart either).
READ_ONLY = frozenset({"inspect", "logs"})
_PROXIES = 64  # proxies kept, one per actor commanded (then all are made afresh)
DRAIN_TIMEOUT = 60.0  # seconds a deselect waits at most for the peers to run the share

DONE = "done"
FORWARDED = "forwarded"
FAILED = "failed"
REJECTED = "rejected"


class CommandFailed(DsmtError):
    """A verified command could not be carried out; the message says why."""


class RestartRequested(DsmtError):
    """The exception a ``restart`` command makes its target fail with."""


@dataclass(frozen=True, slots=True)
class _Received:
    event: Event


@dataclass(frozen=True, slots=True)
class _ReaderFailed:
    error: str


class Commander(Actor):
    """Verifies and runs slice commands: ``Commander.start(origin, key_file=..., replay=...)``."""

    def __init__(self, origin: Origin, *, key_file: str | Path | None = None,
                 replay: ReplayCache | None = None, bus: Bus | None = None,
                 wait: float = 10.0) -> None:
        super().__init__(origin, key_file=None if key_file is None else str(key_file),
                         wait=wait)
        self.key_file = None if key_file is None else Path(key_file)
        self.replay = replay if replay is not None else ReplayCache()
        self._proxies: dict[str, Any] = {}
        self.bus = bus
        self.wait = wait
        self.key: bytes | None = None
        self.key_problem: str | None = None
        self._reader: HubReader | None = None

    # --- hooks (actor thread) --------------------------------------------------

    def on_start(self) -> None:
        self.change_state(REQUESTED)
        self._load_key()
        layout = self.ctx.layout
        channels_ = (layout.command(COMPONENT), layout.command(COMPONENT, self.ctx.sliver))
        bus = self.bus or _bus_of(self.ctx)
        me = self.actor_ref

        def deliver(event: Event, from_snapshot: bool) -> None:  # the reader's thread
            if event.type == COMMAND and event.channel in channels_:
                _tell_quietly(me, _Received(event))

        self._reader = HubReader(bus, (layout.command(COMPONENT),), deliver,
                                 lambda exc: _tell_quietly(me, _ReaderFailed(repr(exc))),
                                 name=f"commander-reader-{self.ctx.sliver}").start(START_TIMEOUT)
        self.change_state(INITIATED, self.key_problem)
        self.change_state(INSTANTIATED, self.key_problem)
        self.change_state(RUNNING, self.key_problem, **self._detail())

    def on_stop(self) -> None:
        self._stop_reader()

    def on_failure(self, *exc_info: Any) -> None:
        self._stop_reader()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Received):
            self._handle(message.event)
        elif isinstance(message, _ReaderFailed):
            raise DsmtError(f"command reader failed: {message.error}")
        return None

    def inspect(self) -> dict[str, Any]:
        snapshot = super().inspect()
        snapshot["key"] = {"file": self.config["key_file"], "loaded": self.key is not None,
                           "problem": self.key_problem}
        snapshot["replay_cache"] = len(self.replay)
        snapshot["replay_persisted"] = self.replay.persisted
        snapshot["replay_error"] = self.replay.persist_error
        return snapshot

    # --- commands (actor thread) -------------------------------------------------

    def _handle(self, event: Event) -> None:
        try:
            body = commands.verify(self.key, event.payload, slice=self.ctx.layout.slice,
                                   now=self.ctx.clock.wall(), replay=self.replay)
        except CommandRejected as exc:
            self.count(REJECTED)
            self.count(f"{REJECTED}.{exc.reason}")
            log.warning("%s: %s (event %s from %s)", self.path, exc, event.id, event.sender)
            self._outcome(exc.request, None, REJECTED, exc.reason, {"detail": exc.detail,
                                                                    "from": str(event.sender)})
            return
        if body.target not in (commands.ALL, self.ctx.sliver):
            self.count("ignored")
            return
        self.count("accepted")
        try:
            outcome, result, after = self._run(body)
        except DsmtError as exc:  # CommandFailed, SupervisorError, ContainerError ...: said
            self.count(FAILED)
            self._outcome(body.request, body.command, FAILED, str(exc), None)
            return
        except pykka.Timeout:
            self.count(FAILED)
            self._outcome(body.request, body.command, FAILED,
                          f"no answer within {self.wait}s", None)
            return
        except Exception as exc:  # the command boundary: the commander keeps serving
            log.exception("%s: command %s failed", self.path, body.command)
            self.count(FAILED)
            self._outcome(body.request, body.command, FAILED, f"{type(exc).__name__}: {exc}",
                          None)
            return
        self.count(DONE)
        self._outcome(body.request, body.command, outcome, None, result)
        if after is not None:
            after()  # e.g. the restart itself: only once the reply is out

    def _run(self, body: Body) -> tuple[str, Any, Callable[[], None] | None]:
        """(outcome, result, what to do after replying) of a verified command for us."""
        name, args = body.command, body.args
        if name == "restart":
            path, ref = self._target(args)
            return DONE, {"path": path}, lambda: fail(ref, RestartRequested(
                f"restart requested by command {body.request}"))
        if name == "stop":
            path, _ = self._target(args)
            parent_path, child, parent = self.ctx.registry.supervisor_of(path)
            if parent is None or not hasattr(self._proxy(parent), "terminate_child"):
                raise CommandFailed(f"{path}: its parent {parent_path} is not a supervisor")
            self._terminate(parent, child)
            return DONE, {"path": path}, None
        if name == "inspect":
            path, ref = self._target(args, allow_self=True)
            snap = self.inspect() if path == self.path else self._proxy(ref).inspect().get(
                timeout=self.wait)
            return DONE, _plain(snap), None
        if name == "logs":
            return DONE, self._logs(args), None
        coordinator_path = f"/{self.ctx.sliver}/coordinator"
        coordinator = self.ctx.registry.get(coordinator_path)
        if name == "deselect" and coordinator is not None:  # drained, then replied by it
            coordinator.tell(Drain(_drain_timeout(args), body.request))
            return FORWARDED, {"to": coordinator_path}, None
        if name == "select" and coordinator is not None:
            coordinator.tell(Undrain(body.request))  # a drain under way ends first
        if name in ("deselect", "select"):  # stopping or starting the app may take a while
            container = self._proxy(self._ref(f"/{self.ctx.sliver}/container-mgr/container"))
            state = getattr(container, name)().get(timeout=self.wait + APP_WAIT)
            return DONE, {"state": state}, None
        if name in PLAN_COMMANDS:
            self._ref(coordinator_path).tell(PlanCommand(name, dict(args), body.request))
            return FORWARDED, {"to": coordinator_path}, None
        raise CommandFailed(f"unknown command {name!r}")

    def _logs(self, args: Any) -> dict[str, Any]:
        path, ref = self._target(args)
        stream, lines = args.get("stream", "out"), args.get("lines", 40)
        if stream not in ("out", "err"):
            raise CommandFailed(f"stream must be out or err, got {stream!r}")
        if type(lines) is not int or not 1 <= lines <= 1000:
            raise CommandFailed(f"lines must be an int in 1..1000, got {lines!r}")
        follow = args.get("follow", False)
        if type(follow) is not bool:
            raise CommandFailed(f"follow must be true or false, got {follow!r}")
        cursor = None
        if "cursor" in args:
            try:
                cursor = Cursor.from_wire(args["cursor"])
            except ValueError as exc:
                raise CommandFailed(str(exc)) from None
        proxy = self._proxy(ref)
        if not hasattr(proxy, "log_tail"):
            raise CommandFailed(f"{path} is not a process actor: it has no logs")
        reading = proxy.log_tail(stream, lines, follow) if cursor is None else \
            proxy.log_since(stream, cursor)
        return reading.get(timeout=self.wait)

    def _target(self, args: Any, *, allow_self: bool = False) -> tuple[str, Any]:
        """The path and ref of a command's target; ``allow_self`` (inspect) also admits
        the commander and the sliver's root (a bounded ask: the root never waits on us
        except while restarting us, and then the ask times out)."""
        path = args.get("path")
        base = f"/{self.ctx.sliver}/"
        if allow_self and path == base.rstrip("/"):
            return path, self._ref(path)
        if not isinstance(path, str) or not path.startswith(base) or path.endswith("/"):
            raise CommandFailed(f"path must be an actor under {base}, got {path!r}")
        if path == self.path and not allow_self:
            raise CommandFailed(f"{path} is the commander itself")
        return path, self._ref(path)

    def _proxy(self, ref: Any) -> Any:
        """A proxy of ``ref``, made once per actor: making one introspects the whole actor
        (~0.2 ms for a process actor, on every `dsmt logs --follow` read)."""
        proxy = self._proxies.get(ref.actor_urn)
        if proxy is None:
            if len(self._proxies) >= _PROXIES:
                self._proxies.clear()
            proxy = self._proxies[ref.actor_urn] = ref.proxy()
        return proxy

    def _ref(self, path: str) -> Any:
        ref = self.ctx.registry.get(path)
        if ref is None:
            raise CommandFailed(f"no actor at {path}")
        return ref

    def _terminate(self, parent: Any, child: str) -> None:
        ids: list[Any] = [child] + ([int(child)] if child.isdigit() else [])
        for i, child_id in enumerate(ids):
            try:
                self._proxy(parent).terminate_child(child_id).get(timeout=self.wait)
                return
            except SupervisorError as exc:
                if exc.reason != "not_found" or i == len(ids) - 1:
                    raise

    def _outcome(self, request: str | None, command: str | None, outcome: str,
                 reason: str | None, result: Any) -> None:
        payload = {"request": request, "sliver": self.ctx.sliver, "command": command,
                   "outcome": outcome, "reason": reason, "result": result}
        if request is not None and self.publisher is not None:
            self.publisher.publish(self.ctx.layout.reply(request), RECORD, payload)
        if command in READ_ONLY and outcome == DONE:
            return  # answered; the status keeps the last command that did something
        self.detail = {**self._detail(), "last": {k: v for k, v in payload.items()
                                                  if k != "result"}}
        self.publish_status()

    def _detail(self) -> dict[str, Any]:
        return {"key_loaded": self.key is not None,
                "rejected": self.counters.get(REJECTED, 0),
                "accepted": self.counters.get("accepted", 0)}

    def _load_key(self) -> None:
        if self.key_file is None:
            self.key_problem = "no key: node.toml has no key_file"
            return
        try:
            self.key = commands.load_key(self.key_file)
        except commands.KeyFileError as exc:
            log.error("%s: %s; every command will be rejected", self.path, exc)
            self.key_problem = f"no key: {exc}"

    def _stop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is None:
            return
        reader.close(STOP_TIMEOUT)


def _bus_of(ctx: Any) -> Bus:
    bus = getattr(ctx.publishers, "__self__", None)
    if not isinstance(bus, Bus):
        raise DsmtError("the commander needs the node's bus: pass bus=, or a context whose "
                        "publishers is Bus.publisher")
    return bus


def _tell_quietly(ref: Any, message: Any) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        pass


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data (str keys, lists, str for anything else), for the wire."""
    return json.loads(json.dumps(value, default=str))


def _drain_timeout(args: Any) -> float:
    timeout = args.get("drain", DRAIN_TIMEOUT)
    if type(timeout) not in (int, float) or not 0 <= timeout <= 3600:
        raise CommandFailed(f"drain must be seconds in 0..3600, got {timeout!r}")
    return float(timeout)
