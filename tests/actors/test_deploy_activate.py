"""Activation: an atomic `current` switch, rollback to `previous`, uninstall of what is not
active."""

from __future__ import annotations

import os
import threading

import pytest

from actors.deploy.activate import activate, rollback, uninstall
from actors.deploy.errors import DeployError

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def three(workspace):
    for version in ("1.0", "2.0", "3.0"):
        path = workspace.version_dir("app", version)
        path.mkdir()
        (path / "VERSION").write_text(version)
    return workspace


def _active_file(ws):
    return (ws.current_link("app") / "VERSION").read_text()


def test_the_first_activation_has_no_previous(three):
    assert activate(three, "app", "1.0") is None
    assert three.current("app") == "1.0" and three.previous("app") is None
    assert _active_file(three) == "1.0"
    assert os.readlink(three.current_link("app")) == "../versions/app-1.0", "relative link"


def test_an_upgrade_keeps_the_old_version_side_by_side_as_previous(three):
    activate(three, "app", "1.0")
    assert activate(three, "app", "2.0") == "1.0"
    assert (three.current("app"), three.previous("app")) == ("2.0", "1.0")
    assert three.version_dir("app", "1.0").is_dir()


def test_activating_the_active_version_changes_nothing(three):
    activate(three, "app", "1.0")
    activate(three, "app", "2.0")
    assert activate(three, "app", "2.0") == "1.0"
    assert (three.current("app"), three.previous("app")) == ("2.0", "1.0")


def test_activating_a_version_that_is_not_installed_is_refused(three):
    activate(three, "app", "1.0")
    with pytest.raises(DeployError, match="app 9.0 is not installed"):
        activate(three, "app", "9.0")
    assert three.current("app") == "1.0"


def test_rollback_switches_back_and_a_second_rollback_forward(three):
    activate(three, "app", "1.0")
    activate(three, "app", "2.0")
    assert rollback(three, "app") == "1.0"
    assert (three.current("app"), three.previous("app")) == ("1.0", "2.0")
    assert _active_file(three) == "1.0"
    assert rollback(three, "app") == "2.0"


def test_rollback_without_a_previous_version_is_refused(three):
    activate(three, "app", "1.0")
    with pytest.raises(DeployError, match="no previous version"):
        rollback(three, "app")
    assert three.current("app") == "1.0"


def test_packages_are_activated_independently(three):
    other = three.version_dir("db", "5.0")
    other.mkdir()
    activate(three, "app", "1.0")
    activate(three, "db", "5.0")
    activate(three, "app", "2.0")
    assert three.current("db") == "5.0" and three.previous("db") is None


def test_a_reader_never_sees_a_missing_or_half_switched_link(three):
    activate(three, "app", "1.0")
    stop = threading.Event()
    seen, errors = set(), []

    def read():
        while not stop.is_set():
            try:
                seen.add(_active_file(three))
            except OSError as exc:
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(300):
            activate(three, "app", ("2.0", "3.0", "1.0")[i % 3])
    finally:
        stop.set()
        reader.join(5)
    assert errors == [] and seen <= {"1.0", "2.0", "3.0"}
    left = [p for p in (three.root / "current").iterdir() if p.name != "app"]
    assert not left, "no temp links left"


def test_uninstall_refuses_the_active_version(three):
    activate(three, "app", "1.0")
    with pytest.raises(DeployError, match="app 1.0 is the active version"):
        uninstall(three, "app", "1.0")
    assert three.version_dir("app", "1.0").is_dir()


def test_uninstall_removes_a_version_and_its_archive(three):
    activate(three, "app", "1.0")
    activate(three, "app", "2.0")
    (three.packages / "app-1.0.tar.gz").write_bytes(b"x")
    (three.packages / "app-1.0.1.tar.gz").write_bytes(b"x")
    uninstall(three, "app", "1.0")
    assert not three.version_dir("app", "1.0").exists()
    assert three.previous("app") is None, "the rollback target is gone with it"
    assert [p.name for p in three.packages.iterdir()] == ["app-1.0.1.tar.gz"]
    assert three.installed("app") == ["2.0", "3.0"]
