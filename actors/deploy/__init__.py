"""The deployment agent's library: fetch, verify, unpack, install and activate package versions.

The deployment-agent actor (DESIGN.md §5) drives :class:`Installer`; this
package has no actors and no pykka, only blocking functions and small
classes with injectable seams (``sleep``, ``clock``, ``progress``).

============  ================================================================
module        concept
============  ================================================================
manifest      ``dsmt-app.toml`` parsed into frozen dataclasses
fetch         ``file://`` and ``http(s)://`` with mandatory sha256, Range resume, retries
verify        sha256 of a fetched archive; a mismatch removes it
unpack        tar/zip extraction that refuses escapes, links out, devices, bombs
venv          the version's own venv and its pip requirements
install       the manifest's install command, time-bounded, in its own process group
launch        the environment a package's commands run in
activate      atomic ``current`` switch, rollback, uninstall
journal       SQLite (WAL) record of stages and running processes
installer     the pipeline, resumable at any stage, with progress callbacks
package       building a package archive (and the demo app's) with its sha256
============  ================================================================
"""

# Functions named like their module (fetch, unpack, verify, activate) are not
# re-exported, so ``from actors.deploy import fetch`` is always the module.
from actors.deploy.errors import (
    ChecksumError,
    DeployError,
    FetchError,
    InstallError,
    UnsafeArchiveError,
)
from actors.deploy.fetch import FetchLimits
from actors.deploy.installer import Installed, Installer, InstallRequest
from actors.deploy.journal import STAGES, Journal
from actors.deploy.launch import environment
from actors.deploy.manifest import HealthCheck, InstallStep, Manifest, StartSpec
from actors.deploy.unpack import UnpackLimits

__all__ = [
    "STAGES",
    "ChecksumError",
    "DeployError",
    "FetchError",
    "FetchLimits",
    "HealthCheck",
    "InstallError",
    "InstallRequest",
    "InstallStep",
    "Installed",
    "Installer",
    "Journal",
    "Manifest",
    "StartSpec",
    "UnpackLimits",
    "UnsafeArchiveError",
    "environment",
]
