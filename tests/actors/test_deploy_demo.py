"""The demo application: packaged, installed through the real path, and answering on /health."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

from actors.deploy.installer import Installer, InstallRequest
from actors.deploy.launch import environment
from actors.deploy.package import build_demo, main
from actors.deploy.verify import sha256_file

pytestmark = pytest.mark.timeout(30)
LISTENING = re.compile(r"^demo-app (\S+) \((\S+)\) listening on ([\d.]+):(\d+)$")


class Service:
    """The installed demo app run as the process actor will: start command, cwd `current`, env."""

    def __init__(self, installed, workspace, sliver="sliver-1") -> None:
        env = environment(installed.manifest, installed.path,
                          extra={"PORT": "0", "DSMT_SLIVER": sliver})
        self.proc = subprocess.Popen(
            list(installed.manifest.start.command), cwd=workspace.current_link(installed.name),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_listening(self) -> int:
        match = LISTENING.match(self.lines.get(timeout=10))
        assert match, "the first line announces the port"
        return int(match.group(4))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        finally:
            self.proc.stderr.close()


def _get(port, path, data=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture
def install_demo(workspace, journal, tmp_path):
    installer = Installer(workspace, journal)
    started = []

    def install(version="1.0.0", variant="ok"):
        archive, sha = build_demo(tmp_path / "dist", version=version, variant=variant)
        installed = installer.install(InstallRequest("demo-app", version, archive.as_uri(), sha))
        service = Service(installed, workspace)
        started.append(service)
        return service

    yield install
    for service in started:
        service.stop()


def test_the_demo_package_is_reproducible(tmp_path):
    first = build_demo(tmp_path / "a", version="1.2.3")
    second = build_demo(tmp_path / "b", version="1.2.3")
    assert first[1] == second[1] == sha256_file(first[0])
    assert first[0].name == "demo-app-1.2.3.tar.gz"


def test_the_package_command_prints_the_sha256_and_path(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--version", "2.0.0", "--variant", "crash"]) == 0
    digest, path = capsys.readouterr().out.split()
    assert sha256_file(tmp_path / "demo-app-2.0.0.tar.gz") == digest
    assert path == str(tmp_path / "demo-app-2.0.0.tar.gz")


def test_an_unknown_variant_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown demo variant"):
        build_demo(tmp_path, variant="flaky")


def test_the_installed_demo_answers_health_and_load_then_stops_cleanly(install_demo):
    service = install_demo("1.0.0")
    port = service.wait_listening()
    status, body = _get(port, "/health")
    assert status == 200
    assert (body["status"], body["sliver"], body["version"]) == ("ok", "sliver-1", "1.0.0")
    assert isinstance(body["load"], float)
    assert _get(port, "/load", json.dumps({"load": 0.75}).encode()) == (200, {"load": 0.75})
    status, body = _get(port, "/load")
    assert (status, body["load"], body["version"]) == (200, 0.75, "1.0.0")
    assert service.stop() == 0
    assert service.lines.get(timeout=5) == "demo-app: stopped"


def test_the_unhealthy_variant_fails_its_health_check(install_demo):
    service = install_demo("2.0.0", variant="unhealthy")
    port = service.wait_listening()
    status, body = _get(port, "/health")
    assert (status, body["status"], body["version"]) == (503, "failing", "2.0.0")


def test_the_crash_variant_exits_at_start(install_demo):
    service = install_demo("3.0.0", variant="crash")
    assert service.proc.wait(10) == 3
    assert "DEMO_MODE=crash" in service.proc.stderr.read()
