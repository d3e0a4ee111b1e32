"""`python -m benchmarks report`: runs benchmarks for real and writes the report with plots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import report
from tests.benchmarks._run import ROOT, run

PNG = b"\x89PNG\r\n\x1a\n"


def _quick_report(out: Path, name: str) -> None:
    """``python -m benchmarks report --quick --only NAME --out OUT``, which must succeed."""
    run("report", "--quick", "--only", name, "--out", str(out), timeout=300)


def test_a_quick_report_puts_each_restart_figure_next_to_its_baselines_with_a_plot(tmp_path):
    out = tmp_path / "report"
    _quick_report(out, "restart")
    saved = json.loads((out / "restart.json").read_text())
    results = saved["result"]["results"]
    assert set(results) == {"dsmt", "dsmt-otp", "supervisord"}
    text = (out / "report.md").read_text()
    assert "Quick run" in text and "## Crash to restart" in text
    for tool in results:
        median = results[tool]["to_new_pid_ms"]["median"]
        row = next(line for line in text.splitlines() if line.startswith(f"| {tool} |"))
        assert f"{median:,.1f}" in row
    speedup = saved["result"]["speedup_vs_dsmt"]["supervisord"]["to_new_pid_ms"]
    assert f"{speedup:,.0f}×" in text
    assert (out / "restart_latency.png").read_bytes().startswith(PNG)
    assert "](restart_latency.png)" in text
    machine = json.loads((out / "machine.json").read_text())
    assert machine["cpus"] >= 1 and machine["load_avg_after"]

    run("report", "--from", str(out), "--out", str(tmp_path / "copy"), timeout=120)
    assert (tmp_path / "copy" / "report.md").read_text() == text


def test_a_quick_idle_report_measures_each_supervisor_and_each_slice_size(tmp_path):
    out = tmp_path / "report"
    _quick_report(out, "idle")
    result = json.loads((out / "idle.json").read_text())["result"]
    assert set(result["one_program"]) == {"dsmt", "supervisord"}
    assert set(result["slices"]) == {"1", "2"}
    text = (out / "report.md").read_text()
    assert "## Idle cost of a host" in text
    for name, res in result["one_program"].items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} supervising"))
        assert f"{res['cpu_ms_per_s']['median']:,.2f}" in row
    for n, res in result["slices"].items():
        assert res["node_wakeups_per_s"]["median"] > 0  # a running node is measured, not 0
        assert res["router_cpu_ms_per_s"]["median"] > 0
        row = next(line for line in text.splitlines() if f"of a {n}-sliver slice" in line)
        assert f"{res['node_cpu_ms_per_s']['median']:,.2f}" in row
    assert "node_cpu_ms_per_s_per_peer" in result


def test_a_quick_hub_report_sets_dsmt_against_both_baselines_and_the_packing_ceiling(tmp_path):
    out = tmp_path / "report"
    _quick_report(out, "hub")
    result = json.loads((out / "hub.json").read_text())["result"]
    rates = {mode: result[mode]["events_per_s"]["runs"]
             for mode in ("dsmt", "baseline", "baseline_msgpack")}
    for ratio, mine, theirs in (("ratio_dsmt_to_baseline", "dsmt", "baseline"),
                                ("ratio_dsmt_to_baseline_msgpack", "dsmt", "baseline_msgpack"),
                                ("ratio_baseline_msgpack_to_baseline", "baseline_msgpack",
                                 "baseline")):
        expected = [m / t for m, t in zip(rates[mine], rates[theirs])]
        assert result[ratio]["runs"] == pytest.approx(expected, abs=0.001)
    assert all(result[mode]["lost_total"] == 0 for mode in ("dsmt", "baseline"))
    text = (out / "report.md").read_text()
    ceiling = next(line for line in text.splitlines() if line.startswith("| (ceiling"))
    assert f"{result['ratio_baseline_msgpack_to_baseline']['median']:,.3f}" in ceiling


def test_a_failed_benchmark_is_reported_with_its_log_and_fails_the_command(tmp_path):
    (tmp_path / "slice.log").write_text("Traceback ...\nRuntimeError: the router did not start\n")
    runs = {"machine": report.describe_machine(),
            "benchmarks": {"slice": {"argv": ["benchmarks", "slice"], "seconds": 3.0,
                                     "returncode": 1, "error": "exit status 1"}}}
    assert report.write(tmp_path, runs) is True
    text = (tmp_path / "report.md").read_text()
    assert "**Failed**: exit status 1" in text and "the router did not start" in text


def test_unknown_benchmarks_are_refused_in_one_line():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "report", "--only", "hubb"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown benchmark(s): hubb" in done.stderr
