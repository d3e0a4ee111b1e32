"""Each version's own Python environment: ``versions/<name>-<version>/.venv``.

:func:`create_venv` makes it without pip (fast: no wheels copied). When the
manifest lists ``requirements``, :func:`pip_install` installs them with the
agent's own pip aimed at the venv's interpreter (``pip --python``); if the
agent has no pip, the venv gets one through ``ensurepip`` first. Relative
paths in requirements (``./wheels/x.whl``) are taken from the version
directory, which is pip's working directory. Both steps log to the install
log and are bounded by a timeout (:func:`actors.deploy.install.run_step`).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Mapping, Sequence

from actors.deploy.install import run_step


def venv_of(version_dir: Path) -> Path:
    """The venv of the version unpacked at ``version_dir``."""
    return version_dir / ".venv"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def create_venv(venv: Path, *, log: Path, timeout: float | None = 120.0) -> Path:
    """Make (or empty and remake) the venv at ``venv``; return it."""
    run_step(
        [sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv)],
        cwd=venv.parent, log=log, timeout=timeout, what="python -m venv",
    )
    return venv


def pip_install(
    venv: Path,
    requirements: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    timeout: float | None = 600.0,
    env: Mapping[str, str] | None = None,
) -> None:
    """Install ``requirements`` into ``venv``; raise InstallError with pip's last lines."""
    python = str(venv_python(venv))
    options = ["install", "--no-input", "--disable-pip-version-check", *requirements]
    if importlib.util.find_spec("pip") is not None:
        argv = [sys.executable, "-m", "pip", "--python", python, *options]
    else:
        run_step([python, "-m", "ensurepip"], cwd=cwd, log=log, timeout=timeout,
                 env=env, what="ensurepip")
        argv = [python, "-m", "pip", *options]
    run_step(argv, cwd=cwd, log=log, timeout=timeout, env=env, what="pip install")
