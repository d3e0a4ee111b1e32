"""Fuzz targets for hostile input (DESIGN.md §8): one module per target.

Each target is a hypothesis property that feeds random and mutated input to
one parser and asserts that only that parser's documented error comes out
and that nothing else changes. A hypothesis example draws one input and a
seed; the test runs that input and :data:`BATCH` - 1 byte-level mutants of
it made from the seed (:func:`mutants`), because hypothesis's own cost per
example (about 1-2 ms) would otherwise dominate. CI runs :data:`CASES`
inputs per target (10,000: 2,500 examples of 4); a nightly-style run sets
``DSMT_FUZZ_EXAMPLES`` (inputs per target)::

    DSMT_FUZZ_EXAMPLES=200000 .venv/bin/python -m pytest -q tests/fuzz

Each target's time limit (:func:`fuzz_timeout`) grows with the inputs it
runs (a marker's timeout wins over ``--timeout``: a fixed one failed the
long run on time alone, the archive target past 180 s at 200,000 inputs).

The run is random (``derandomize=False``); on a failure hypothesis prints the
shrunk example (input and seed) and how to reproduce it.
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, settings

__all__ = ["CASES", "BATCH", "fuzz_settings", "fuzz_timeout", "mutants"]

DEFAULT_CASES = 10_000
CASES = int(os.environ.get("DSMT_FUZZ_EXAMPLES", str(DEFAULT_CASES)))
BATCH = 4  # inputs per hypothesis example: the drawn one and its mutants


def fuzz_settings(cases: int = CASES) -> settings:
    """The settings of a fuzz target running ``cases`` inputs: no deadline, no database."""
    return settings(max_examples=-(-cases // BATCH), deadline=None, database=None,
                    derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])


def fuzz_timeout(seconds: float) -> pytest.MarkDecorator:
    """A per-test timeout of ``seconds`` at the default inputs, scaled up with ``CASES``."""
    return pytest.mark.timeout(seconds * max(1.0, CASES / DEFAULT_CASES))


_SPICE = [b"\x00", b"\xff", b"\xc3", b"<", b">", b"&", b"'", b"\x7f\xff\xff\xff",
          b"\x80\x00\x00\x00", b"\xdd\xff\xff\xff\xff", b"..", b"/"]


def mutants(data: bytes, seed: int, n: int = BATCH - 1) -> list[bytes]:
    """``n`` byte-level mutants of ``data`` (flips, inserts, deletes, repeats, cuts)."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        b = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            op = rnd.randrange(6)
            i = rnd.randint(0, len(b))
            if op == 0 and b:
                b[min(i, len(b) - 1)] ^= 1 << rnd.randrange(8)
            elif op == 1:
                b[i:i] = rnd.choice(_SPICE)
            elif op == 2:
                del b[i:i + rnd.randint(1, 16)]
            elif op == 3:
                b[i:i] = b[i:i + rnd.randint(1, 32)] * rnd.randint(1, 8)
            elif op == 4:
                del b[i:]
            elif b:
                b[min(i, len(b) - 1)] = rnd.randrange(256)
        out.append(bytes(b))
    return out
