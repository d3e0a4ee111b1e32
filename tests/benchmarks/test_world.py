"""`python -m benchmarks world`: a quick run, every figure present and consistent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_a_quick_world_run_gives_per_beat_cost_node_cost_and_the_ratio_to_the_smallest():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "world", "--peers", "5,50",
                           "--seconds", "3", "--rounds", "2"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    slices = json.loads(done.stdout)["slices"]
    assert set(slices) == {"5", "50"}
    assert slices["5"]["ratio_per_beat_to_smallest"]["runs"] == [1.0, 1.0]
    for n, figures in slices.items():
        assert figures["beats_per_s"] == int(n) - 1
        per_beat = figures["cpu_us_per_beat"]["runs"]
        assert len(per_beat) == 2 and all(us > 0 for us in per_beat)
        node = figures["node_cpu_ms_per_s"]["runs"]
        assert node == [pytest.approx(us * (int(n) - 1) / 1000, abs=0.01) for us in per_beat]
