"""The deployment journal: what the agent was doing, in the sliver's SQLite database.

Two records survive an agent restart:

- **install stages** per (service, version): ``fetch → verify → unpack →
  install → activate``, each ``running``, ``done`` or ``failed`` with start
  and end timestamps, attempts and a detail (the error text on failure).
  :meth:`Journal.resume_point` is the first stage not ``done``: a restarted
  agent resumes there and says so. :meth:`Journal.unfinished` lists every
  install that has not reached ``activate``.
- **processes** the process actors started (service, instance, pid, the
  process start time, version, and the instance's port and process group),
  so a restarted node re-adopts live processes instead of starting
  duplicates, on the ports they already listen on. The start time tells a
  re-used pid from the original process. (``port`` and ``pgid`` were added
  later: an older database gets the columns on open, NULL in old rows.)

The database runs in WAL mode (readers never block the writer) with
``synchronous=FULL``: a stage marked ``done`` stays done after a power cut.
One :class:`Journal` may be shared between threads (one connection behind a
lock); timestamps come from the injectable clock's ``wall()``.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from dsmt.clock import Clock, system_clock

FETCH, VERIFY, UNPACK, INSTALL, ACTIVATE = "fetch", "verify", "unpack", "install", "activate"
STAGES = (FETCH, VERIFY, UNPACK, INSTALL, ACTIVATE)
RUNNING, DONE, FAILED = "running", "done", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS installs (
    service TEXT NOT NULL, version TEXT NOT NULL, source TEXT NOT NULL,
    sha256 TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (service, version));
CREATE TABLE IF NOT EXISTS stages (
    service TEXT NOT NULL, version TEXT NOT NULL, stage TEXT NOT NULL,
    status TEXT NOT NULL, started REAL NOT NULL, finished REAL,
    attempts INTEGER NOT NULL DEFAULT 1, detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (service, version, stage));
CREATE TABLE IF NOT EXISTS processes (
    service TEXT NOT NULL, instance TEXT NOT NULL, pid INTEGER NOT NULL,
    started REAL NOT NULL, version TEXT NOT NULL, recorded REAL NOT NULL,
    port INTEGER, pgid INTEGER,
    PRIMARY KEY (service, instance));
"""
# Columns added to a table after its first release: (table, column, declaration).
_ADDED = (("processes", "port", "INTEGER"), ("processes", "pgid", "INTEGER"))


@dataclass(frozen=True)
class StageRecord:
    stage: str
    status: str
    started: float
    finished: float | None
    attempts: int
    detail: str


@dataclass(frozen=True)
class InstallRecord:
    """An install the journal knows of, and where it would resume (None: complete)."""

    service: str
    version: str
    source: str
    sha256: str
    created: float
    resume_at: str | None
    failed: bool


@dataclass(frozen=True)
class ProcessRecord:
    """A journaled process; ``started`` is its start time (psutil ``create_time``)."""

    service: str
    instance: str
    pid: int
    started: float
    version: str
    recorded: float
    port: int | None = None
    pgid: int | None = None


