"""The life of one service process, as supervisord runs it: a pure state machine.

States are :data:`dsmt.states.PROCESS` (``stopped, starting, running,
backoff, stopping, exited, fatal``); every move goes through
:meth:`ProcessMachine._move`, which checks the table and calls ``on_change``.

==========  ===========================  ========================================
state       event                        what happens
==========  ===========================  ========================================
stopped     start                        spawn → starting (spawn error: as an exit)
stopped     adopt (journaled, alive)     → starting → running (``adopted``); with
                                         ``replace``: then stop, as below
stopped     adopt (gone, pid reused)     nothing (the caller starts afresh)
starting    startsecs elapsed            → running (``attempt`` back to 0)
starting    health check passes          → running
starting    exited / spawn error         attempt += 1; ≤ startretries → backoff,
                                         else → fatal
backoff     timer (backoff delay)        spawn → starting
running     exited, restart wanted       → exited → spawn → starting (no delay)
running     exited, no restart           → exited
running     turns unhealthy              → stopping, then exited → starting
running     health turns (no restart)    stays running; ``on_ready`` says if it is ready
starting,
running     stop                         → stopping: stopsignal to the group,
                                         SIGKILL after stopwaitsecs
stopping    exited                       → stopped (or → exited → starting when
                                         the stop was a restart)
backoff,
exited,
fatal       stop                         → stopped
exited,
fatal       start                        spawn → starting (attempt reset)
==========  ===========================  ========================================

When the group leader exits, whatever is left of its process group is sent
SIGKILL (see :mod:`.stop`). Events from a previous process (a late exit or
health result, a cancelled timer) are recognised and ignored.

Threads: the machine is not thread-safe; it runs in one thread (the process
actor's). Exit notifications, health results and timers arrive in other
threads, so each is passed to ``post(fn)``, which must run ``fn()`` in the
machine's thread (the actor ``tell()``\\s itself); the default runs it at
once, which is what unit tests with :class:`~.testing.FakeOs` and
:class:`dsmt.testing.FakeClock` want. ``on_change(state, reason, detail)``
runs in the machine's thread after each move; ``detail`` always has
``ready``.

Ready: a process is :attr:`ProcessMachine.ready` -- may count as serving --
when it is running and, if its policy has a health check, the check has
passed since the spawn and the monitor's verdict is still healthy (fewer
than ``threshold`` failures in a row since). A process running only because
``startsecs`` elapsed, or running but unhealthy (``restart_unhealthy``
off), is not. A change of readiness without a move (the first pass after
``startsecs``, turning unhealthy or healthy again while running) calls
``on_ready(ready)``; a move says it in its ``detail``.
"""

from __future__ import annotations

import random
import signal
from concurrent.futures import Future, TimeoutError as FutureTimeout
from typing import Any, Callable

from dsmt.clock import Clock, Timer
from dsmt.states import BACKOFF, EXITED, FATAL, PROCESS, RUNNING, STARTING, STOPPED, STOPPING

from actors.process.handle import ExitStatus, ProcessHandle, ProcessRecord
from actors.process.health import HealthResult
from actors.process.policy import ALWAYS, NEVER, ProcessPolicy
from actors.process.rotating import LogSpec
from actors.process.seam import Monitor, ProcessOs
from actors.process.spawn import Command

Post = Callable[[Callable[[], None]], None]
OnChange = Callable[[str, "str | None", dict], None]
OnReady = Callable[[bool], None]

_STOP, _RESTART_VIA_EXITED, _RESTART_VIA_STOPPED = "stop", "restart-exited", "restart-stopped"


def _direct(fn: Callable[[], None]) -> None:
    fn()


