"""A chaos run's report: written as JSON under reports/chaos/ (git-ignored), printed as text.

Fields: ``seed``, ``duration_s``, ``faults``, ``faults_per_kind``,
``convergence`` ({kind: {n, p50_s, max_s, bound_s}}), ``overshoot``
({max_extra_instances, seconds_above_target}), ``gaps`` ({detected,
resynced, unresolved, resync_requests}), ``violations`` (sentences) and
``history`` (each fault: index, kind, target, hold, seconds to converge).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPORTS = Path(__file__).resolve().parents[2] / "reports" / "chaos"


def write(report: dict[str, Any], folder: Path = REPORTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"chaos-{report['seed']}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def summary(report: dict[str, Any]) -> str:
    lines = [f"chaos seed {report['seed']}: {report['faults']} faults in "
             f"{report['duration_s']}s {report['faults_per_kind']}"]
    for kind, c in report["convergence"].items():
        lines.append(f"  {kind:15s} n={c['n']:3d} p50 {c['p50_s']:5.2f}s max {c['max_s']:5.2f}s"
                     f" (bound {c['bound_s']}s)")
    o, g = report["overshoot"], report["gaps"]
    lines.append(f"  overshoot max +{o['max_extra_instances']}, {o['seconds_above_target']}s "
                 f"above 3; gaps detected {g['detected']}, resynced {g['resynced']}, "
                 f"unresolved {g['unresolved']}")
    lines.append(f"  violations: {len(report['violations'])}")
    lines.extend(f"    - {v}" for v in report["violations"])
    return "\n".join(lines)
