"""The hub benchmark's actor figures (``actors`` in its JSON; see :mod:`benchmarks.hub`).

In a fresh process per kind: ``ask()`` round trips to one actor (p50/p99)
and the RSS growth of many idle actors, for a DSMT actor under a supervisor
and, as the baseline, a bare ``pykka.ThreadingActor``.
"""

from __future__ import annotations

import time
from typing import Any

TIMEOUT = 120.0


def measure(mp_ctx: Any, count: int, asks: int) -> dict:
    out: dict[str, Any] = {}
    for kind in ("pykka", "dsmt"):
        results = mp_ctx.Queue()
        proc = mp_ctx.Process(target=_process, args=(kind, count, asks, results))
        proc.start()
        out[kind] = results.get(timeout=TIMEOUT)
        proc.join(TIMEOUT)
    if asks:
        out["ask_p50_ratio_dsmt_to_pykka"] = round(
            out["dsmt"]["ask_us"]["p50"] / out["pykka"]["ask_us"]["p50"], 2)
    return out


def _process(kind: str, count: int, asks: int, results: Any) -> None:
    import psutil
    import pykka

    if kind == "pykka":
        class Echo(pykka.ThreadingActor):
            def on_receive(self, message: Any) -> Any:
                return message

        def start_many(n: int) -> Any:
            refs = [Echo.start() for _ in range(n)]
            return refs, lambda: [ref.stop() for ref in refs]
    else:
        from dsmt.actor import Actor, Origin
        from dsmt.channels import Layout
        from dsmt.childspec import ChildSpec
        from dsmt.context import Context
        from dsmt.registry import Registry
        from dsmt.supervisor import Supervisor
        from dsmt.testing import stop_all

        class Echo(Actor):  # type: ignore[no-redef]
            def on_receive(self, message: Any) -> Any:
                return message

        registry = Registry()
        ctx = Context(sliver="bench", layout=Layout("bench"), registry=registry)

        def start_many(n: int) -> Any:
            origin = Origin.root(ctx)
            ref = Supervisor.start(origin, [ChildSpec(f"w{i}", Echo, {}) for i in range(n)])
            if origin.lifeline.wait_started(TIMEOUT) is None:
                raise RuntimeError("supervisor did not start")
            children = ref.proxy().which_children().get(timeout=TIMEOUT)
            return [child.ref for child in children], lambda: stop_all(registry, TIMEOUT)

    out: dict[str, Any] = {}
    if asks:
        refs, stop = start_many(1)
        ask = refs[0].ask
        for i in range(min(asks, 1000)):  # warm up
            ask(i)
        samples = []
        for i in range(asks):
            t0 = time.perf_counter()
            ask(i)
            samples.append(time.perf_counter() - t0)
        stop()
        samples.sort()
        out["ask_us"] = {"p50": round(samples[len(samples) // 2] * 1e6, 1),
                         "p99": round(samples[int(len(samples) * 0.99)] * 1e6, 1),
                         "calls": asks}
    if count:
        me = psutil.Process()
        before = me.memory_info().rss
        refs, stop = start_many(count)
        if len(refs) != count:
            raise RuntimeError(f"only {len(refs)} actors started")
        grown = me.memory_info().rss - before
        stop()
        out["idle_actors"] = count
        out["rss_growth_kib"] = round(grown / 1024)
        out["per_actor_kib"] = round(grown / 1024 / count, 1)
    pykka.ActorRegistry.stop_all(block=True, timeout=TIMEOUT)
    results.put(out)