class Journal:
    """The journal in the SQLite file at ``path`` (created if missing)."""

    def __init__(self, path: str | Path, *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self._clock = clock or system_clock()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._db:
            self._db.executescript(_SCHEMA)
            for table, column, declaration in _ADDED:
                known = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in known:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, args: tuple) -> None:
        with self._lock, self._db:
            self._db.execute(sql, args)

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- installs --------------------------------------------------------------
    def begin_install(self, service: str, version: str, source: str, sha256: str) -> str | None:
        """Register an install and return its resume point (None: already complete).

        The same (service, version) asked for again from another source or
        digest starts over: its stages are forgotten.
        """
        now = self._clock.wall()
        with self._lock, self._db:
            row = self._db.execute(
                "SELECT source, sha256 FROM installs WHERE service=? AND version=?",
                (service, version),
            ).fetchone()
            if row != (source, sha256):
                self._db.execute(
                    "DELETE FROM stages WHERE service=? AND version=?", (service, version))
                self._db.execute(
                    "INSERT OR REPLACE INTO installs VALUES (?, ?, ?, ?, ?)",
                    (service, version, source, sha256, now))
        return self.resume_point(service, version)

    def start(self, service: str, version: str, stage: str, detail: str = "") -> None:
        """Mark ``stage`` running (counting an attempt)."""
        _check(stage)
        self._write(
            "INSERT INTO stages (service, version, stage, status, started, detail)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (service, version, stage) DO UPDATE SET"
            " status=excluded.status, started=excluded.started, finished=NULL,"
            " attempts=attempts+1, detail=excluded.detail",
            (service, version, stage, RUNNING, self._clock.wall(), detail),
        )

    def done(self, service: str, version: str, stage: str, detail: str = "") -> None:
        self._finish(service, version, stage, DONE, detail)

    def fail(self, service: str, version: str, stage: str, reason: str) -> None:
        self._finish(service, version, stage, FAILED, reason)

    def _finish(self, service: str, version: str, stage: str, status: str, detail: str) -> None:
        _check(stage)
        self._write(
            "UPDATE stages SET status=?, finished=?, detail=?"
            " WHERE service=? AND version=? AND stage=?",
            (status, self._clock.wall(), detail, service, version, stage),
        )

    def reset(self, service: str, version: str, stage: str) -> None:
        """Forget ``stage`` and every later one, so the install resumes at ``stage``."""
        later = STAGES[STAGES.index(_check(stage)):]
        with self._lock, self._db:
            self._db.executemany(
                "DELETE FROM stages WHERE service=? AND version=? AND stage=?",
                [(service, version, s) for s in later])

    def stages(self, service: str, version: str) -> list[StageRecord]:
        """The recorded stages of one install, in pipeline order."""
        rows = self._read(
            "SELECT stage, status, started, finished, attempts, detail FROM stages"
            " WHERE service=? AND version=?", (service, version))
        return sorted((StageRecord(*r) for r in rows), key=lambda r: STAGES.index(r.stage))

    def resume_point(self, service: str, version: str) -> str | None:
        """The first stage not done (``fetch`` for an unknown install); None when complete."""
        done = {r.stage for r in self.stages(service, version) if r.status == DONE}
        return next((s for s in STAGES if s not in done), None)

    def unfinished(self) -> list[InstallRecord]:
        """Installs not yet activated, oldest first: what a restarted agent must resume."""
        found = []
        for service, version, source, sha256, created in self._read(
            "SELECT service, version, source, sha256, created FROM installs ORDER BY created"
        ):
            records = self.stages(service, version)
            resume = self.resume_point(service, version)
            if resume is not None:
                failed = any(r.status == FAILED for r in records)
                found.append(
                    InstallRecord(service, version, source, sha256, created, resume, failed))
        return found

    def forget_install(self, service: str, version: str) -> None:
        with self._lock, self._db:
            for table in ("stages", "installs"):
                self._db.execute(
                    f"DELETE FROM {table} WHERE service=? AND version=?", (service, version))

    # --- processes -------------------------------------------------------------
    def record_process(
        self, service: str, instance: str, pid: int, started: float, version: str,
        *, port: int | None = None, pgid: int | None = None,
    ) -> None:
        """Remember a running process (replacing any earlier one of that instance)."""
        self._write(
            "INSERT OR REPLACE INTO processes"
            " (service, instance, pid, started, version, recorded, port, pgid)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (service, str(instance), pid, started, version, self._clock.wall(), port, pgid),
        )

    def forget_process(self, service: str, instance: str, pid: int | None = None) -> None:
        """Forget the instance's process (only if it is ``pid``, when given)."""
        if pid is None:
            self._write(
                "DELETE FROM processes WHERE service=? AND instance=?", (service, str(instance)))
        else:
            self._write("DELETE FROM processes WHERE service=? AND instance=? AND pid=?",
                        (service, str(instance), pid))

    def processes(self, service: str | None = None) -> list[ProcessRecord]:
        """Recorded processes (of one service, or all), by service then instance."""
        sql = ("SELECT service, instance, pid, started, version, recorded, port, pgid"
               " FROM processes")
        args: tuple = ()
        if service is not None:
            sql, args = sql + " WHERE service=?", (service,)
        return [ProcessRecord(*r) for r in self._read(sql + " ORDER BY service, instance", args)]


def _check(stage: str) -> str:
    if stage not in STAGES:
        raise ValueError(f"unknown install stage {stage!r} (one of {', '.join(STAGES)})")
    return stage
