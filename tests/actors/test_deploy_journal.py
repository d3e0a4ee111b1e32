"""The deployment journal: stages and resume points, processes for re-adoption, crash-safe."""

from __future__ import annotations

import sqlite3

import pytest

from dsmt.testing import FakeClock

from actors.deploy import journal as j
from actors.deploy.journal import Journal

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def clock():
    return FakeClock(start=0.0, wall_offset=1000.0)


@pytest.fixture
def db(tmp_path, clock):
    with Journal(tmp_path / "state.db", clock=clock) as journal:
        yield journal


def test_the_database_runs_in_wal_mode(db, tmp_path):
    mode = sqlite3.connect(tmp_path / "state.db").execute("PRAGMA journal_mode").fetchone()
    assert mode == ("wal",)


def test_an_unknown_install_resumes_at_fetch(db):
    assert db.resume_point("web", "1.0") == j.FETCH
    assert db.begin_install("web", "1.0", "file:///p.tar.gz", "a" * 64) == j.FETCH


def test_stages_are_recorded_with_timestamps_and_outcome(db, clock):
    db.begin_install("web", "1.0", "file:///p.tar.gz", "a" * 64)
    db.start("web", "1.0", j.FETCH)
    clock.advance(2.0)
    db.done("web", "1.0", j.FETCH, "300 bytes")
    db.start("web", "1.0", j.VERIFY)
    db.fail("web", "1.0", j.VERIFY, "sha256 mismatch")
    fetch, verify = db.stages("web", "1.0")
    assert (fetch.stage, fetch.status, fetch.started, fetch.finished, fetch.detail) == (
        j.FETCH, j.DONE, 1000.0, 1002.0, "300 bytes")
    assert (verify.status, verify.detail, verify.attempts) == (j.FAILED, "sha256 mismatch", 1)
    assert db.resume_point("web", "1.0") == j.VERIFY


def test_the_resume_point_is_the_first_stage_not_done(db):
    db.begin_install("web", "1.0", "s", "a" * 64)
    for stage in j.STAGES[:3]:
        db.start("web", "1.0", stage)
        db.done("web", "1.0", stage)
    db.start("web", "1.0", j.INSTALL)  # the agent dies here
    assert db.resume_point("web", "1.0") == j.INSTALL
    db.done("web", "1.0", j.INSTALL)
    db.start("web", "1.0", j.ACTIVATE)
    db.done("web", "1.0", j.ACTIVATE)
    assert db.resume_point("web", "1.0") is None


def test_a_retried_stage_counts_its_attempts(db):
    db.begin_install("web", "1.0", "s", "a" * 64)
    db.start("web", "1.0", j.FETCH)
    db.fail("web", "1.0", j.FETCH, "refused")
    db.start("web", "1.0", j.FETCH)
    [record] = db.stages("web", "1.0")
    assert (record.status, record.attempts, record.finished) == (j.RUNNING, 2, None)


def test_the_journal_survives_a_reopen(tmp_path, clock):
    with Journal(tmp_path / "s.db", clock=clock) as first:
        first.begin_install("web", "1.0", "s", "a" * 64)
        first.start("web", "1.0", j.FETCH)
        first.done("web", "1.0", j.FETCH)
        first.start("web", "1.0", j.VERIFY)
    with Journal(tmp_path / "s.db", clock=clock) as second:
        assert second.resume_point("web", "1.0") == j.VERIFY
        [pending] = second.unfinished()
        assert (pending.service, pending.version, pending.resume_at, pending.failed) == (
            "web", "1.0", j.VERIFY, False)


def test_asking_again_from_another_source_starts_over(db):
    db.begin_install("web", "1.0", "s", "a" * 64)
    db.start("web", "1.0", j.FETCH)
    db.done("web", "1.0", j.FETCH)
    assert db.begin_install("web", "1.0", "s", "a" * 64) == j.VERIFY
    assert db.begin_install("web", "1.0", "s", "b" * 64) == j.FETCH
    assert db.stages("web", "1.0") == []


def test_reset_forgets_a_stage_and_every_later_one(db):
    db.begin_install("web", "1.0", "s", "a" * 64)
    for stage in j.STAGES[:3]:
        db.start("web", "1.0", stage)
        db.done("web", "1.0", stage)
    db.reset("web", "1.0", j.VERIFY)
    assert [r.stage for r in db.stages("web", "1.0")] == [j.FETCH]


def test_unfinished_lists_installs_not_yet_active_and_flags_failures(db):
    db.begin_install("a", "1.0", "s", "a" * 64)
    db.begin_install("b", "1.0", "s", "a" * 64)
    db.start("b", "1.0", j.FETCH)
    db.fail("b", "1.0", j.FETCH, "refused")
    db.begin_install("c", "1.0", "s", "a" * 64)
    for stage in j.STAGES:
        db.start("c", "1.0", stage)
        db.done("c", "1.0", stage)
    assert [(r.service, r.resume_at, r.failed) for r in db.unfinished()] == [
        ("a", j.FETCH, False), ("b", j.FETCH, True)]
    db.forget_install("a", "1.0")
    assert [r.service for r in db.unfinished()] == ["b"]


def test_an_unknown_stage_is_a_value_error(db):
    with pytest.raises(ValueError, match="unknown install stage 'deploy'"):
        db.start("web", "1.0", "deploy")


def test_processes_are_recorded_listed_and_forgotten(db):
    db.record_process("web", "0", 4242, 1700000000.5, "1.0")
    db.record_process("web", "1", 4243, 1700000001.5, "1.0")
    db.record_process("db", "0", 99, 1700000002.0, "3.1")
    assert [(p.service, p.instance, p.pid) for p in db.processes()] == [
        ("db", "0", 99), ("web", "0", 4242), ("web", "1", 4243)]
    db.record_process("web", "0", 5000, 1700000009.0, "1.1")  # a restart replaces it
    [first, _] = db.processes("web")
    assert (first.pid, first.started, first.version, first.recorded) == (
        5000, 1700000009.0, "1.1", 1000.0)
    db.forget_process("web", "0")
    assert [p.instance for p in db.processes("web")] == ["1"]
