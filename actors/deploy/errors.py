"""The errors of the deployment agent: one class per kind of failure a user must act on.

All derive from :class:`DeployError` (itself a :class:`dsmt.errors.DsmtError`),
which carries the ``stage`` that failed, so the actor can publish
``failed: <stage>: <message>`` without knowing the subclasses. Every message
names the offending thing: the URL, the archive member, the expected and
actual digest, the exit code and the tail of the output.
"""

from __future__ import annotations

from pathlib import Path

from dsmt.errors import DsmtError


class DeployError(DsmtError):
    """A deployment stage failed; ``stage`` is one of the journal's stages."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


class FetchError(DeployError):
    """A package could not be downloaded or copied; ``url`` and ``why`` say which and why."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__("fetch", f"cannot fetch {url}: {why}")
        self.url = url
        self.why = why


class ChecksumError(DeployError):
    """A package's sha256 differs from the one the plan promised (the file is removed)."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        super().__init__(
            "verify", f"{path.name}: sha256 mismatch: expected {expected}, got {actual}"
        )
        self.path = path
        self.expected = expected
        self.actual = actual


class UnsafeArchiveError(DeployError):
    """An archive member would escape the target, is a device, or breaks a cap."""

    def __init__(self, archive: Path, member: str, why: str) -> None:
        super().__init__("unpack", f"{archive.name}: member {member!r}: {why}")
        self.archive = archive
        self.member = member
        self.why = why


class InstallError(DeployError):
    """The package's install step (pip or its install command) failed or timed out.

    ``returncode`` is ``None`` after a timeout; ``tail`` is the end of the output.
    """

    def __init__(self, what: str, returncode: int | None, tail: str, log: Path | None) -> None:
        how = "timed out" if returncode is None else f"exited with code {returncode}"
        shown = f"\n--- last output ---\n{tail}" if tail else ""
        super().__init__("install", f"{what} {how} (log: {log}){shown}")
        self.what = what
        self.returncode = returncode
        self.tail = tail
        self.log = log
