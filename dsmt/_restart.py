"""The restart decisions of a supervisor, as tables (OTP ``supervisor.erl``).

- :data:`RESTART` answers "is this child restarted?" from its restart type
  and the kind of its exit. OTP counts ``shutdown`` as a normal exit for a
  transient child; ``killed`` and any error are abnormal.
- :data:`SCOPE` answers "which children go down and come back with it?"
  per strategy, from the children in start order.
- :class:`RestartWindow` is the intensity/period rule: a restart is allowed
  while at most ``intensity`` restarts fall within the last ``period``
  seconds (OTP keeps a restart at time ``t`` while ``t >= now - period``).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence, TypeVar

from dsmt._child import Child
from dsmt.actor import ERROR, NORMAL, SHUTDOWN
from dsmt.childspec import (
    ALL_SIGNIFICANT,
    ANY_SIGNIFICANT,
    NEVER,
    ONE_FOR_ALL,
    ONE_FOR_ONE,
    PERMANENT,
    REST_FOR_ONE,
    SIMPLE_ONE_FOR_ONE,
    TEMPORARY,
    TRANSIENT,
)

T = TypeVar("T")

#: (restart type, exit kind) -> restart the child?
RESTART: dict[tuple[str, str], bool] = {
    (PERMANENT, NORMAL): True,
    (PERMANENT, SHUTDOWN): True,
    (PERMANENT, ERROR): True,
    (TRANSIENT, NORMAL): False,
    (TRANSIENT, SHUTDOWN): False,
    (TRANSIENT, ERROR): True,
    (TEMPORARY, NORMAL): False,
    (TEMPORARY, SHUTDOWN): False,
    (TEMPORARY, ERROR): False,
}

#: strategy -> (children in start order, index of the dead one) -> the children restarted together
SCOPE: dict[str, Callable[[Sequence[T], int], list[T]]] = {
    ONE_FOR_ONE: lambda order, i: [order[i]],
    SIMPLE_ONE_FOR_ONE: lambda order, i: [order[i]],
    ONE_FOR_ALL: lambda order, i: list(order),
    REST_FOR_ONE: lambda order, i: list(order[i:]),
}

#: auto_shutdown -> (significant children still alive) -> shut the supervisor down?
#: Consulted only when a significant child exits by itself and is not restarted.
AUTO_SHUTDOWN: dict[str, Callable[[int], bool]] = {
    NEVER: lambda alive: False,
    ANY_SIGNIFICANT: lambda alive: True,
    ALL_SIGNIFICANT: lambda alive: alive == 0,
}

#: Restart types that survive being taken down by a sibling (OTP drops temporary ones).
KEPT_AFTER_SIBLING_RESTART = frozenset({PERMANENT, TRANSIENT})


class RestartWindow:
    """Restart times within the last ``period`` seconds; not thread-safe (supervisor thread)."""

    def __init__(self, intensity: int, period: float) -> None:
        self.intensity = intensity
        self.period = period
        self._times: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._times and self._times[0] < now - self.period:
            self._times.popleft()

    def add(self, now: float) -> bool:
        """Record a restart at ``now``; False if that is one more than the intensity allows."""
        self._prune(now)
        self._times.append(now)
        return len(self._times) <= self.intensity

    def left(self, now: float) -> int:
        """How many more restarts the window allows right now."""
        self._prune(now)
        return max(0, self.intensity - len(self._times))


def backoff_delay(child: Child, now: float, rng: random.Random) -> float:
    """The delay before ``child``'s next restart (0 without backoff); counts the attempt.

    The attempt counter restarts from zero when the child had been up for
    the spec's ``reset_after`` seconds: a stable run forgives old failures.
    """
    backoff = child.spec.backoff
    if backoff is None:
        return 0.0
    stable = (backoff.reset_after is not None and child.started_at is not None
              and now - child.started_at >= backoff.reset_after)
    if stable:
        child.attempt = 0
    delay = backoff.delay(child.attempt, rng)
    child.attempt += 1
    return delay


@dataclass(frozen=True)
class TryAgain:
    """A supervisor's message to itself: (re)start ``ids`` together (OTP's try_again_restart).

    Ignored unless ``token`` is still the children's pending token, so a
    terminate/restart/delete in between cancels it.
    """

    ids: tuple[Hashable, ...]
    token: int
    counted: bool  # already counted against the intensity when it was scheduled


def tell_quietly(ref: Any, message: Any) -> None:
    """Timer callback: deliver ``message`` unless the supervisor is gone meanwhile."""
    try:
        ref.tell(message)
    except Exception:
        pass  # the supervisor stopped; its pending restarts die with it
