"""Unpacking a package archive (tar, tar.gz, zip) without trusting it.

:func:`unpack` extracts every member itself (``tarfile.extractall`` is not
used) into a fresh temporary directory next to the target, checks the result,
and renames it into place, so the target either does not exist or holds the
whole package. It refuses, with :class:`UnsafeArchiveError` naming the member:

- absolute names and names with a ``..`` element;
- members stored under a symlink member (writing through a link);
- symlinks with an absolute target or whose target leaves the package, judged
  both by the name and, after extraction, by ``os.path.realpath``;
- hard links to anything but a regular file member seen before;
- character/block devices, FIFOs and any other special member;
- duplicate file members;
- more than ``limits.max_files`` members or ``limits.max_bytes`` uncompressed
  bytes (counted as written, so a lying header does not help a zip bomb).

Files are written with mode 0644 or 0755 (set-id and sticky bits dropped);
ownership is never restored. If the archive holds a single top-level
directory and no ``dsmt-app.toml`` at its root, that directory becomes the
package root (the usual ``name-version/`` prefix).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

from actors.deploy.errors import DeployError, UnsafeArchiveError
from actors.deploy.manifest import FILENAME

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class UnpackLimits:
    """Caps on what one archive may unpack to."""

    max_bytes: int = 1024 * 1024 * 1024
    max_files: int = 20_000


@dataclass
class _Member:
    name: str
    kind: str  # file | dir | symlink | hardlink | <special>
    mode: int
    size: int
    link: str = ""
    open: Callable[[], IO[bytes]] | None = None


def unpack(archive: Path, dest: Path, *, limits: UnpackLimits = UnpackLimits()) -> Path:
    """Unpack ``archive`` to the new directory ``dest`` (which must not exist); return ``dest``."""
    if dest.exists() or dest.is_symlink():
        raise DeployError("unpack", f"{dest} already exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".unpack-{dest.name}-", dir=dest.parent))
    try:
        extractor = _Extractor(archive, tmp, limits)
        extractor.run()
        root = _package_root(tmp)
        extractor.check_links(root)  # judged from the root the package will have
        os.rename(root, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def remove_stale(parent: Path) -> None:
    """Remove temporary directories left in ``parent`` by an unpack that was interrupted."""
    for path in parent.glob(".unpack-*"):
        shutil.rmtree(path, ignore_errors=True)


def _package_root(tmp: Path) -> Path:
    if (tmp / FILENAME).exists():
        return tmp
    entries = list(tmp.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return tmp


class _Extractor:
    def __init__(self, archive: Path, root: Path, limits: UnpackLimits) -> None:
        self.archive = archive
        self.root = root
        self.limits = limits
        self.files: set[str] = set()
        self.symlinks: set[str] = set()
        self.count = 0
        self.total = 0

    def refuse(self, member: str, why: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(self.archive, member, why)

    def run(self) -> None:
        try:
            for member in _members(self.archive):
                try:
                    self.extract(member)
                except OSError as exc:
                    raise self.refuse(member.name,
                                      f"cannot extract: {exc.strerror or exc}") from None
        # What the readers raise on a corrupt or unsupported archive, found by
        # fuzzing: gzip.BadGzipFile and a bad seek are OSError, a zip name flagged
        # UTF-8 that is not is UnicodeDecodeError, unknown zip versions or
        # methods are NotImplementedError, an encrypted member is RuntimeError.
        except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError,
                ValueError, NotImplementedError, RuntimeError) as exc:
            raise DeployError("unpack", f"{self.archive.name}: corrupt archive: {exc}") from None

    def check_links(self, root: Path) -> None:
        """Refuse a symlink that resolves outside ``root`` (the package root chosen)."""
        real_root = os.path.realpath(root)
        for name in sorted(self.symlinks):
            real = os.path.realpath(self.root / name)
            if os.path.commonpath([real_root, real]) != real_root:
                raise self.refuse(name, "symlink resolves outside the package")

    def extract(self, m: _Member) -> None:
        name = self.check_name(m.name)
        if name is None:
            return
        self.count += 1
        if self.count > self.limits.max_files:
            raise self.refuse(m.name, f"more than {self.limits.max_files} members")
        path = self.root / name
        if m.kind == "dir":
            path.mkdir(mode=0o755, parents=True, exist_ok=True)
            return
        if name in self.files or name in self.symlinks:
            raise self.refuse(m.name, "duplicate member")
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if m.kind == "file":
            self.write(m, path)
            self.files.add(name)
        elif m.kind == "symlink":
            self.check_symlink(m, name)
            os.symlink(m.link, path)
            self.symlinks.add(name)
        elif m.kind == "hardlink":
            target = "/".join(p for p in m.link.split("/") if p not in ("", "."))
            if m.link.startswith("/") or target not in self.files:
                raise self.refuse(m.name, f"hard link to {m.link!r}, not a file of the package")
            os.link(self.root / target, path)
            self.files.add(name)
        else:
            raise self.refuse(m.name, f"{m.kind} members are not allowed")

    def check_name(self, raw: str) -> str | None:
        if raw.startswith("/") or raw.startswith("\\") or (len(raw) > 1 and raw[1] == ":"):
            raise self.refuse(raw, "absolute path")
        parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self.refuse(raw, "path escapes the target ('..')")
        if not parts:
            return None
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in self.symlinks:
                raise self.refuse(raw, f"stored under symlink {'/'.join(parts[:i])!r}")
        return "/".join(parts)

    def check_symlink(self, m: _Member, name: str) -> None:
        if not m.link or m.link.startswith("/"):
            raise self.refuse(m.name, f"symlink to absolute path {m.link!r}")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), m.link))
        if resolved == ".." or resolved.startswith("../"):
            raise self.refuse(m.name, f"symlink to {m.link!r} points outside the package")

    def write(self, m: _Member, path: Path) -> None:
        if self.total + m.size > self.limits.max_bytes:
            raise self.refuse(m.name, f"unpacks to more than {self.limits.max_bytes} bytes")
        mode = 0o755 if m.mode & 0o111 else 0o644
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as out, m.open() as src:
            while chunk := src.read(_CHUNK):
                self.total += len(chunk)
                if self.total > self.limits.max_bytes:
                    raise self.refuse(m.name, f"unpacks to more than {self.limits.max_bytes} bytes")
                out.write(chunk)
        os.chmod(path, mode)


def _members(archive: Path) -> Iterator[_Member]:
    if zipfile.is_zipfile(archive):
        yield from _zip_members(archive)
    else:
        yield from _tar_members(archive)


def _tar_members(archive: Path) -> Iterator[_Member]:
    with tarfile.open(archive, "r:*") as tar:
        for info in tar:
            if info.isreg():
                kind = "file"
            elif info.isdir():
                kind = "dir"
            elif info.issym():
                kind = "symlink"
            elif info.islnk():
                kind = "hardlink"
            elif info.ischr() or info.isblk():
                kind = "device file"
            elif info.isfifo():
                kind = "FIFO"
            else:
                kind = "special"
            opener = (lambda info=info: tar.extractfile(info)) if kind == "file" else None
            yield _Member(info.name, kind, info.mode, info.size, info.linkname, opener)


def _zip_members(archive: Path) -> Iterator[_Member]:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if not info.filename:  # zipfile's own is_dir() would fail on it (fuzzing found it)
                raise zipfile.BadZipFile("a member has an empty name")
            mode = info.external_attr >> 16
            fmt = stat.S_IFMT(mode)
            link = ""
            if info.is_dir() or fmt == stat.S_IFDIR:
                kind = "dir"
            elif fmt == stat.S_IFLNK:
                kind = "symlink"
                link = zf.read(info)[:4096].decode("utf-8", "replace")
            elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
                kind = "device file"
            elif fmt == stat.S_IFIFO:
                kind = "FIFO"
            elif fmt in (0, stat.S_IFREG):
                kind = "file"
            else:
                kind = "special"
            opener = (lambda info=info: zf.open(info)) if kind == "file" else None
            yield _Member(info.filename, kind, mode, info.file_size, link, opener)
