"""The slice's plan as one sliver holds it: loaded, persisted, adopted, derived by commands.

A :class:`PlanKeeper` is the coordinator's record of the plan (DESIGN.md §5,
"the plan is versioned, persisted by every sliver and re-broadcast when a
peer shows an older version"). Pure bookkeeping and file I/O, no actor, no
bus: the coordinator publishes what :meth:`PlanKeeper.record` returns and
decides when (:meth:`PlanKeeper.rebroadcast_due`). Not thread-safe: one
owner (the coordinator's thread).

Contract:

- :meth:`load_initial` reads the configured plan file and the persisted
  ``<workspace>/plan.toml``; the persisted one wins when its version is
  higher. Raises :class:`dsmt.errors.DsmtError` only when neither can be
  read; a bad persisted plan is logged and ignored.
- :meth:`adopt` takes a plan text when it parses (:func:`actors.plan.loads`)
  and its version is higher than ours: it becomes current, is written to
  ``<workspace>/plan.toml`` (write, fsync, atomic rename) and the previous
  plan is returned. An older or equal version returns None and changes
  nothing. A plan that does not parse raises ``DsmtError`` after recording
  the reason in :attr:`error` (shown in ``inspect()`` as ``plan_error``);
  the current plan stays.
- :meth:`command_plan` derives the next plan text from a verified
  deploy/undeploy/scale command, or raises ``DsmtError`` saying why not.
- :func:`to_toml` writes a plan table (as :mod:`tomllib` reads it) back as
  TOML text.

Anti-entropy: every heartbeat carries ``plan_version``; a coordinator that
sees a peer announce an older version re-publishes the plan, at most once
per heartbeat period (:meth:`rebroadcast_due`), so a sliver that was away
has the current plan within about two heartbeat periods of its return, as
long as one sliver that knows it lives.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from dsmt.errors import DsmtError

from actors import plan as plans

log = logging.getLogger(__name__)

PLAN_FILE = "plan.toml"


class PlanKeeper:
    """The current plan, its text, the last rejection, and where it is persisted."""

    def __init__(self, configured: Path | None, workspace: Path | None, owner: str = "") -> None:
        self.configured = configured
        self.workspace = workspace
        self.owner = owner
        self.plan: plans.Plan = plans.EMPTY
        self.text = ""
        self.error: str | None = None
        self._last_rebroadcast = float("-inf")

    @property
    def version(self) -> int:
        return self.plan.version

    def load_initial(self) -> None:
        """The configured or persisted plan, whichever is newer (see the module docstring)."""
        persisted = self._persisted()
        if self.configured is not None:
            try:
                text = self.configured.read_text()
            except OSError as exc:
                if persisted is None:
                    raise DsmtError(f"{self.configured}: cannot read the plan: {exc}") from None
                text = None
            if text is not None:
                try:
                    configured = plans.loads(text, str(self.configured))
                except DsmtError:
                    if persisted is None:
                        raise
                else:
                    if persisted is None or configured.version > persisted[0].version:
                        self.plan, self.text = configured, text
                        self._persist(text)
                        return
        if persisted is not None:
            self.plan, self.text = persisted

    def adopt(self, text: str, source: str) -> plans.Plan | None:
        """Take ``text`` as the plan if it is newer; returns the previous plan, or None."""
        try:
            new = plans.loads(text, source)
        except DsmtError as exc:
            self.error = str(exc)
            raise
        if new.version <= self.plan.version:
            return None
        old = self.plan
        self.plan, self.text, self.error = new, text, None
        self._persist(text)
        return old

    def record(self) -> dict[str, Any]:
        """The plan channel's payload without ``from`` (the caller adds its own name)."""
        return {"version": self.plan.version, "toml": self.text}

    def rebroadcast_due(self, now: float, period: float) -> bool:
        """True (and remembered) if the plan was not re-published within the last ``period``."""
        if now - self._last_rebroadcast < period:
            return False
        self._last_rebroadcast = now
        return True

    def command_plan(self, kind: str, args: dict[str, Any], source: str) -> str:
        """The plan text a verified ``kind`` command asks for; raises DsmtError if refused.

        ``deploy {"toml": text}`` replaces the plan (its version must be newer);
        ``scale {"service": name, "replicas": n | "all"}`` and ``undeploy
        {"service": name}`` derive the next version from the current plan.
        """
        text = self._next_plan(kind, args)
        version = plans.loads(text, source).version
        if version <= self.plan.version:
            raise DsmtError(f"plan version {version} is not newer than the slice's "
                            f"{self.plan.version}")
        return text

    # --- internals -------------------------------------------------------------------------

    def _next_plan(self, kind: str, args: dict[str, Any]) -> str:
        if kind == "deploy":
            text = args.get("toml")
            if not isinstance(text, str):
                raise DsmtError('deploy needs {"toml": plan text}')
            return text
        service = args.get("service")
        if service not in self.plan.services:
            raise DsmtError(f"no service {service!r} in plan version {self.plan.version}")
        data = tomllib.loads(self.text)
        data["version"] = self.plan.version + 1
        if kind == "undeploy":
            del data["services"][service]
        elif kind == "scale":
            replicas = args.get("replicas")
            if replicas != plans.ALL and (not isinstance(replicas, int) or isinstance(
                    replicas, bool) or replicas < 0):
                raise DsmtError(f'replicas must be a count >= 0 or "all", got {replicas!r}')
            data["services"][service]["replicas"] = replicas
        else:
            raise DsmtError(f"unknown plan command {kind!r}")
        return to_toml(data)

    def _persisted(self) -> tuple[plans.Plan, str] | None:
        if self.workspace is None:
            return None
        path = self.workspace / PLAN_FILE
        try:
            text = path.read_text()
            return plans.loads(text, str(path)), text
        except FileNotFoundError:
            return None
        except (OSError, DsmtError) as exc:
            log.error("%s: ignoring the persisted plan: %s", self.owner, exc)
            return None

    def _persist(self, text: str) -> None:
        if self.workspace is None:
            return
        path = self.workspace / PLAN_FILE
        tmp = path.with_name(f".{PLAN_FILE}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def to_toml(table: dict[str, Any], prefix: str = "") -> str:
    """``table`` (as :mod:`tomllib` reads a plan) as TOML text: scalars first, then sub-tables."""
    lines, subtables = [], []
    for key, value in table.items():
        if isinstance(value, dict):
            subtables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in subtables:
        name = f"{prefix}{_toml_key(key)}"
        text += f"\n[{name}]\n" + to_toml(value, f"{name}.")
    return text


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise DsmtError(f"cannot write {value!r} back into a plan")
