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
