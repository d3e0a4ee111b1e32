"""`python -m benchmarks world`: a quick run, every figure present and consistent."""

from __future__ import annotations

import pytest

from tests.benchmarks._run import benchmark_json


def test_a_quick_world_run_gives_per_beat_cost_node_cost_and_the_ratio_to_the_smallest():
    slices = benchmark_json("world", "--peers", "5,50", "--seconds", "3", "--rounds", "2",
                     timeout=120)["slices"]
    assert set(slices) == {"5", "50"}
    assert slices["5"]["ratio_per_beat_to_smallest"]["runs"] == [1.0, 1.0]
    for n, figures in slices.items():
        assert figures["beats_per_s"] == int(n) - 1
        per_beat = figures["cpu_us_per_beat"]["runs"]
        assert len(per_beat) == 2 and all(us > 0 for us in per_beat)
        node = figures["node_cpu_ms_per_s"]["runs"]
        assert node == [pytest.approx(us * (int(n) - 1) / 1000, abs=0.01) for us in per_beat]