class ProcessMachine:
    """One service process under ``policy`` (see the module docstring)."""

    def __init__(
        self,
        command: Command,
        policy: ProcessPolicy = ProcessPolicy(),
        *,
        os: ProcessOs,
        clock: Clock,
        logs: LogSpec | None = None,
        post: Post = _direct,
        on_change: OnChange | None = None,
        on_ready: OnReady | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.command = command
        self.policy = policy
        self.logs = logs
        self.state = PROCESS.initial
        self.handle: ProcessHandle | None = None
        self.attempt = 0  # failed starts in a row
        self.spawns = 0
        self.restarts = 0  # spawns after an exit from running or an unhealthy stop
        self.last_exit: ExitStatus | None = None
        self.next_attempt: float | None = None  # clock.monotonic() of the pending retry
        self.healthy: bool | None = None
        self._passed = False  # a health check passed since the spawn
        self._os = os
        self._clock = clock
        self._post = post
        self._on_change = on_change
        self._on_ready = on_ready
        self._rng = rng or random.Random()
        self._timer: Timer | None = None
        self._token = 0
        self._monitor: Monitor | None = None
        self._after_stop = _STOP
        self.reason_for_stop: str | None = None
        self._stop_waiters: list[Future[None]] = []

    # --- commands ---------------------------------------------------------------

    def start(self, reason: str = "start requested") -> None:
        """Start now (also cutting a backoff short); a no-op while starting, running or stopping."""
        if self.state in (STARTING, RUNNING, STOPPING):
            return
        if self.state != BACKOFF:
            self.attempt = 0
        self._cancel_timer()
        self._spawn(reason)

    def stop(self, reason: str = "stop requested") -> Future[None]:
        """Stop the process; the future resolves once the machine is ``stopped``."""
        done: Future[None] = Future()
        if self.state == STOPPED:
            done.set_result(None)
        elif self.state in (STARTING, RUNNING, STOPPING):
            self._stop_waiters.append(done)
            if self.state == STOPPING:
                self._after_stop = _STOP
            else:
                self._begin_stop(_STOP, reason)
        else:  # backoff, exited, fatal: there is no process
            self._cancel_timer()
            self.next_attempt = None
            self._move(STOPPED, reason)
            done.set_result(None)
        return done

    def restart(self, reason: str = "restart requested") -> None:
        """Stop the process if there is one (→ stopped), then start it again."""
        if self.state in (STARTING, RUNNING):
            self._begin_stop(_RESTART_VIA_STOPPED, reason)
        elif self.state == STOPPING:
            self._after_stop = _RESTART_VIA_STOPPED
        else:
            self.start(reason)

    def adopt(self, record: ProcessRecord, replace: str | None = None) -> bool:
        """Take over the journaled live process (stopped → starting → running); False if refused.

        With ``replace`` (the reason: an older version, another port), the
        adopted process is then stopped like any other (stopsignal,
        stopwaitsecs, SIGKILL of its group) and a fresh one started once it
        is gone: running → stopping → stopped → starting.
        """
        if self.state != STOPPED:
            raise RuntimeError(f"adopt needs state stopped, not {self.state}")
        handle = self._os.adopt(record, self.logs)
        if handle is None:
            return False
        self.handle = handle
        self.healthy, self._passed = None, False
        self._move(STARTING, "adopted")
        self._move(RUNNING, "adopted")
        self._watch(handle)
        if replace is not None:
            self.restart(replace)
        return True

    def shutdown(self, kill_wait: float = 5.0) -> ExitStatus | None:
        """Stop and *block* until the process is gone; for an actor's ``on_stop``.

        Waits on the exit future directly (the actor's mailbox is not served
        during ``on_stop``): ``stopwaitsecs``, then SIGKILL and ``kill_wait``
        more. Returns the exit status, None if there was no process, and
        raises TimeoutError if even SIGKILL did not end it.
        """
        handle = self.handle
        self.stop("shutdown")
        if handle is None:
            return None
        try:
            status = handle.exited.result(timeout=self.policy.stopwaitsecs)
        except FutureTimeout:
            self._os.signal(handle, signal.SIGKILL)
            status = handle.exited.result(timeout=kill_wait)
        self.on_exited(handle, status)
        return status

    def kill(self) -> None:
        """SIGKILL the process group now, without waiting and without a move (last resort)."""
        if self.handle is not None:
            self._os.signal(self.handle, signal.SIGKILL)

    # --- events (machine thread) ---------------------------------------------------

    def on_exited(self, handle: ProcessHandle, status: ExitStatus) -> None:
        if handle is not self.handle:
            return
        self.handle = None
        self.last_exit = status
        self._stop_monitor()
        self._cancel_timer()
        self._os.signal(handle, signal.SIGKILL)  # what the leader left behind in its group
        why = str(status)
        if self.state == STARTING:
            self._start_failed(f"exited while starting: {why}")
        elif self.state == RUNNING:
            self._move(EXITED, why)
            if self._wants_restart(status):
                self.restarts += 1
                self._spawn(f"restart after {why}")
        elif self.state == STOPPING:
            after, self._after_stop = self._after_stop, _STOP
            if after == _RESTART_VIA_EXITED:
                self._move(EXITED, self.reason_for_stop)
                self.restarts += 1
                self._spawn(f"restart after {self.reason_for_stop}")
            else:
                self._move(STOPPED, why)
                waiters, self._stop_waiters = self._stop_waiters, []
                for waiter in waiters:
                    waiter.set_result(None)
                if after == _RESTART_VIA_STOPPED:
                    self.attempt = 0
                    self._spawn("restart requested")

    def on_health(self, handle: ProcessHandle, result: HealthResult) -> None:
        if handle is not self.handle:
            return
        was = self.ready
        self.healthy = result.healthy
        self._passed = self._passed or result.ok
        if self.state == STARTING and result.ok:
            self._running(f"health check passed: {result.detail}")
        elif (self.state == RUNNING and result.changed and not result.healthy
              and self.policy.restart_unhealthy):
            self._begin_stop(_RESTART_VIA_EXITED, f"unhealthy: {result.detail}")
        elif self.ready != was and self._on_ready is not None:
            self._on_ready(self.ready)

    @property
    def ready(self) -> bool:
        """Running and, with a health check, passing it (see the module docstring)."""
        return self.state == RUNNING and (self.policy.health is None
                                          or (self._passed and self.healthy is True))

    # --- inspection -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A plain dict for ``inspect()``."""
        handle = self.handle
        return {
            "state": self.state,
            "pid": handle.pid if handle else None,
            "adopted": handle.adopted if handle else False,
            "record": handle.record.to_dict() if handle else None,
            "attempt": self.attempt,
            "spawns": self.spawns,
            "restarts": self.restarts,
            "last_exit": None if self.last_exit is None else str(self.last_exit),
            "next_attempt_in": None if self.next_attempt is None
            else max(0.0, self.next_attempt - self._clock.monotonic()),
            "healthy": self.healthy,
            "ready": self.ready,
        }

    # --- internals ---------------------------------------------------------------------

    def _spawn(self, reason: str) -> None:
        self.next_attempt = None
        try:
            handle = self._os.spawn(self.command, self.logs)
        except OSError as exc:
            self._move(STARTING, reason)
            self._start_failed(f"spawn failed: {exc}")
            return
        self.handle = handle
        self.spawns += 1
        self.healthy, self._passed = None, False
        self._move(STARTING, reason)
        if self.policy.startsecs == 0:
            self._running("startsecs is 0")
        else:
            self._set_timer(self.policy.startsecs, self._startsecs_elapsed)
        self._watch(handle)

    def _watch(self, handle: ProcessHandle) -> None:
        health = self.policy.health
        if health is not None:
            self._monitor = self._os.monitor(
                health.check, health.policy,
                lambda result: self._post(lambda: self.on_health(handle, result)))
            self._monitor.start(health.delay)
        handle.exited.add_done_callback(
            lambda done: self._post(lambda: self.on_exited(handle, done.result())))

    def _startsecs_elapsed(self) -> None:
        if self.state == STARTING:
            self._running(f"up for {self.policy.startsecs}s")

    def _running(self, reason: str) -> None:
        self._cancel_timer()
        self.attempt = 0
        self._move(RUNNING, reason)

    def _start_failed(self, why: str) -> None:
        self.attempt += 1
        if self.attempt > self.policy.startretries:
            self._move(FATAL, f"{why}; gave up after {self.attempt} failed starts")
            return
        delay = self.policy.backoff.delay(self.attempt - 1, self._rng)
        self.next_attempt = self._clock.monotonic() + delay
        self._move(BACKOFF, why, retry_in=round(delay, 3))
        self._set_timer(delay, lambda: self._spawn(f"retry {self.attempt} of "
                                                   f"{self.policy.startretries}"))

    def _wants_restart(self, status: ExitStatus) -> bool:
        if self.policy.autorestart == ALWAYS:
            return True
        if self.policy.autorestart == NEVER:
            return False
        return status.code not in self.policy.exitcodes  # unknown status counts as unexpected

    def _begin_stop(self, after: str, reason: str) -> None:
        self._after_stop = after
        self.reason_for_stop = reason
        self._cancel_timer()
        self._stop_monitor()
        self._move(STOPPING, reason)
        handle = self.handle
        self._os.signal(handle, self.policy.stopsignal)
        if self.policy.stopwaitsecs is not None:
            self._set_timer(self.policy.stopwaitsecs, lambda: self._escalate(handle))

    def _escalate(self, handle: ProcessHandle) -> None:
        if self.state == STOPPING and handle is self.handle:
            self._os.signal(handle, signal.SIGKILL)

    def _move(self, new: str, reason: str | None, **extra: Any) -> None:
        self.state = PROCESS.check(self.state, new)
        if self._on_change is not None:
            detail = {"pid": self.handle.pid if self.handle else None,
                      "attempt": self.attempt, "restarts": self.restarts, "ready": self.ready,
                      **extra}
            if self.handle is not None and self.handle.adopted:
                detail["adopted"] = True
            if new in (EXITED, FATAL, STOPPED) and self.last_exit is not None:
                detail.update(exit=str(self.last_exit), exit_pid=self.last_exit.pid,
                              exit_code=self.last_exit.returncode)
            self._on_change(new, reason, detail)

    def _set_timer(self, delay: float, fn: Callable[[], None]) -> None:
        self._cancel_timer()
        token = self._token

        def fire() -> None:
            if token == self._token:
                self._timer = None
                fn()

        self._timer = self._clock.call_later(delay, lambda: self._post(fire))

    def _cancel_timer(self) -> None:
        self._token += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _stop_monitor(self) -> None:
        if self._monitor is not None:
            self._monitor.stop()
            self._monitor = None
