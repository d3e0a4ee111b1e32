"""The sliver workspace: layout, idempotent creation, permission checks."""

from __future__ import annotations

import os
import stat

import pytest

from actors.workspace import Workspace, WorkspaceError

pytestmark = pytest.mark.timeout(10)


def test_create_makes_the_layout_with_a_private_run_dir(tmp_path):
    ws = Workspace.create(tmp_path / "w")
    for name in ("packages", "versions", "current", "previous", "logs", "run"):
        assert (ws.root / name).is_dir()
    assert stat.S_IMODE(ws.run.stat().st_mode) == 0o700
    assert ws.state_db == ws.root / "state.db"


def test_create_is_idempotent_and_tightens_a_loose_run_dir(tmp_path):
    ws = Workspace.create(tmp_path / "w")
    (ws.packages / "keep.tar.gz").write_bytes(b"x")
    os.chmod(ws.run, 0o755)
    again = Workspace.create(tmp_path / "w")
    assert again == ws
    assert (ws.packages / "keep.tar.gz").exists()
    assert stat.S_IMODE(ws.run.stat().st_mode) == 0o700


def test_create_refuses_a_root_that_is_a_file(tmp_path):
    (tmp_path / "w").write_text("")
    with pytest.raises(WorkspaceError, match="cannot create|not a directory"):
        Workspace.create(tmp_path / "w")


def test_create_refuses_a_layout_entry_that_is_not_a_directory(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "versions").write_text("")
    with pytest.raises(WorkspaceError) as info:
        Workspace.create(tmp_path / "w")
    assert info.value.path == tmp_path / "w" / "versions"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_create_refuses_a_read_only_root(tmp_path):
    (tmp_path / "w").mkdir(mode=0o500)
    try:
        with pytest.raises(WorkspaceError):
            Workspace.create(tmp_path / "w")
    finally:
        os.chmod(tmp_path / "w", 0o700)


@pytest.mark.parametrize("name,version", [("../x", "1.0"), ("app", "../1"), ("App", "1.0"),
                                          ("app", "v1"), ("app", "1/2"), ("", "1")])
def test_version_dir_refuses_names_that_are_not_one_safe_path_element(workspace, name, version):
    with pytest.raises(ValueError):
        workspace.version_dir(name, version)


def test_installed_lists_only_the_versions_of_that_package(workspace):
    for d in ("demo-1.0", "demo-2.0", "demo-app-1.0", ".unpack-demo-3.0-x"):
        (workspace.versions / d).mkdir()
    assert workspace.installed("demo") == ["1.0", "2.0"]
    assert workspace.installed("demo-app") == ["1.0"]
