"""The short chaos run of ``make test``: seeded faults on 5 slivers, zero invariant violations.

Knobs (environment): ``DSMT_CHAOS_SEED`` (default 4), ``DSMT_CHAOS_SECONDS``
(at least this long, default 120), ``DSMT_CHAOS_FAULTS`` (at least this many
faults, default 50). The long run is ``python -m tests.netns.chaos``; both
write ``reports/chaos/chaos-<seed>.json``.
"""

from __future__ import annotations

import os

import pytest

from tests.netns import chaos
from tests.netns.faults import KINDS

SEED = int(os.environ.get("DSMT_CHAOS_SEED", "4"))
SECONDS = float(os.environ.get("DSMT_CHAOS_SECONDS", "120"))
FAULTS = int(os.environ.get("DSMT_CHAOS_FAULTS", "50"))

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(SECONDS * 3 + FAULTS * 20 + 300)]


def test_a_seeded_chaos_run_keeps_every_invariant(capsys):
    with capsys.disabled():
        report = chaos.run(SEED, SECONDS, FAULTS, log=lambda line: print(line, flush=True))
    assert report["faults"] >= FAULTS
    assert report["duration_s"] >= SECONDS
    assert set(report["faults_per_kind"]) == set(KINDS)
    assert report["violations"] == []


def test_the_fault_schedule_is_a_pure_function_of_the_seed():
    from itertools import islice

    from tests.netns.faults import schedule

    first = list(islice(schedule(SEED), 60))
    assert first == list(islice(schedule(SEED), 60))
    assert first != list(islice(schedule(SEED + 1), 60))
    assert {f.kind for f in first[:len(KINDS)]} == set(KINDS)
