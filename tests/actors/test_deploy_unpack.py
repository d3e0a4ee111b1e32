"""Safe unpacking: every way out of the target is refused, naming the member; nothing half-done."""

from __future__ import annotations

import os
import tarfile

import pytest

from actors.deploy.errors import DeployError, UnsafeArchiveError
from actors.deploy.unpack import UnpackLimits, unpack

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def target(tmp_path):
    (tmp_path / "versions").mkdir()
    return tmp_path / "versions" / "app-1.0"


def _refused(archive, target, member, why, limits=UnpackLimits()):
    with pytest.raises(UnsafeArchiveError) as info:
        unpack(archive, target, limits=limits)
    assert info.value.member == member
    assert why in info.value.why
    assert info.value.stage == "unpack"
    assert not target.exists(), "a refused archive must leave no version directory"
    assert not list(target.parent.glob(".unpack-*")), "no temporary directory may be left"
    return info.value


def test_a_tarball_with_one_top_directory_unpacks_to_its_content(tar_archive, target):
    archive = (tar_archive().dir("app-1.0/").file("app-1.0/dsmt-app.toml", b"name")
               .file("app-1.0/bin/run", b"#!/bin/sh\n", mode=0o4755)
               .symlink("app-1.0/run", "bin/run").hardlink("app-1.0/copy", "app-1.0/bin/run")
               .build())
    unpack(archive, target)
    assert (target / "dsmt-app.toml").read_bytes() == b"name"
    assert os.stat(target / "bin" / "run").st_mode & 0o7777 == 0o755, "set-uid bit dropped"
    assert os.readlink(target / "run") == "bin/run"
    assert (target / "copy").read_bytes() == b"#!/bin/sh\n"


def test_a_zip_unpacks_too(zip_archive, target):
    archive = zip_archive().file("dsmt-app.toml", b"m").file("lib/a.py", b"print(1)").build()
    unpack(archive, target)
    assert (target / "lib" / "a.py").read_bytes() == b"print(1)"


def test_an_existing_target_is_not_overwritten(tar_archive, target):
    target.mkdir()
    with pytest.raises(DeployError, match="already exists"):
        unpack(tar_archive().file("a").build(), target)


def test_a_corrupt_archive_is_a_deploy_error(tmp_path, target):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    with pytest.raises(DeployError, match="corrupt archive"):
        unpack(bad, target)
    assert not target.exists()


def test_path_traversal_is_refused(tar_archive, target):
    archive = tar_archive().file("ok.txt").file("a/../../evil.txt").build()
    _refused(archive, target, "a/../../evil.txt", "escapes the target")
    assert not (target.parent.parent / "evil.txt").exists()


def test_an_absolute_member_is_refused(tar_archive, target):
    _refused(tar_archive().file("/tmp/evil.txt").build(), target, "/tmp/evil.txt", "absolute path")


def test_a_symlink_pointing_outside_is_refused(tar_archive, target):
    archive = tar_archive().dir("d").symlink("d/out", "../../../etc").build()
    _refused(archive, target, "d/out", "points outside the package")


def test_a_symlink_to_an_absolute_path_is_refused(tar_archive, target):
    _refused(tar_archive().symlink("passwd", "/etc/passwd").build(), target, "passwd",
             "absolute path")


def test_a_symlink_escaping_only_through_another_symlink_is_refused(tar_archive, target):
    # 'b -> a/..' stays inside by name, but 'a -> .' makes it the target's parent.
    archive = tar_archive().symlink("a", ".").symlink("b", "a/..").build()
    _refused(archive, target, "b", "resolves outside the package")


def test_writing_through_a_symlink_is_refused(tar_archive, target):
    archive = tar_archive().symlink("d", "sub").dir("sub").file("d/x").build()
    _refused(archive, target, "d/x", "stored under symlink 'd'")


def test_a_hard_link_to_a_file_outside_is_refused(tar_archive, target):
    _refused(tar_archive().hardlink("h", "../../etc/passwd").build(), target, "h", "hard link")


def test_a_hard_link_to_an_absolute_path_is_refused(tar_archive, target):
    _refused(tar_archive().hardlink("h", "/etc/passwd").build(), target, "h", "hard link")


@pytest.mark.parametrize("kind,what", [(tarfile.CHRTYPE, "device file"),
                                       (tarfile.BLKTYPE, "device file"),
                                       (tarfile.FIFOTYPE, "FIFO")])
def test_device_files_and_fifos_are_refused(tar_archive, target, kind, what):
    _refused(tar_archive().file("a").special("dev/x", kind).build(), target, "dev/x",
             f"{what} members are not allowed")


def test_a_duplicate_member_is_refused(tar_archive, target):
    _refused(tar_archive().file("a", b"1").file("./a", b"2").build(), target, "./a", "duplicate")


def test_too_many_members_are_refused(tar_archive, target):
    builder = tar_archive()
    for i in range(11):
        builder.file(f"f{i}")
    _refused(builder.build(), target, "f10", "more than 10 members", UnpackLimits(max_files=10))


def test_a_member_over_the_size_cap_is_refused(tar_archive, target):
    archive = tar_archive().file("a", b"x" * 600).file("b", b"x" * 600).build()
    _refused(archive, target, "b", "more than 1000 bytes", UnpackLimits(max_bytes=1000))


def test_a_zip_bomb_is_refused_before_it_fills_the_disk(zip_archive, target):
    archive = zip_archive().file("bomb", b"\0" * 5_000_000).build()
    assert archive.stat().st_size < 50_000
    _refused(archive, target, "bomb", "more than 1000000 bytes", UnpackLimits(max_bytes=1_000_000))


def test_zip_traversal_and_symlinks_out_are_refused(zip_archive, target):
    _refused(zip_archive().file("../evil").build(), target, "../evil", "escapes")
    _refused(zip_archive("b.zip").symlink("l", "../../x").build(), target, "l", "outside")


def test_a_zip_device_member_is_refused(zip_archive, target):
    _refused(zip_archive().file("dev", b"", mode=0o020644).build(), target, "dev", "device file")


def test_a_member_that_cannot_be_created_is_named(tar_archive, target):
    _refused(tar_archive().file("a").file("a/b").build(), target, "a/b", "cannot extract")
