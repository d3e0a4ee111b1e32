"""How a supervisor starts, restarts and stops one child: specs and flags.

A :class:`ChildSpec` is OTP's child specification as a frozen dataclass:

- ``id``: the child's name under its supervisor (and the last element of its path);
- ``start``: a :class:`dsmt.actor.Actor` subclass, started as
  ``start.start(origin, **kwargs)``, or any callable ``start(origin, **kwargs)``
  returning the ref of a dsmt actor started with that ``origin``;
- ``restart``: :data:`PERMANENT` (always), :data:`TRANSIENT` (only after an
  abnormal exit; ``shutdown`` counts as normal, as in OTP) or
  :data:`TEMPORARY` (never, not even when a sibling's failure takes it down);
- ``shutdown``: :data:`BRUTAL_KILL`, a timeout in seconds, or None (wait
  forever). The OTP defaults apply when left out: 5 s for a worker, forever
  for a supervisor;
- ``significant``: the child's own exit may shut the supervisor down (see
  ``auto_shutdown``); only for transient and temporary children;
- ``backoff``: DSMT's extension, a :class:`Backoff` delaying restarts;
- ``start_timeout``: how long the supervisor waits for ``on_start`` to return
  before it treats the start as failed (None: forever, as OTP does).

The return shapes of the supervisor API (:class:`ChildInfo`, :class:`Counts`)
live here too, with :func:`check_flags` / :func:`check_spec`, which raise
:class:`dsmt.errors.SupervisorError` (reason ``bad_spec``) on invalid input.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Hashable, Mapping, Sequence

from dsmt.errors import SupervisorError

PERMANENT = "permanent"
TRANSIENT = "transient"
TEMPORARY = "temporary"
RESTART_TYPES = (PERMANENT, TRANSIENT, TEMPORARY)

ONE_FOR_ONE = "one_for_one"
ONE_FOR_ALL = "one_for_all"
REST_FOR_ONE = "rest_for_one"
SIMPLE_ONE_FOR_ONE = "simple_one_for_one"
STRATEGIES = (ONE_FOR_ONE, ONE_FOR_ALL, REST_FOR_ONE, SIMPLE_ONE_FOR_ONE)

NEVER = "never"
ANY_SIGNIFICANT = "any_significant"
ALL_SIGNIFICANT = "all_significant"
AUTO_SHUTDOWNS = (NEVER, ANY_SIGNIFICANT, ALL_SIGNIFICANT)

BRUTAL_KILL = "brutal_kill"
WORKER = "worker"
SUPERVISOR = "supervisor"
_DEFAULT = "default"  # resolved by type: OTP's 5000 ms for workers, infinity for supervisors
WORKER_SHUTDOWN = 5.0


@dataclass(frozen=True)
class Backoff:
    """Exponential restart delay: ``min * factor**attempt`` capped at ``max``, ± ``jitter``.

    ``jitter`` is a fraction of the delay (0.1 = ±10 %). The attempt counter
    goes back to zero once the child has stayed up ``reset_after`` seconds
    (None: never).
    """

    min: float = 0.5
    max: float = 60.0
    factor: float = 2.0
    jitter: float = 0.1
    reset_after: float | None = 60.0

    def __post_init__(self) -> None:
        if not 0 <= self.min <= self.max or self.factor < 1 or not 0 <= self.jitter < 1:
            raise SupervisorError("bad_spec", f"invalid backoff {self}")
        if self.reset_after is not None and self.reset_after <= 0:
            raise SupervisorError("bad_spec", "backoff reset_after must be > 0 or None")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The delay before restart number ``attempt`` (0-based)."""
        base = min(self.max, self.min * self.factor ** min(attempt, 64))
        if self.jitter:
            base *= 1 + rng.uniform(-self.jitter, self.jitter)
        return max(0.0, base)


