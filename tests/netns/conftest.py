"""Fixtures for multi-host tests: a :class:`NetSlice` per test, torn down even on failure.

Every test here needs root and iproute2; elsewhere they skip with the reason
(:func:`tests.netns.network.unavailable`). After a test, the fixture stops
the slice and checks that no process under its folder and no namespace of
the run is left.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.netns import network
from tests.netns.harness import NetSlice

_why = network.unavailable()


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.netns)
            if _why:
                item.add_marker(pytest.mark.skip(reason=_why))


def slice_root(tag: str) -> Path:
    # ipc socket paths must stay short: a fresh folder right under /tmp
    return Path(tempfile.mkdtemp(prefix=f"dsmt-{tag}-", dir="/tmp"))


def teardown(made: NetSlice) -> None:
    """Stop ``made`` and check that nothing of it is left (processes, namespaces)."""
    made.stop()
    left = made.processes()
    prefix = made.network.prefix if made.network is not None else None
    spaces = [n for n in network.namespaces() if prefix and n.startswith(prefix)]
    if not os.environ.get("DSMT_E2E_KEEP"):  # keep the logs to debug a failure
        shutil.rmtree(made.root, ignore_errors=True)
    assert left == [], f"processes left behind: {left}"
    assert spaces == [], f"namespaces left behind: {spaces}"


@pytest.fixture
def net_slice():
    made: list[NetSlice] = []

    def make(**kwargs) -> NetSlice:
        s = NetSlice(slice_root("net"), **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        teardown(s)


def demo_plan(folder: Path, replicas: int) -> Path:
    """A plan (written in ``folder``) running the demo app with ``replicas``."""
    from actors.deploy.package import build_demo
    from tests.e2e.conftest import write_plan

    archive, sha256 = build_demo(folder / "packages")
    return write_plan(folder / "plan.toml", archive, sha256, replicas=replicas)


@pytest.fixture
def demo_plan_3(tmp_path) -> Path:
    return demo_plan(tmp_path, 3)
