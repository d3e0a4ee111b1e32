"""Placement: which sliver runs how many instances of each service, computed alike everywhere.

Pure and deterministic: :func:`place` maps a plan's services and a view of
the live slivers (name → labels, plus the names quarantined) to an
:class:`Assignment`. Every coordinator of a slice computes it from the same
view, so they agree on who runs what without a leader (DESIGN.md §5), and
each one starts or stops only its own share.

How a service is placed:

1. **Eligible** slivers: live, not quarantined, matching every entry of
   ``placement.require`` and none of ``placement.exclude`` (an entry is a
   sliver name, or ``label:NAME``).
2. **Rank** them by rendezvous hashing (HRW): the score of a sliver is
   ``blake2b(f"{service}/{sliver}")``, highest first. Every service ranks
   the slice differently, so services spread across slivers.
3. **Deal** the instances round-robin over the ranking: instance ``i`` goes
   to ``ranked[i % n]``, capped at ``placement.max_per_sliver``. ``"all"``
   is one instance on every eligible sliver.

Deviation from per-instance HRW (``f"{service}/{index}/{sliver}"``), and
why: scoring each index independently stacks instances on one sliver about
half the time (3 of 5), and spreading them with a cap makes a dead sliver's
instances push others around. Dealing over one ranking spreads evenly and
moves only what must move: when a sliver leaves, no surviving sliver's count
goes down (``floor(R/n)`` and ``R mod n`` only grow as ``n`` shrinks, and the
survivors keep their relative rank), so only the departed sliver's instances
are started elsewhere. A sliver that comes back takes its instances back.

Instances are counted per sliver: the application supervisor runs local
instances ``0 .. k-1`` (see :class:`actors.messages.Assign`).

**Where a service is installed** (:func:`installs`): on the slivers with a
share, and on its *warm standbys*, the next ``standby`` slivers of the
ranking (default: as many as the instances wanted). They are the ones that
inherit a dead sliver's instances first (the ranking without it deals the
same order one place on), so a fail-over only has to start them; the
others install when a share comes to them. Deviation, and why: DESIGN.md
has every eligible sliver install; 30 slivers installing at once on a
2-core machine starved every process for seconds (heartbeats 15 s late,
measured), so at most ``2 * wanted`` slivers install a new plan at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from actors.plan import ALL, Service

LABEL = "label:"


@dataclass(frozen=True)
class Placed:
    """One service's placement: instances per sliver (only slivers with > 0), and the shortfall."""

    service: str
    wanted: int
    counts: Mapping[str, int] = field(default_factory=dict)
    eligible: tuple[str, ...] = ()

    @property
    def placed(self) -> int:
        return sum(self.counts.values())

    @property
    def short(self) -> int:
        """Instances that could not be placed (too few eligible slivers for the cap)."""
        return max(0, self.wanted - self.placed)


Assignment = dict[str, Placed]


def score(service: str, sliver: str) -> int:
    """The rendezvous score of ``sliver`` for ``service`` (higher ranks first)."""
    digest = hashlib.blake2b(f"{service}/{sliver}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def ranked(service: str, slivers: Iterable[str]) -> list[str]:
    """``slivers`` in rendezvous order for ``service`` (ties, impossible in practice, by name)."""
    return sorted(set(slivers), key=lambda s: (-score(service, s), s))


def matches(entry: str, sliver: str, labels: Iterable[str]) -> bool:
    if entry.startswith(LABEL):
        return entry[len(LABEL):] in set(labels)
    return entry == sliver


def eligible(service: Service, live: Mapping[str, Iterable[str]],
             quarantined: Iterable[str] = ()) -> list[str]:
    """The live slivers that may run ``service``, in rendezvous order."""
    barred = set(quarantined)
    rule = service.placement
    ok = [name for name, labels in live.items()
          if name not in barred
          and all(matches(e, name, labels) for e in rule.require)
          and not any(matches(e, name, labels) for e in rule.exclude)]
    return ranked(service.name, ok)


def place_service(service: Service, live: Mapping[str, Iterable[str]],
                  quarantined: Iterable[str] = (), replicas: int | None = None) -> Placed:
    """Place one service; ``replicas`` overrides the plan's (a scaling decision)."""
    order = eligible(service, live, quarantined)
    want = replicas if replicas is not None else service.replicas
    if want == ALL:
        return Placed(service.name, len(order), {s: 1 for s in order}, tuple(order))
    want = int(want)
    cap = service.placement.max_per_sliver
    counts: dict[str, int] = {}
    n = len(order)
    if n:
        for rank, sliver in enumerate(order):
            k = want // n + (1 if rank < want % n else 0)
            if cap is not None:
                k = min(k, cap)
            if k:
                counts[sliver] = k
    return Placed(service.name, want, counts, tuple(order))


def place(services: Iterable[Service], live: Mapping[str, Iterable[str]],
          quarantined: Iterable[str] = (), replicas: Mapping[str, int] | None = None,
          ) -> Assignment:
    """Place every service (see the module docstring); ``replicas``: per-service overrides."""
    replicas = replicas or {}
    return {s.name: place_service(s, live, quarantined, replicas.get(s.name))
            for s in sorted(services, key=lambda s: s.name)}


def share(assignment: Assignment, sliver: str) -> dict[str, int]:
    """How many instances of each service ``sliver`` runs (0 included)."""
    return {name: placed.counts.get(sliver, 0) for name, placed in assignment.items()}


def overshoot(assignment: Assignment, running: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Per service: instances running slice-wide (``running[sliver][service]``) above the target."""
    out = {}
    for name, placed in assignment.items():
        total = sum(counts.get(name, 0) for counts in running.values())
        out[name] = max(0, total - placed.placed)
    return out


def installs(assignment: Assignment, sliver: str, standby: int | None = None) -> list[str]:
    """The services ``sliver`` should have installed: a share, or a warm standby (see above)."""
    names = []
    for name, placed in assignment.items():
        spare = placed.wanted if standby is None else standby
        if placed.counts.get(sliver, 0) > 0 or (
                placed.wanted > 0 and sliver in placed.eligible[:placed.wanted + spare]):
            names.append(name)
    return names
