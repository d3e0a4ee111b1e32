"""How an actor ends and how the others learn it: exit reasons, the exit report, the lifeline.

The vocabulary of :mod:`dsmt.actor` (whose module docstring is the contract
and re-exports every name here): an actor's thread ends with an
:data:`ExitReason` (:data:`NORMAL`, :data:`SHUTDOWN`, :data:`KILLED` or an
:class:`Error`), its parent is told a :class:`ChildExit`, and whoever waits
for it to start or end waits on its :class:`Lifeline`. Stdlib only; no
actor runs here.
"""

from __future__ import annotations

import threading
import traceback as _traceback
from dataclasses import dataclass
from typing import Any, Hashable, Union

NORMAL = "normal"
SHUTDOWN = "shutdown"
KILLED = "killed"
ERROR = "error"


@dataclass(frozen=True, slots=True)
class Error:
    """An abnormal exit: the exception's type name, message and traceback text."""

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exc_info(cls, exc_type: Any, exc: Any, tb: Any) -> Error:
        name = getattr(exc_type, "__name__", str(exc_type))
        text = "".join(_traceback.format_exception(exc_type, exc, tb)) if exc is not None else ""
        return cls(name, str(exc), text)

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


ExitReason = Union[str, Error]
""":data:`NORMAL`, :data:`SHUTDOWN`, :data:`KILLED` or an :class:`Error`."""


def exit_kind(reason: ExitReason) -> str:
    """:data:`NORMAL`, :data:`SHUTDOWN` or :data:`ERROR` (killed counts as an error, as in OTP)."""
    return reason if reason in (NORMAL, SHUTDOWN) else ERROR


@dataclass(frozen=True, slots=True)
class ChildExit:
    """Told to the parent when a child actor's thread has finished."""

    child_id: Hashable
    ref: Any
    reason: ExitReason


class Lifeline:
    """The handshake between a starting actor and whoever waits on it.

    The actor marks it *started* once ``on_start`` returned and *exited* (with
    its reason) as the very last thing its thread does. A supervisor waits on
    it instead of on its own mailbox, which pykka cannot filter. Thread-safe.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._started = False
        self._reason: ExitReason | None = None

    def mark_started(self) -> None:
        with self._cond:
            self._started = True
            self._cond.notify_all()

    def mark_exited(self, reason: ExitReason) -> None:
        with self._cond:
            self._reason = reason
            self._cond.notify_all()

    def wait_started(self, timeout: float | None) -> bool | ExitReason | None:
        """True once started; the exit reason if it exited first; None on timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self._started or self._reason is not None, timeout)
            if self._started:
                return True
            return self._reason

    def wait_exited(self, timeout: float | None) -> ExitReason | None:
        """The exit reason once the actor's thread is done; None on timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self._reason is not None, timeout)
            return self._reason

    @property
    def exited(self) -> ExitReason | None:
        with self._cond:
            return self._reason
