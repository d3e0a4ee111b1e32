"""Fuzzed package archives: ``unpack`` makes the package or raises DeployError, writing
nothing else.

Archives (tar.gz and zip) are built in memory from random members -- hostile
names, symlinks, hard links, devices, duplicates -- and then mutated byte by
byte; each is written to a fresh directory and unpacked next to it. Checked:
only DeployError (UnsafeArchiveError is one) comes out; afterwards the
directory holds the archive and, on success, the target, which holds
nothing that resolves outside it; no temporary directory is left behind.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.deploy.errors import DeployError
from actors.deploy.unpack import UnpackLimits, unpack

from . import fuzz_settings, fuzz_timeout, mutants

pytestmark = [
    fuzz_timeout(180),
    # The generator makes duplicate names on purpose; zipfile warns about each.
    pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning"),
]

LIMITS = UnpackLimits(max_bytes=1 << 16, max_files=64)
NAMES = st.sampled_from(["a", "pkg/", "pkg/a", "pkg/b/c", "dsmt-app.toml", "..", "../x", "/abs",
                         "a/../../x", "./a", "\\x", "c:x", "pkg//d", "l", "l/x", "a\x00b", "é",
                         "pkg/" + "n" * 120])
LINKS = st.sampled_from(["a", "pkg/a", "..", "../..", "/etc", "l", "", ".", "pkg/../.."])
KINDS = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                         tarfile.CHRTYPE, tarfile.FIFOTYPE])
members = st.lists(st.tuples(NAMES, KINDS, LINKS, st.binary(max_size=32)), max_size=5)


def _tar(items) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, link, data in items:
            info = tarfile.TarInfo(name.replace("\x00", ""))
            info.type, info.linkname, info.mode = kind, link, 0o4755
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def _zip(items) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, kind, link, data in items:
            info = zipfile.ZipInfo(name.replace("\x00", "") or "x")
            if kind == tarfile.SYMTYPE:
                info.external_attr = 0o120777 << 16
                data = link.encode()
            z.writestr(info, data)
    return buf.getvalue()


archives = st.tuples(st.booleans(), members).map(lambda t: _tar(t[1]) if t[0] else _zip(t[1]))


def check(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="dsmt-fuzz-") as top:
        work = Path(top) / "work"
        work.mkdir()
        archive = work / "pkg.bin"
        archive.write_bytes(data)
        dest = work / "out"
        try:
            unpack(archive, dest, limits=LIMITS)
        except DeployError:
            assert not dest.exists() and not dest.is_symlink()
        assert sorted(os.listdir(top)) == ["work"], "something written outside the work dir"
        left = set(os.listdir(work)) - {"pkg.bin", "out"}
        assert not left, f"left behind: {left}"
        if dest.exists():
            real = os.path.realpath(dest)
            for base, dirs, files in os.walk(dest):
                for entry in dirs + files:
                    resolved = os.path.realpath(os.path.join(base, entry))
                    assert os.path.commonpath([real, resolved]) == real, resolved


@fuzz_settings()
@given(data=archives, seed=st.integers(0, 2**32))
def test_a_fuzzed_archive_unpacks_inside_the_target_or_raises_deploy_error(data, seed):
    check(data)
    for raw in mutants(data, seed):
        check(raw)


# Regression tests: each of these escaped unpack() as a raw exception until
# fuzzing found it (now DeployError: corrupt archive).

def _one_file_zip(name: str = "a", data: bytes = b"x") -> bytearray:
    return bytearray(_zip([(name, tarfile.REGTYPE, "", data)]))


def _patch_central(z: bytearray, offset: int, value: int, size: int = 2) -> bytes:
    at = z.index(b"PK\x01\x02") + offset
    z[at:at + size] = value.to_bytes(size, "little")
    return bytes(z)


def _refused(tmp_path: Path, data: bytes) -> DeployError:
    archive = tmp_path / "pkg.bin"
    archive.write_bytes(data)
    with pytest.raises(DeployError) as info:
        unpack(archive, tmp_path / "out", limits=LIMITS)
    assert sorted(os.listdir(tmp_path)) == ["pkg.bin"]
    return info.value


def test_a_tar_gz_with_a_bad_crc_is_refused(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("a")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    # No end-of-archive blocks, so reading the next header reaches the trailer.
    data = bytearray(gzip.compress(raw.getvalue()[:1024]))
    data[-8] ^= 0xFF  # the gzip trailer's CRC32
    _refused(tmp_path, bytes(data))


def test_a_zip_needing_an_unknown_version_is_refused(tmp_path):
    _refused(tmp_path, _patch_central(_one_file_zip(), 6, 68))


def test_a_zip_with_an_unknown_compression_method_is_refused(tmp_path):
    _refused(tmp_path, _patch_central(_one_file_zip(), 10, 99))


def test_a_zip_with_an_encrypted_member_is_refused(tmp_path):
    _refused(tmp_path, _patch_central(_one_file_zip(), 8, 0x1))


def test_a_zip_with_a_name_flagged_utf8_that_is_not_is_refused(tmp_path):
    z = _one_file_zip("ab")
    at = z.index(b"PK\x01\x02")
    z[at + 46] = 0xA3  # first byte of the name in the central directory
    _refused(tmp_path, _patch_central(z, 8, 0x800))


def test_a_zip_member_with_an_empty_name_is_refused(tmp_path):
    # Found by the fuzzer: zipfile's is_dir() indexes the name's last character.
    z = _one_file_zip("ab")
    at = z.index(b"PK\x01\x02")
    z[at + 28:at + 30] = (0).to_bytes(2, "little")  # name length 0 ...
    z[at + 30:at + 32] = (2).to_bytes(2, "little")  # ... the name's bytes become the extra field
    error = _refused(tmp_path, bytes(z))
    assert "empty" in str(error) or "corrupt" in str(error)


def test_a_symlink_to_dotdot_under_the_single_top_directory_is_refused(tmp_path):
    # pkg/a -> .. stays inside the archive but leaves the package once pkg/
    # becomes the package root.
    error = _refused(tmp_path, _zip([("pkg/a", tarfile.SYMTYPE, "..", b"")]))
    assert "outside" in str(error)
    error = _refused(tmp_path, _tar([("pkg/a", tarfile.SYMTYPE, "..", b"")]))
    assert "outside" in str(error)
