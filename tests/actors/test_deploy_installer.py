"""The install pipeline: every failure is typed and leaves the active version active.

Resuming after a crash is in :mod:`tests.actors.test_deploy_installer_resume`; the
``installer`` and ``v1`` fixtures are in the conftest."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile

import pytest

from dsmt.errors import ConfigError

from actors.deploy import journal as j
from actors.deploy.errors import (
    ChecksumError,
    DeployError,
    FetchError,
    InstallError,
    UnsafeArchiveError,
)
from actors.deploy.installer import InstallRequest
from actors.deploy.unpack import UnpackLimits
from actors.deploy.verify import sha256_file

pytestmark = pytest.mark.timeout(30)


def _request(archive, sha, version="2.0", name="app"):
    return InstallRequest(name, version, archive.as_uri(), sha)


def _hand_made(tmp_path, *members):
    """A tar.gz of (name, type, linkname) members next to a valid manifest."""
    path = tmp_path / "app-2.0.tar.gz"
    manifest = b'name = "app"\nversion = "2.0"\n[start]\ncommand = ["true"]\n'
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("dsmt-app.toml")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for name, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            data = b"x" * 2000 if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path, sha256_file(path)


def test_the_demo_app_installs_through_every_stage(installer, demo_package, events, workspace):
    archive, sha = demo_package("1.0.0")
    installed = installer.install(InstallRequest("demo-app", "1.0.0", archive.as_uri(), sha))
    assert installed.active and installed.manifest.name == "demo-app"
    assert installed.path == workspace.version_dir("demo-app", "1.0.0")
    assert events.stages("started") == list(j.STAGES)
    assert [r.status for r in installer.journal.stages("demo-app", "1.0.0")] == [j.DONE] * 5
    assert installer.journal.resume_point("demo-app", "1.0.0") is None
    record = json.loads((workspace.current_link("demo-app") / "installed.json").read_text())
    assert record["prefix"] == str(installed.path / ".venv"), "install ran in the version's venv"
    assert (workspace.packages / "demo-app-1.0.0.tar.gz").exists()


def test_a_package_is_installed_over_http(installer, demo_package, http_server):
    archive, sha = demo_package("1.0.0")
    shutil.copy(archive, http_server.root / archive.name)
    installer.install(InstallRequest("demo-app", "1.0.0", http_server.url(archive.name), sha))
    assert installer.workspace.current("demo-app") == "1.0.0"


def test_an_upgrade_is_side_by_side_and_can_be_rolled_back(v1, app_package, make_manifest):
    archive, sha = app_package(make_manifest(version="2.0"))
    installed = v1.install(_request(archive, sha))
    assert installed.active and installed.previous == "1.0"
    assert v1.workspace.installed("app") == ["1.0", "2.0"]
    assert v1.rollback("app") == "1.0"
    assert v1.workspace.current("app") == "1.0"


# --- every failure: a typed error, and version 1.0 stays current ------------------

def test_a_checksum_mismatch_fails_verify_and_removes_the_archive(v1, app_package, make_manifest):
    archive, sha = app_package(make_manifest(version="2.0"))
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        v1.install(_request(archive, wrong))
    assert (info.value.expected, info.value.actual) == (wrong, sha)
    assert not (v1.workspace.packages / "app-2.0.tar.gz").exists()
    assert v1.workspace.current("app") == "1.0"
    assert v1.journal.stages("app", "2.0")[-1].status == j.FAILED


@pytest.mark.parametrize("member,why", [
    (("../../evil", tarfile.REGTYPE, ""), "escapes the target"),
    (("/etc/evil", tarfile.REGTYPE, ""), "absolute path"),
    (("out", tarfile.SYMTYPE, "../../.."), "points outside"),
    (("hard", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
    (("null", tarfile.CHRTYPE, ""), "device file"),
    (("pipe", tarfile.FIFOTYPE, ""), "FIFO"),
], ids=["traversal", "absolute", "symlink-escape", "hardlink-escape", "device", "fifo"])
def test_an_unsafe_archive_is_refused_and_nothing_is_unpacked(v1, tmp_path, member, why):
    archive, sha = _hand_made(tmp_path, member)
    with pytest.raises(UnsafeArchiveError) as info:
        v1.install(_request(archive, sha))
    assert info.value.member == member[0] and why in info.value.why
    assert not v1.workspace.version_dir("app", "2.0").exists()
    assert v1.workspace.current("app") == "1.0"
    assert v1.journal.resume_point("app", "2.0") == j.UNPACK


def test_an_archive_over_the_size_cap_is_refused(v1, tmp_path):
    v1.unpack_limits = UnpackLimits(max_bytes=1000)
    archive, sha = _hand_made(tmp_path, ("big", tarfile.REGTYPE, ""))
    with pytest.raises(UnsafeArchiveError, match="more than 1000 bytes"):
        v1.install(_request(archive, sha))
    assert v1.workspace.current("app") == "1.0"


def test_a_failing_install_script_reports_its_exit_code_and_output(v1, app_package, make_manifest):
    archive, sha = app_package(
        make_manifest(version="2.0", install=["sh", "install.sh"]),
        {"install.sh": "echo compiling...\necho 'error: no compiler' >&2\nexit 4\n"})
    with pytest.raises(InstallError) as info:
        v1.install(_request(archive, sha))
    assert info.value.returncode == 4 and "error: no compiler" in info.value.tail
    assert info.value.log == v1.workspace.install_log("app", "2.0")
    assert v1.workspace.current("app") == "1.0"
    [*_, install] = v1.journal.stages("app", "2.0")
    assert (install.stage, install.status) == (j.INSTALL, j.FAILED)
    assert "exited with code 4" in install.detail


def test_an_install_script_that_hangs_is_killed_at_its_timeout(v1, app_package, make_manifest):
    archive, sha = app_package(
        make_manifest(version="2.0", install=["sh", "-c", "echo waiting; exec sleep 60"],
                      timeout=0.5))
    with pytest.raises(InstallError, match="timed out") as info:
        v1.install(_request(archive, sha))
    assert info.value.returncode is None and "waiting" in info.value.tail
    assert v1.workspace.current("app") == "1.0"


def test_an_unreachable_url_fails_fetch_after_bounded_tries(v1, closed_port, events):
    url = f"http://127.0.0.1:{closed_port}/app-2.0.tar.gz"
    with pytest.raises(FetchError, match="Connection refused.*gave up after 3 tries"):
        v1.install(InstallRequest("app", "2.0", url, "a" * 64))
    assert v1.workspace.current("app") == "1.0"
    assert events[-1][0] == j.FETCH and events[-1][1].startswith("failed: cannot fetch")


def test_a_package_that_is_not_what_the_plan_names_is_refused(v1, app_package, make_manifest):
    archive, sha = app_package(make_manifest(version="2.1"))
    with pytest.raises(ConfigError, match="version: is '2.1', the plan asks for '2.0'"):
        v1.install(_request(archive, sha))
    assert v1.workspace.current("app") == "1.0"


def test_a_request_without_sha256_is_refused_before_anything_is_recorded(v1, app_package,
                                                                         make_manifest):
    archive, _ = app_package(make_manifest(version="2.0"))
    with pytest.raises(FetchError, match="sha256 is mandatory"):
        v1.install(_request(archive, None))
    assert v1.journal.stages("app", "2.0") == [] and v1.journal.unfinished() == []


def test_an_unsafe_name_or_version_is_refused(v1):
    with pytest.raises(DeployError, match="invalid version"):
        v1.install(InstallRequest("app", "../../etc", "file:///x.tar.gz", "a" * 64))


# --- the rest of the life cycle ---------------------------------------------------

def test_install_without_activation_then_activate(v1, app_package, make_manifest):
    archive, sha = app_package(make_manifest(version="2.0"))
    staged = v1.install(_request(archive, sha), activate=False)
    assert not staged.active and v1.workspace.current("app") == "1.0"
    assert v1.journal.resume_point("app", "2.0") == j.ACTIVATE
    assert v1.activate("app", "2.0").active
    assert v1.journal.resume_point("app", "2.0") is None


def test_installing_an_installed_version_again_only_reactivates_it(v1, app_package, make_manifest,
                                                                   events):
    archive, sha = app_package(make_manifest(version="2.0"))
    v1.install(_request(archive, sha))
    v1.rollback("app")
    events.clear()
    v1.install(_request(archive, sha))
    assert v1.workspace.current("app") == "2.0"
    assert events.stages("started") == [j.ACTIVATE]


def test_uninstall_removes_the_version_and_its_journal(v1, app_package, make_manifest):
    archive, sha = app_package(make_manifest(version="2.0"))
    v1.install(_request(archive, sha))
    with pytest.raises(DeployError, match="active version"):
        v1.uninstall("app", "2.0")
    v1.uninstall("app", "1.0")
    assert v1.workspace.installed("app") == ["2.0"]
    assert v1.journal.stages("app", "1.0") == []


def _wheel(tmp_path):
    """A minimal pure-Python wheel, built by hand so pip needs no network and no build backend."""
    path = tmp_path / "dsmt_probe-0.1-py3-none-any.whl"
    files = {
        "dsmt_probe/__init__.py": "VALUE = 42\n",
        "dsmt_probe-0.1.dist-info/METADATA":
            "Metadata-Version: 2.1\nName: dsmt-probe\nVersion: 0.1\n",
        "dsmt_probe-0.1.dist-info/WHEEL":
            "Wheel-Version: 1.0\nGenerator: dsmt-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "dsmt_probe-0.1.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in {**files, "dsmt_probe-0.1.dist-info/RECORD": record}.items():
            zf.writestr(name, text)
    return path.read_bytes()


def test_pip_requirements_go_into_the_versions_own_venv(installer, app_package, make_manifest,
                                                        tmp_path):
    wheel = "wheels/dsmt_probe-0.1-py3-none-any.whl"
    manifest = make_manifest(
        version="1.0", extra=f'requirements = ["./{wheel}"]',
        install=["python", "-c",
                 "import dsmt_probe, sys; assert dsmt_probe.VALUE == 42; print(sys.prefix)"])
    archive, sha = app_package(manifest, {wheel: _wheel(tmp_path)})
    installed = installer.install(_request(archive, sha, version="1.0"))
    venv = installed.path / ".venv"
    assert list(venv.glob("lib/python*/site-packages/dsmt_probe/__init__.py"))
    assert str(venv) in installer.workspace.install_log("app", "1.0").read_text()


def test_a_requirement_pip_cannot_install_fails_the_install_stage(v1, app_package, make_manifest):
    manifest = make_manifest(version="2.0", extra='requirements = ["./wheels/missing.whl"]')
    archive, sha = app_package(manifest)
    with pytest.raises(InstallError, match="pip install exited with code"):
        v1.install(_request(archive, sha))
    assert v1.workspace.current("app") == "1.0"
