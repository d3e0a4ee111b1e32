"""`python -m benchmarks swarm`: a quick run with a real router and node, every figure present."""

from __future__ import annotations

import pytest

from tests.benchmarks._run import benchmark_json


def test_a_quick_swarm_run_measures_the_node_with_and_without_simulated_peers():
    peers = benchmark_json("swarm", "--peers", "20", "--seconds", "2", "--rounds", "1",
                    timeout=180)["peers"]
    assert set(peers) == {"0", "20"}
    # the node's hub delivered the simulated beats (and, with none, only the node's own)
    (beats,) = peers["20"]["beats_per_s"]["runs"]
    assert 15 <= beats <= 25
    assert peers["0"]["beats_per_s"]["median"] < 3
    for figures in peers.values():
        assert figures["node_cpu_ms_per_s"]["median"] > 0
        assert figures["node_wakeups_per_s"]["median"] > 0
        assert figures["router_cpu_ms_per_s"]["median"] > 0
    (per_beat,) = peers["20"]["node_cpu_us_per_beat_above_baseline"]["runs"]
    added = beats - peers["0"]["beats_per_s"]["runs"][0]
    assert per_beat == pytest.approx(
        1000 * (peers["20"]["node_cpu_ms_per_s"]["runs"][0]
                - peers["0"]["node_cpu_ms_per_s"]["runs"][0]) / added, abs=1)
    assert "node_cpu_us_per_beat_above_baseline" not in peers["0"]
