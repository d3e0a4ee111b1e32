"""The actor registry of one node: which actor answers at which path.

Every node (and every test) owns its own :class:`Registry`, passed to actors
in their :class:`dsmt.context.Context`; nothing here is global, so tests never
reset anything. pykka's own process-wide ``ActorRegistry`` is still filled by
pykka and is used only as a last-resort safety net in test teardown.

A path is the actor's stable name (``/<sliver>/app/web/0``). An actor
registers itself in its own thread before ``on_start`` runs and unregisters
itself, again in its own thread, after its last hook ran. All methods are
thread-safe.

**Observers** are kept per *path*, not per actor: whoever observes a path
(an install monitor) is told every state change of whichever actor holds the
path, including the replacement a supervisor starts after a crash, without
having to find and re-attach to it. :meth:`dsmt.actor.Actor.change_state`
tells them a :class:`dsmt.actor.StateChanged`.
"""

from __future__ import annotations

import threading
from typing import Any

from dsmt.errors import DsmtError


class Registry:
    """Path -> ActorRef for the actors of one node."""

    def __init__(self) -> None:
        self._refs: dict[str, Any] = {}
        self._observers: dict[str, list[Any]] = {}
        self._lock = threading.Lock()

    def register(self, path: str, ref: Any) -> None:
        """Record ``ref`` at ``path``; raise DsmtError if another actor holds the path."""
        with self._lock:
            holder = self._refs.get(path)
            if holder is not None and holder is not ref:
                raise DsmtError(f"actor path {path} is already registered to {holder}")
            self._refs[path] = ref

    def unregister(self, path: str, ref: Any) -> bool:
        """Forget ``path`` if ``ref`` still holds it; False if it did not.

        Comparing the holder makes a late unregistration by a killed actor
        harmless once its replacement has registered at the same path.
        """
        with self._lock:
            if self._refs.get(path) is ref:
                del self._refs[path]
                return True
            return False

    def get(self, path: str) -> Any | None:
        """The ref registered at ``path``, or None."""
        with self._lock:
            return self._refs.get(path)

    def supervisor_of(self, path: str) -> tuple[str, str, Any | None]:
        """``(parent path, child id, parent ref or None)`` of the actor at ``path``: the
        supervisor that starts and stops it, and the id it has there (its last element)."""
        parent, _, child = path.rpartition("/")
        return parent, child, self.get(parent)

    def list(self, prefix: str = "/") -> dict[str, Any]:
        """A snapshot of every path equal to or under ``prefix`` (whole elements)."""
        base = prefix.rstrip("/")
        with self._lock:
            return {
                path: ref
                for path, ref in sorted(self._refs.items())
                if not base or path == base or path.startswith(base + "/")
            }

    def __len__(self) -> int:
        with self._lock:
            return len(self._refs)

    def observe(self, path: str, ref: Any) -> None:
        """Have ``ref`` told every state change of the actor at ``path``, now and after restarts."""
        with self._lock:
            refs = self._observers.setdefault(path, [])
            if ref not in refs:
                refs.append(ref)

    def unobserve(self, path: str, ref: Any) -> None:
        """Stop telling ``ref`` about ``path``; a ref that does not observe it is ignored."""
        with self._lock:
            refs = self._observers.get(path, [])
            if ref in refs:
                refs.remove(ref)
            if not refs:
                self._observers.pop(path, None)

    def observers(self, path: str) -> list[Any]:
        """A snapshot of the refs observing ``path``."""
        with self._lock:
            return list(self._observers.get(path, ()))
