"""``python -m benchmarks NAME [ARGS...]``: run one benchmark (JSON on stdout).

Minimal name -> module dispatcher; each module under ``benchmarks`` has a
``main(argv)``. Without a name, lists the benchmarks.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "hub": "benchmarks.hub",
    "router": "benchmarks.router",
    "restart": "benchmarks.restart",
    "slice": "benchmarks.slice",
    "idle": "benchmarks.idle",  # what DSMT costs a host while nothing happens
    "follow": "benchmarks.follow",  # dsmt logs -f: its cost to a sliver, its latency
    "world": "benchmarks.world",  # what one peer's heartbeat costs a coordinator's view
    "swarm": "benchmarks.swarm",  # what a real node spends on N peers' heartbeats
    "instructions": "benchmarks.instructions",  # callgrind counts per hub process (valgrind)
    "report": "benchmarks.report",  # all of the above, written up with plots
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print("usage: python -m benchmarks {%s} [ARGS...]" % ",".join(sorted(BENCHMARKS)),
              file=sys.stderr)
        return 2
    importlib.import_module(BENCHMARKS[argv[0]]).main(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
