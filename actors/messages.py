"""The messages between the deployment agent and the application supervisor.

All are ``tell()``-ed (never asked), so neither actor ever waits on the other:

=============  ==========================  ==========================================
message        from → to                   meaning
=============  ==========================  ==========================================
Deploy         sliver / CLI → agent        install these services of the plan here
Installed      agent → app                 this version is active: run it
Rollback       app → agent                 the new version failed its health window
Undeploy       agent → app, CLI → agent    stop the service (the agent then uninstalls)
Undeployed     app → agent                 the service's processes are gone
GaveUp         service supervisor → app    intensity exhausted: the service is fatal
PlanCommand    commander → coordinator     a verified deploy/undeploy/scale command
Drain          commander → coordinator     a verified deselect: move the share, then stop
Undrain        commander → coordinator     a verified select: a drain under way ends
Assign         coordinator → app           run this many instances of a service here
=============  ==========================  ==========================================

A service's package carries the service's name: the plan has no separate
package-name key, so :class:`Deploy` installs package ``service`` and the
manifest's ``name`` must match it (the install fails with a ConfigError
naming both otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from actors.deploy.manifest import Manifest
from actors.plan import Plan, Service


@dataclass(frozen=True)
class Deploy:
    """Install ``services`` (names; None: every service of ``plan``) at the plan's versions."""

    plan: Plan
    services: Sequence[str] | None = None


@dataclass(frozen=True)
class Installed:
    """``version`` of ``service`` is the active one, unpacked at ``version_dir``: run it.

    ``plan`` is the service's plan entry (None after an agent restart that
    resumed an install without a plan: the app keeps what it knew). When
    ``rollback`` is set, this is the previous version made active again and
    ``rollback`` says why; the app does not judge it again.
    """

    service: str
    version: str
    version_dir: Path
    manifest: Manifest
    plan: Service | None = None
    rollback: str | None = None
    rolled_back_from: str | None = None


@dataclass(frozen=True)
class Rollback:
    """Make the previous version of ``service`` active again because of ``why``.

    ``version`` is the version judged bad; the agent rolls back only while it
    is still the active one, so a late or repeated request does nothing.
    """

    service: str
    why: str
    version: str | None = None


@dataclass(frozen=True)
class Undeploy:
    """Stop ``service``; to the agent: then uninstall its non-current versions.

    ``reply_to`` (a ref) is told :class:`Undeployed` once the processes are gone.
    """

    service: str
    reply_to: Any = None


@dataclass(frozen=True)
class Undeployed:
    service: str


@dataclass(frozen=True)
class GaveUp:
    """A service supervisor reached its restart intensity (told just before it exits)."""

    service: str
    version: str
    incarnation: int
    reason: str
    child: str | None = None
    child_reason: str | None = None


@dataclass(frozen=True)
class PlanCommand:
    """A verified slice command that changes the plan: ``kind`` deploy | undeploy | scale.

    Told by :class:`actors.commander.Commander` to the coordinator. ``args``
    are the command's arguments as sent (e.g. ``{"service": "web",
    "replicas": 3}`` for scale, ``{"plan": {...}}`` for deploy); ``request``
    is the request id whose reply channel (``layout.reply(request)``) the
    coordinator may publish its own outcome on; ``sender`` names who signed it.
    """

    kind: str
    args: Any
    request: str | None = None


@dataclass(frozen=True)
class Assign:
    """Run ``count`` instances of ``service`` on this sliver (its share of the slice).

    Told by the coordinator to the app whenever its share changes (see
    :mod:`actors.placement`). It overrides the plan's ``replicas`` for this
    sliver, also for a version installed later; 0 stops the service's
    processes but keeps it installed, ready for a later share.
    """

    service: str
    count: int


@dataclass(frozen=True)
class Drain:
    """Deselect this sliver without dropping an instance (:mod:`actors.coordinator.drain`).

    The coordinator takes the sliver out of placement at once but keeps its
    instances running until the peers run its share, at most ``timeout``
    seconds (0: stop at once), then has the container manager deselect; it
    replies on ``layout.reply(request)``.
    """

    timeout: float
    request: str | None = None


@dataclass(frozen=True)
class Undrain:
    """End a drain under way (a ``select`` came first): back into placement, nothing stopped."""

    request: str | None = None
