"""Many children: 1,000 actors start and stop cleanly under one supervisor."""

from __future__ import annotations

import time

from tests.dsmt.conftest import BOUND, spec

N = 1000


def test_a_thousand_children_start_in_order_and_stop_in_reverse_within_bounded_time(
        start_tree, journal, registry):
    began = time.monotonic()
    tree = start_tree([spec(f"w{n}", journal) for n in range(N)])
    assert tree.call("count_children").active == N
    assert len(registry) == N + 1
    tree.ref.stop(block=True, timeout=BOUND * 6)
    elapsed = time.monotonic() - began
    assert journal.paths("start") == [f"/s1/w{n}" for n in range(N)]
    assert journal.paths("stop") == [f"/s1/w{n}" for n in reversed(range(N))]
    assert tree.wait_exit() == "shutdown"
    assert len(registry) == 0
    assert elapsed < 30.0


def test_a_thousand_dynamic_children_start_and_stop_cleanly(start_tree, journal, registry):
    tree = start_tree([spec("w", journal)], strategy="simple_one_for_one")
    refs = [tree.call("start_child") for _ in range(N)]
    assert all(ref.is_alive() for ref in refs)
    tree.ref.stop(block=True, timeout=BOUND * 6)
    assert len(journal.paths("stop")) == N
    assert not any(ref.is_alive() for ref in refs)
    assert len(registry) == 0
