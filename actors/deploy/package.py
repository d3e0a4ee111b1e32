"""Building a package archive from an application directory, and the demo app's variants.

:func:`build` packs a directory holding a ``dsmt-app.toml`` into
``<name>-<version>.tar.gz`` with a ``<name>-<version>/`` prefix and returns
the archive's path and sha256 — the two things a plan needs. The archive is
reproducible: members sorted, mtime fixed, owner root, modes 0644/0755,
caches and dot-files left out, so the same sources give the same digest.

:func:`build_demo` builds ``conf/demo-app`` (a source checkout is needed; it
is not part of the installed package) at any ``version`` and in one of the
``VARIANTS``: ``ok``; ``unhealthy`` (``/health`` answers 503, for rollback
tests); ``crash`` (exits with code 3 at start, for fatal tests).

CLI::

    python -m actors.deploy.package [--version 1.0.0] [--variant ok] [--out DIR] [APP_DIR]

prints ``<sha256>  <archive path>`` (the ``sha256sum`` format).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import sys
import tarfile
from pathlib import Path

from dsmt.errors import ConfigError

from actors.deploy import manifest as _manifest

DEMO_DIR = Path(__file__).resolve().parents[2] / "conf" / "demo-app"
VARIANTS = ("ok", "unhealthy", "crash")
_MTIME = 1_700_000_000


def build(app_dir: Path, out_dir: Path, *, manifest_text: str | None = None) -> tuple[Path, str]:
    """Pack ``app_dir`` into ``out_dir``; return (archive path, sha256).

    ``manifest_text`` replaces the directory's ``dsmt-app.toml`` in the archive.
    """
    app_dir = Path(app_dir)
    if manifest_text is None:
        manifest_text = (app_dir / _manifest.FILENAME).read_text(encoding="utf-8")
    manifest = _manifest.loads(manifest_text, str(app_dir / _manifest.FILENAME))
    top = f"{manifest.name}-{manifest.version}"
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"{top}.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info(f"{top}/", tarfile.DIRTYPE, 0o755))
        for path in sorted(_files(app_dir)):
            rel = path.relative_to(app_dir).as_posix()
            if rel == _manifest.FILENAME:
                data = manifest_text.encode()
            else:
                data = path.read_bytes()
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info = _info(f"{top}/{rel}", tarfile.REGTYPE, mode)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with open(archive, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=_MTIME) as gz:
        gz.write(buffer.getvalue())
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def build_demo(out_dir: Path, *, version: str = "1.0.0", variant: str = "ok") -> tuple[Path, str]:
    """Build the demo app at ``version`` in ``variant``; return (archive path, sha256)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown demo variant {variant!r} (one of {', '.join(VARIANTS)})")
    text = (DEMO_DIR / _manifest.FILENAME).read_text(encoding="utf-8")
    text = _set_line(text, "version", version)
    text = _set_line(text, "DEMO_MODE", variant)
    return build(DEMO_DIR, Path(out_dir), manifest_text=text)


def _set_line(text: str, key: str, value: str) -> str:
    pattern = re.compile(rf'^{key} = "[^"\n]*"$', re.MULTILINE)
    new, count = pattern.subn(f'{key} = "{value}"', text)
    if count != 1:
        raise ValueError(f"demo manifest must have exactly one line '{key} = \"...\"'")
    return new


def _files(root: Path):
    for path in root.rglob("*"):
        rel = path.relative_to(root).parts
        if any(p.startswith(".") or p == "__pycache__" for p in rel) or path.suffix == ".pyc":
            continue
        if path.is_file() and not path.is_symlink():
            yield path


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = _MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m actors.deploy.package",
        description="Build a DSMT package archive and print its sha256.")
    parser.add_argument("app_dir", nargs="?", type=Path,
                        help="application directory with a dsmt-app.toml (default: the demo app)")
    parser.add_argument("--out", type=Path, default=Path("dist"), help="output directory")
    parser.add_argument("--version", help="demo app only: the version to build")
    parser.add_argument("--variant", choices=VARIANTS, default="ok",
                        help="demo app only: ok, unhealthy (/health fails), crash (exits at start)")
    args = parser.parse_args(argv)
    try:
        if args.app_dir is None:
            archive, digest = build_demo(args.out, version=args.version or "1.0.0",
                                         variant=args.variant)
        else:
            archive, digest = build(args.app_dir, args.out)
    except (OSError, ValueError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{digest}  {archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
