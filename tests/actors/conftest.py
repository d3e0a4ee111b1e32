"""Fixtures for the sliver tree's tests: workspaces, packages, archives, a loopback HTTP server,
an installer (with version 1.0 of ``app`` installed: ``v1``)."""

from __future__ import annotations

import email.utils
import io
import re
import socket
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from actors.deploy.fetch import FetchLimits
from actors.deploy.installer import Installer, InstallRequest
from actors.deploy.journal import Journal
from actors.deploy.package import build, build_demo
from actors.workspace import Workspace

_RANGE = re.compile(r"^bytes=(\d+)-$")


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    return Workspace.create(tmp_path / "ws")


@pytest.fixture
def journal(workspace):
    with Journal(workspace.state_db) as j:
        yield j


@pytest.fixture
def demo_package(tmp_path):
    """``demo_package(version="1.0.0", variant="ok") -> (archive path, sha256)``."""
    return lambda version="1.0.0", variant="ok": build_demo(
        tmp_path / "dist", version=version, variant=variant)


@pytest.fixture
def app_package(tmp_path):
    """Build a package: ``app_package(manifest, {path: text or bytes}) -> (archive, sha256)``."""
    counter = iter(range(1000))

    def make(manifest: str, files: dict[str, str | bytes] | None = None) -> tuple[Path, str]:
        src = tmp_path / f"app-src-{next(counter)}"
        src.mkdir()
        (src / "dsmt-app.toml").write_text(manifest)
        for name, content in (files or {}).items():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            (src / name).write_bytes(data)
        return build(src, tmp_path / "dist")

    return make


def manifest_text(name="app", version="1.0.0", install=None, timeout=30, extra=""):
    """A minimal valid manifest, with an optional install command."""
    lines = [f'name = "{name}"', f'version = "{version}"', extra,
             "[start]", 'command = ["python", "-c", "pass"]']
    if install is not None:
        lines += ["[install]", f"command = {install!r}".replace("'", '"'), f"timeout = {timeout}"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def make_manifest():
    return manifest_text


# --- hand-made archives (for the unsafe ones) -----------------------------------
@dataclass
class TarBuilder:
    """Adds arbitrary members, including the ones a safe packer would never write."""

    path: Path
    members: list[tuple[tarfile.TarInfo, bytes | None]] = field(default_factory=list)

    def file(self, name: str, data: bytes = b"x", mode: int = 0o644) -> "TarBuilder":
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        self.members.append((info, data))
        return self

    def special(self, name: str, kind: bytes, link: str = "") -> "TarBuilder":
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        self.members.append((info, None))
        return self

    def symlink(self, name: str, target: str) -> "TarBuilder":
        return self.special(name, tarfile.SYMTYPE, target)

    def hardlink(self, name: str, target: str) -> "TarBuilder":
        return self.special(name, tarfile.LNKTYPE, target)

    def dir(self, name: str) -> "TarBuilder":
        return self.special(name, tarfile.DIRTYPE)

    def build(self) -> Path:
        with tarfile.open(self.path, "w:gz") as tar:
            for info, data in self.members:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return self.path


@dataclass
class ZipBuilder:
    path: Path
    members: list[tuple[zipfile.ZipInfo, bytes]] = field(default_factory=list)

    def file(self, name: str, data: bytes = b"x", mode: int = 0o100644) -> "ZipBuilder":
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.members.append((info, data))
        return self

    def symlink(self, name: str, target: str) -> "ZipBuilder":
        return self.file(name, target.encode(), mode=0o120777)

    def build(self) -> Path:
        with zipfile.ZipFile(self.path, "w") as zf:
            for info, data in self.members:
                zf.writestr(info, data)
        return self.path


@pytest.fixture
def tar_archive(tmp_path):
    return lambda name="pkg.tar.gz": TarBuilder(tmp_path / name)


@pytest.fixture
def zip_archive(tmp_path):
    return lambda name="pkg.zip": ZipBuilder(tmp_path / name)


# --- a loopback HTTP file server with Range support ------------------------------
class FileServer:
    """Serves ``root`` on 127.0.0.1; knobs make it misbehave on the first requests.

    ``cut_first``: that many responses send only half the body, then close.
    ``fail_first``: that many requests get 503. ``ignore_range``: answer 200
    to Range requests. ``requests`` records (path, Range header) in order.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cut_first = 0
        self.fail_first = 0
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_port
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def _take(self, knob: str) -> bool:
        with self._lock:
            if getattr(self, knob) > 0:
                setattr(self, knob, getattr(self, knob) - 1)
                return True
            return False

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                with server._lock:
                    server.requests.append((self.path, rng))
                if server._take("fail_first"):
                    return self._send(503, b"busy")
                path = server.root / self.path.lstrip("/")
                if not path.is_file():
                    return self._send(404, b"not found")
                data = path.read_bytes()
                match = _RANGE.match(rng or "")
                if match and not server.ignore_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                    headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
                    return self._send(206, data[start:], headers)
                self._send(200, data, cut=server._take("cut_first"))

            def _send(self, status, body, headers=None, cut=False) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Date", email.utils.formatdate(usegmt=True))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if cut:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if cut else body)
                if cut:
                    self.wfile.flush()
                    self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        return Handler


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = FileServer(root)
    yield server
    server.close()


@pytest.fixture
def closed_port():
    """A loopback port bound by nobody listening: connecting to it is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


# --- the installer ---------------------------------------------------------------
NO_WAIT = FetchLimits(tries=3, backoff_min=0.5, timeout=5)


class Crash(BaseException):
    """The agent dying mid-stage: not an Exception, so nothing journals a failure."""


class Events(list):
    def __call__(self, stage, detail):
        self.append((stage, detail))

    def stages(self, detail):
        return [s for s, d in self if d == detail]


@pytest.fixture
def events():
    return Events()


@pytest.fixture
def installer(workspace, journal, events):
    return Installer(workspace, journal, progress=events, fetch_limits=NO_WAIT,
                     sleep=lambda delay: None)


@pytest.fixture
def v1(installer, app_package, make_manifest):
    archive, sha = app_package(make_manifest(version="1.0"))
    installer.install(InstallRequest("app", "1.0", archive.as_uri(), sha))
    assert installer.workspace.current("app") == "1.0"
    return installer