@dataclass(frozen=True)
class ChildSpec:
    """One child of a supervisor (see the module docstring for each field)."""

    id: Hashable
    start: Callable[..., Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    restart: str = PERMANENT
    shutdown: float | str | None = _DEFAULT
    type: str | None = None
    significant: bool = False
    backoff: Backoff | None = None
    start_timeout: float | None = None

    def __post_init__(self) -> None:
        kind = self.type or (SUPERVISOR if getattr(self.start, "is_supervisor", False) else WORKER)
        object.__setattr__(self, "type", kind)
        if self.shutdown == _DEFAULT:
            object.__setattr__(self, "shutdown", None if kind == SUPERVISOR else WORKER_SHUTDOWN)
        check_spec(self)

    def with_id(self, child_id: Hashable) -> ChildSpec:
        return replace(self, id=child_id)


def check_spec(spec: ChildSpec) -> None:
    """Raise SupervisorError('bad_spec') unless ``spec`` is valid on its own."""
    if spec.restart not in RESTART_TYPES:
        raise SupervisorError("bad_spec", f"{spec.id!r}: restart must be one of {RESTART_TYPES}")
    if spec.type not in (WORKER, SUPERVISOR):
        raise SupervisorError("bad_spec", f"{spec.id!r}: type must be worker or supervisor")
    if not callable(spec.start):
        raise SupervisorError("bad_spec",
                              f"{spec.id!r}: start must be an actor class or a callable")
    shutdown = spec.shutdown
    if not (shutdown is None or shutdown == BRUTAL_KILL
            or (isinstance(shutdown, (int, float)) and not isinstance(shutdown, bool)
                and shutdown > 0)):
        raise SupervisorError("bad_spec",
                              f"{spec.id!r}: shutdown must be 'brutal_kill', seconds > 0 or None")
    if spec.significant and spec.restart == PERMANENT:
        raise SupervisorError("bad_spec", f"{spec.id!r}: a permanent child cannot be significant")
    if "/" in str(spec.id) or not str(spec.id):
        raise SupervisorError("bad_spec", f"{spec.id!r}: a child id is one path element")


def check_flags(strategy: str, intensity: int, period: float, auto_shutdown: str) -> None:
    """Raise SupervisorError('bad_spec') unless the supervisor flags are valid."""
    if strategy not in STRATEGIES:
        raise SupervisorError("bad_spec", f"strategy must be one of {STRATEGIES}")
    if not isinstance(intensity, int) or intensity < 0:
        raise SupervisorError("bad_spec", "intensity must be an integer >= 0")
    if not period > 0:
        raise SupervisorError("bad_spec", "period must be > 0 seconds")
    if auto_shutdown not in AUTO_SHUTDOWNS:
        raise SupervisorError("bad_spec", f"auto_shutdown must be one of {AUTO_SHUTDOWNS}")
    if strategy == SIMPLE_ONE_FOR_ONE and auto_shutdown != NEVER:
        # As OTP 27: a dynamic pool has no meaningful "all significant children".
        raise SupervisorError("bad_spec", "simple_one_for_one requires auto_shutdown=never")


def check_supervisor(strategy: str, intensity: int, period: float, auto_shutdown: str,
                     specs: Sequence[ChildSpec]) -> list[ChildSpec]:
    """The specs as a list if flags and specs fit together, else SupervisorError('bad_spec')."""
    check_flags(strategy, intensity, period, auto_shutdown)
    specs = list(specs)
    if strategy == SIMPLE_ONE_FOR_ONE and len(specs) != 1:
        raise SupervisorError("bad_spec", "simple_one_for_one needs exactly one child spec")
    if len({spec.id for spec in specs}) != len(specs):
        raise SupervisorError("bad_spec", "duplicate child ids")
    for spec in specs:
        check_in_supervisor(spec, auto_shutdown)
    return specs


def check_in_supervisor(spec: ChildSpec, auto_shutdown: str) -> None:
    """As OTP 24: with auto_shutdown=never, a significant child is refused."""
    if spec.significant and auto_shutdown == NEVER:
        raise SupervisorError("bad_spec", f"{spec.id!r}: significant child needs auto_shutdown")


@dataclass(frozen=True)
class ChildInfo:
    """One row of ``which_children()``.

    OTP's row is ``{Id, Child | restarting | undefined, Type, Modules}``.

    ``ref`` is None when no actor runs (OTP's ``undefined``); ``restarting``
    is True while a restart is pending (OTP's ``restarting``).
    """

    id: Hashable
    ref: Any
    type: str
    restarting: bool
    state: str


@dataclass(frozen=True)
class Counts:
    """``count_children()``: specs, actors alive, and how many are supervisors / workers."""

    specs: int
    active: int
    supervisors: int
    workers: int
