"""Running a benchmark as its README command does: ``python -m benchmarks NAME ARGS``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(name: str, *args: str, timeout: float) -> str:
    """Its stdout, from the checkout; the test fails with its stderr if it does not exit 0."""
    done = subprocess.run([sys.executable, "-m", "benchmarks", name, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def benchmark_json(name: str, *args: str, timeout: float) -> dict:
    """The JSON a benchmark prints (it must exit 0)."""
    return json.loads(run(name, *args, timeout=timeout))
