"""The environment a package's commands run in (install step, service processes, health commands).

Built from a base environment (default: the agent's), then the manifest's
``[env]`` table, then DSMT's variables, then ``extra`` from the caller (the
process actor's per-instance ``PORT``, ``DSMT_SLIVER``, ...), later ones
winning. The version's venv comes first on ``PATH`` so ``python`` in a
manifest command is the version's own interpreter.

=================  ==============================================
``DSMT_APP``       package name
``DSMT_VERSION``   package version
``DSMT_APP_DIR``   the version directory (also the working directory)
``VIRTUAL_ENV``    the version's venv
=================  ==============================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from actors.deploy.manifest import Manifest
from actors.deploy.venv import venv_of


def environment(
    manifest: Manifest,
    version_dir: Path,
    *,
    base: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for a command of ``manifest`` unpacked at ``version_dir``."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONHOME", None)
    env.update(manifest.env)
    venv = venv_of(version_dir)
    env.update(
        DSMT_APP=manifest.name,
        DSMT_VERSION=manifest.version,
        DSMT_APP_DIR=str(version_dir),
        VIRTUAL_ENV=str(venv),
        PATH=os.pathsep.join(p for p in (str(venv / "bin"), env.get("PATH", os.defpath)) if p),
    )
    env.update(extra or {})
    return env
