"""Quarantine: a sliver whose installs keep failing takes itself out of placement for a while.

:class:`Quarantine` counts the deployment agent's failed jobs in a row
(:meth:`Quarantine.failed`; a job that succeeds resets the count,
:meth:`Quarantine.succeeded`). The ``after``-th failure in a row starts a
quarantine of ``period`` seconds with the reason; :meth:`Quarantine.reason`
is that reason while it lasts (None otherwise). :meth:`Quarantine.hold`
quarantines for as long as the caller says, until :meth:`Quarantine.release`
(a deselected sliver); a hold's reason comes first. The coordinator puts the
reason in its heartbeat (``quarantined``), and placement everywhere skips a
sliver that says it is quarantined (:func:`actors.world.WorldView.quarantined`).
Pure logic over an injectable clock; one owner (the coordinator's thread).
"""

from __future__ import annotations

from dsmt.clock import Clock


class Quarantine:
    def __init__(self, clock: Clock, after: int = 3, period: float = 60.0) -> None:
        self.clock = clock
        self.after = after
        self.period = period
        self.failures = 0
        self._until: tuple[float, str] | None = None
        self._held: str | None = None

    def hold(self, reason: str) -> None:
        """Quarantined for ``reason`` until :meth:`release`, whatever the failures say."""
        self._held = reason

    def release(self) -> bool:
        """End a hold; True if there was one."""
        held, self._held = self._held, None
        return held is not None

    def failed(self, why: str | None) -> str | None:
        """Count a failed job; the quarantine's reason if this one starts it, else None."""
        self.failures += 1
        if self.failures < self.after or self.reason() is not None:
            return None
        reason = f"{self.failures} failed deployment jobs in a row, last: {why}"
        self._until = (self.clock.monotonic() + self.period, reason)
        return reason

    def succeeded(self) -> None:
        self.failures = 0

    def reason(self) -> str | None:
        """Why this sliver is quarantined, while it is; None when it is not (or no longer)."""
        if self._held is not None:
            return self._held
        if self._until is None:
            return None
        if self.clock.monotonic() >= self._until[0]:
            self._until, self.failures = None, 0
            return None
        return self._until[1]
