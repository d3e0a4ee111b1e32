"""The state tables of DSMT: every state and every allowed transition, in one place.

Stdlib only. Each machine is a :class:`Machine` with its states as constants
and an explicit transition table; :meth:`Machine.check` is what every
``change_state()`` calls before it publishes. States are plain strings on the
wire (status events), so the constants are ``str``.

- **component** lifecycle (the original DSMT): ``undefined → requested →
  initiated → instantiated → running → terminated``, ``failed`` from any
  state (always with a reason). ``initialized`` and the original misspelling
  ``initalized`` are accepted as aliases of ``initiated`` on input.
- **container** (sliver-state): ``selected, installing, installed, failed,
  deselected``.
- **process**: ``stopped, starting, running, backoff, stopping, exited, fatal``
  (supervisord's process states, less ``unknown``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from dsmt.errors import TransitionError


@dataclass(frozen=True)
class Machine:
    name: str
    initial: str
    transitions: Mapping[str, frozenset[str]]
    aliases: Mapping[str, str]

    @property
    def states(self) -> frozenset[str]:
        return frozenset(self.transitions)

    def normalize(self, state: str) -> str:
        """The canonical name of ``state`` (resolving aliases); raises on unknown."""
        state = self.aliases.get(state, state)
        if state not in self.transitions:
            raise TransitionError(self.name, "?", state)
        return state

    def allowed(self, current: str, wanted: str) -> bool:
        return wanted in self.transitions.get(current, frozenset())

    def check(self, current: str, wanted: str) -> str:
        """The canonical ``wanted`` if ``current -> wanted`` is allowed, else raise."""
        wanted = self.aliases.get(wanted, wanted)
        if not self.allowed(current, wanted):
            raise TransitionError(self.name, current, wanted)
        return wanted


def _table(rows: Mapping[str, str]) -> dict[str, frozenset[str]]:
    return {state: frozenset(targets.split()) for state, targets in rows.items()}


# --- component lifecycle -----------------------------------------------------
UNDEFINED = "undefined"
REQUESTED = "requested"
INITIATED = "initiated"
INSTANTIATED = "instantiated"
RUNNING = "running"
TERMINATED = "terminated"
FAILED = "failed"

COMPONENT = Machine(
    name="component",
    initial=UNDEFINED,
    transitions=_table({
        UNDEFINED:    "requested failed",
        REQUESTED:    "initiated terminated failed",
        INITIATED:    "instantiated terminated failed",
        INSTANTIATED: "running terminated failed",
        RUNNING:      "requested terminated failed",
        TERMINATED:   "requested failed",
        FAILED:       "requested terminated failed",
    }),
    aliases={"initialized": INITIATED, "initalized": INITIATED},
)

# --- container (sliver-state) -------------------------------------------------
SELECTED = "selected"
INSTALLING = "installing"
INSTALLED = "installed"
DESELECTED = "deselected"

CONTAINER = Machine(
    name="container",
    initial=SELECTED,
    transitions=_table({
        SELECTED:   "installing deselected failed",
        INSTALLING: "installed failed deselected",
        INSTALLED:  "installing deselected failed",
        FAILED:     "installing deselected",
        DESELECTED: "selected",
    }),
    aliases={},
)

# --- process ------------------------------------------------------------------
STOPPED = "stopped"
STARTING = "starting"
BACKOFF = "backoff"
STOPPING = "stopping"
EXITED = "exited"
FATAL = "fatal"

PROCESS = Machine(
    name="process",
    initial=STOPPED,
    transitions=_table({
        STOPPED:  "starting",
        STARTING: "running backoff stopping exited fatal",
        RUNNING:  "stopping exited backoff",
        BACKOFF:  "starting stopped fatal",
        STOPPING: "stopped exited",
        EXITED:   "starting backoff stopped fatal",
        FATAL:    "starting stopped",
    }),
    aliases={},
)

MACHINES = {m.name: m for m in (COMPONENT, CONTAINER, PROCESS)}
