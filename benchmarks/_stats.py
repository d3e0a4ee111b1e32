"""The one summary the benchmarks print for a figure measured several times."""

from __future__ import annotations

import statistics


def spread(values: list[float], digits: int = 0) -> dict:
    """Median, min, max, spread (% of the median) and every run of ``values``."""
    med = statistics.median(values)
    return {"median": round(med, digits), "min": round(min(values), digits),
            "max": round(max(values), digits),
            "spread_pct": round(100 * (max(values) - min(values)) / med, 1) if med else None,
            "runs": [round(v, digits) for v in values]}
