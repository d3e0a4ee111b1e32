"""The chaos schedule: which fault comes next, a pure function of the seed.

Fault kinds, what they do, and the bound within which the slice must be back
to exactly ``replicas`` healthy instances (measured from the moment given):

===============  ==========================================  ==============  =====
kind             fault (then healed after ``hold`` s)        measured from   bound
===============  ==========================================  ==============  =====
app_kill         kill -9 one sliver's application processes  the kill         10 s
node_kill        kill -9 one node agent (apps live on),      its restart      20 s
                 restarted after ``hold``
sliver_kill      kill -9 a node agent and its apps           the kill         10 s
sliver_return    ... restarted ``hold`` s after re-placement its restart      20 s
router_kill      kill -9 the router, restarted after hold    its restart      20 s
partition_one    one sliver's link cut                       the heal         25 s
partition_split  two slivers cut off from the router and     the heal         25 s
                 the other three
latency          200 ms each way on one sliver's link (or    the heal         20 s
                 every sliver's, one time in three)
===============  ==========================================  ==============  =====

The first seven faults are the seven kinds in a seeded order (so every kind
occurs in every run); after that kinds are drawn with :data:`WEIGHTS`. A
fault's target is a number (``pick``) resolved at injection time against
the sorted candidates (e.g. the slivers running an instance), so the same
seed gives the same schedule whatever the run's timing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator

KINDS = ("app_kill", "node_kill", "sliver_kill", "router_kill", "partition_one",
         "partition_split", "latency")
WEIGHTS = {"app_kill": 4, "node_kill": 2, "sliver_kill": 2, "router_kill": 1,
           "partition_one": 2, "partition_split": 2, "latency": 3}
HOLD = {"app_kill": (0.0, 0.0), "node_kill": (0.5, 3.0), "sliver_kill": (0.0, 1.0),
        "router_kill": (0.3, 2.0), "partition_one": (1.5, 6.0),
        "partition_split": (1.5, 6.0), "latency": (1.0, 4.0)}
BOUND = {"app_kill": 10.0, "node_kill": 20.0, "sliver_kill": 10.0, "sliver_return": 20.0,
         "router_kill": 20.0, "partition_one": 25.0, "partition_split": 25.0,
         "latency": 20.0}
LATENCY = 0.2


@dataclass(frozen=True)
class Fault:
    index: int
    kind: str
    pick: int     # which target, resolved against the sorted candidates at injection
    hold: float   # seconds the fault lasts before it is healed

    def choose(self, candidates: list[str]) -> str:
        ordered = sorted(candidates)
        return ordered[self.pick % len(ordered)]


def schedule(seed: int) -> Iterator[Fault]:
    """The endless fault sequence of ``seed`` (see the module docstring)."""
    rng = random.Random(seed)
    first = list(KINDS)
    rng.shuffle(first)
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    index = 0
    while True:
        kind = first[index] if index < len(first) else rng.choices(kinds, weights)[0]
        low, high = HOLD[kind]
        yield Fault(index, kind, rng.randrange(1 << 30), round(rng.uniform(low, high), 2))
        index += 1


def pairs(slivers: list[str]) -> list[tuple[str, str]]:
    """The two-sliver minorities of a split, in a fixed order."""
    names = sorted(slivers)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
