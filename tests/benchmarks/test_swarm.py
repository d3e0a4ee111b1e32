"""`python -m benchmarks swarm`: a quick run with a real router and node, every figure present."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_a_quick_swarm_run_measures_the_node_with_and_without_simulated_peers():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "swarm", "--peers", "20",
                           "--seconds", "2", "--rounds", "1"], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    peers = json.loads(done.stdout)["peers"]
    assert set(peers) == {"0", "20"}
    # the node's hub delivered the simulated beats (and, with none, only the node's own)
    (beats,) = peers["20"]["beats_per_s"]["runs"]
    assert 15 <= beats <= 25
    assert peers["0"]["beats_per_s"]["median"] < 3
    # CPU is counted in clock ticks (10 ms): an idle router may show none in 2 s
    assert peers["20"]["node_cpu_ms_per_s"]["median"] > 0
    assert peers["20"]["router_cpu_ms_per_s"]["median"] > 0
    (per_beat,) = peers["20"]["node_cpu_us_per_beat_above_baseline"]["runs"]
    added = beats - peers["0"]["beats_per_s"]["runs"][0]
    assert per_beat == pytest.approx(
        1000 * (peers["20"]["node_cpu_ms_per_s"]["runs"][0]
                - peers["0"]["node_cpu_ms_per_s"]["runs"][0]) / added, abs=1)
    assert "node_cpu_us_per_beat_above_baseline" not in peers["0"]
