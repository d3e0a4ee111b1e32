"""The benchmark report's text and plots (see :mod:`benchmarks.report`).

Every table puts a DSMT figure next to the baseline measured in the same
run, with medians and the spread over rounds. A figure a benchmark did not
print (an older or failed run) shows as ``?``; nothing here invents one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MISSING = "?"


def get(data: Any, path: str, default: Any = None) -> Any:
    """``data["a"]["b"]`` for ``path`` "a.b", or ``default`` when any step is missing."""
    for key in path.split("."):
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def num(value: Any, digits: int = 0) -> str:
    if not isinstance(value, (int, float)):
        return MISSING
    return f"{value:,.{digits}f}"


def spread(summary: Any, digits: int = 0) -> str:
    """``median (min–max)`` of a summary dict."""
    if not isinstance(summary, dict) or "median" not in summary:
        return MISSING
    return (f"{num(summary['median'], digits)} "
            f"({num(summary.get('min'), digits)}–{num(summary.get('max'), digits)})")


def verdict(ok: bool | None) -> str:
    return MISSING if ok is None else ("met" if ok else "**not met**")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- sections

def hub(r: dict) -> str:
    ratio = get(r, "ratio_dsmt_to_baseline.median")
    target = r.get("target_ratio", 0.8)
    rows = [
        ["events/s publish → hub → subscriber (3 processes)", spread(get(r, "dsmt.events_per_s")),
         spread(get(r, "baseline.events_per_s")) + " raw pyzmq frames, C XSUB/XPUB proxy",
         spread(get(r, "ratio_dsmt_to_baseline"), 3),
         f"ratio ≥ {target}: {verdict(None if ratio is None else ratio >= target)}"],
        ["events lost", num(get(r, "dsmt.lost_total")), num(get(r, "baseline.lost_total")), "",
         "0"],
    ]
    if get(r, "baseline_msgpack.events_per_s") is not None:
        rows.insert(1, ["(second baseline: the same loop packing and unpacking each body "
                        "with msgpack)", "", spread(get(r, "baseline_msgpack.events_per_s")),
                        spread(get(r, "ratio_dsmt_to_baseline_msgpack"), 3), "not the target"])
    if get(r, "ratio_baseline_msgpack_to_baseline") is not None:
        rows.insert(2, ["(ceiling: that msgpack loop against the raw loop, what packing and "
                        "unpacking alone leave)", "", "",
                        spread(get(r, "ratio_baseline_msgpack_to_baseline"), 3), ""])
    for part in ("publisher", "middle", "subscriber"):
        rows.append([f"CPU µs per event, {part}",
                     num(get(r, f"dsmt.cpu_us_per_event_median.{part}"), 1),
                     num(get(r, f"baseline.cpu_us_per_event_median.{part}"), 1), "", ""])
    rows += [
        ["ask() round trip p50 / p99 µs",
         f"{num(get(r, 'actors.dsmt.ask_us.p50'), 1)} / {num(get(r, 'actors.dsmt.ask_us.p99'), 1)}",
         f"{num(get(r, 'actors.pykka.ask_us.p50'), 1)} / "
         f"{num(get(r, 'actors.pykka.ask_us.p99'), 1)} bare pykka",
         num(get(r, "actors.ask_p50_ratio_dsmt_to_pykka"), 2), ""],
        ["memory per idle actor KiB", num(get(r, "actors.dsmt.per_actor_kib"), 1),
         num(get(r, "actors.pykka.per_actor_kib"), 1) + " bare pykka", "", ""],
        ["memory per subscriber KiB", num(get(r, "memory.bus_subscribers.per_socket_kib"), 1),
         num(get(r, "memory.raw_sub_sockets.per_socket_kib"), 1) + " raw SUB socket", "", ""],
    ]
    head = (f"{num(r.get('rounds'))} rounds of {num(r.get('events_per_round'))} events, "
            f"{num(r.get('body_bytes'))}-byte bodies, alternating DSMT and baseline.\n\n")
    return head + table(["figure", "DSMT", "baseline (same run)", "ratio", "target"], rows)


def router(r: dict) -> str:
    rate = get(r, "throughput.events_per_s.median")
    p99 = get(r, "latency.p99_ms.median")
    p99t = get(r, "latency_at_half_target.p99_ms.median")

    def relay(figure: str, what: str = " bare asyncio relay") -> str:
        value = get(r, f"relay_baseline.{figure}")
        return "" if value is None else spread(value, 2) + what

    def ratio(figure: str) -> str:
        mine, base = get(r, f"{figure}.median"), get(r, f"relay_baseline.{figure}.median")
        return "" if mine is None or not base else num(mine / base, 2)

    rows = [
        ["events/s client → router → client", spread(get(r, "throughput.events_per_s")),
         spread(get(r, "lxml_baseline.events_per_s")) + " lxml parse+serialize",
         spread(get(r, "throughput.ratio_to_lxml_baseline"), 3),
         f"≥ 20,000/s: {verdict(None if rate is None else rate >= 20000)}"],
        ["router CPU µs per event", spread(get(r, "throughput.router_cpu_us_per_event"), 1),
         "", "", ""],
        ["events lost", num(get(r, "throughput.lost_total")), "", "", "0"],
        [f"latency p50 ms at {num(get(r, 'latency.rate_events_per_s'))} events/s (half rate)",
         spread(get(r, "latency.p50_ms"), 2), relay("latency.p50_ms"),
         ratio("latency.p50_ms"), ""],
        ["latency p99 ms at half rate", spread(get(r, "latency.p99_ms"), 2),
         relay("latency.p99_ms"), ratio("latency.p99_ms"),
         f"< 10 ms: {verdict(None if p99 is None else p99 < 10)}"],
        ["latency p99 ms at half rate, to the subscriber's socket",
         spread(get(r, "latency.at_socket.p99_ms"), 2), relay("latency.at_socket.p99_ms"),
         ratio("latency.at_socket.p99_ms"), ""],
        [f"latency p50 / p99 ms at "
         f"{num(get(r, 'latency_at_half_target.rate_events_per_s'))} events/s (half the target)",
         f"{spread(get(r, 'latency_at_half_target.p50_ms'), 2)} / "
         f"{spread(get(r, 'latency_at_half_target.p99_ms'), 2)}",
         f"{relay('latency_at_half_target.p50_ms', '')} / "
         f"{relay('latency_at_half_target.p99_ms')}", ratio("latency_at_half_target.p99_ms"),
         f"< 10 ms: {verdict(None if p99t is None else p99t < 10)}"],
    ]
    if r.get("under_load"):
        p99l = get(r, "under_load.latency_at_half_target.p99_ms.median")
        base = get(r, "under_load.relay_baseline.p99_ms.median")
        others = get(r, "under_load.latency_at_half_target.contention.others_cpu_cores.median")
        rows.append([
            f"latency p50 / p99 ms at "
            f"{num(get(r, 'under_load.latency_at_half_target.rate_events_per_s'))} events/s "
            f"with a neighbour spinning {num(get(r, 'under_load.background_share'), 2)} "
            f"of a core (measured: others kept {num(others, 2)} cores busy)",
            f"{spread(get(r, 'under_load.latency_at_half_target.p50_ms'), 2)} / "
            f"{spread(get(r, 'under_load.latency_at_half_target.p99_ms'), 2)}",
            f"{spread(get(r, 'under_load.relay_baseline.p50_ms'), 2)} / "
            f"{spread(get(r, 'under_load.relay_baseline.p99_ms'), 2)} bare asyncio relay",
            "" if p99l is None or not base else num(p99l / base, 2),
            f"< 10 ms: {verdict(None if p99l is None else p99l < 10)}"])
    for part in ("throughput", "latency", "latency_at_half_target"):
        share = f"{part}.contention"
        rows.append([f"cores busy during {part.replace('_', ' ')} rounds: "
                     "router / load generators / others",
                     " / ".join(num(get(r, f"{share}.{who}_cpu_cores.median"), 2)
                                for who in ("router", "loadgen", "others")),
                     "", "", f"router waited for a CPU "
                     f"{num(get(r, f'{share}.router_wait_cores.median'), 2)} s/s"])
    rows += [
        [f"RSS MB idle → {num(get(r, 'memory.clients'))} clients × "
         f"{num(get(r, 'memory.leases_per_client'))} leases",
         f"{num(get(r, 'memory.rss_idle_mb'), 1)} → {num(get(r, 'memory.rss_loaded_mb'), 1)}",
         "", "", f"{num(get(r, 'memory.kb_per_client'), 1)} KB per client"],
    ]
    head = (f"{num(r.get('rounds'))} rounds, {num(r.get('stanza_bytes'))}-byte stanzas "
            f"({num(r.get('event_bytes'))}-byte events), router in its own process; the "
            "latency baseline is a bare asyncio relay forwarding the same bytes unparsed, "
            "in its own process, in the same rounds (ratio: router / baseline).\n\n")
    return head + table(["figure", "router", "baseline (same run)", "ratio", "target"], rows)


def restart(r: dict) -> str:
    rows = []
    results = r.get("results", {})
    for name, res in results.items():
        if "error" in res:
            rows.append([name, f"failed: {res['error']}", "", ""])
            continue
        speed = get(r, f"speedup_vs_dsmt.{name}", {})
        rows.append([
            name,
            f"{num(get(res, 'to_new_pid_ms.median'), 1)} "
            f"(p90 {num(get(res, 'to_new_pid_ms.p90'), 1)}, "
            f"{num(get(res, 'to_new_pid_ms.min'), 1)}–{num(get(res, 'to_new_pid_ms.max'), 1)})",
            f"{num(get(res, 'to_accepting_ms.median'), 1)} "
            f"({num(get(res, 'to_accepting_ms.min'), 1)}–"
            f"{num(get(res, 'to_accepting_ms.max'), 1)})",
            "" if name.startswith("dsmt") else
            f"{num(speed.get('to_new_pid_ms'), 0)}× / {num(speed.get('to_accepting_ms'), 0)}×",
        ])
    targets = r.get("targets", {})
    met = ", ".join(f"{k}: {verdict(v)}" for k, v in targets.items()) or MISSING
    head = (f"{num(r.get('kills_per_tool'))} kills -9 per tool of the same TCP server, measured "
            "from outside; milliseconds.\n\n")
    return head + table(["tool", "kill → new pid ms, median (p90, min–max)",
                         "kill → accepting ms", "DSMT faster (new pid / accepting)"], rows) \
        + f"\nTargets: {met}.\n"


def slice_(r: dict) -> str:
    floor = get(r, "baseline.detection_floor_s")
    rows = []
    for res in r.get("results", []):
        n = res.get("slivers")
        if "error" in res:
            rows.append([num(n), f"failed: {res['error']}", "", "", "", "", ""])
            continue
        rows.append([
            num(n), num(get(res, "deploy_s.all_healthy"), 2),
            spread(get(res, "failover_s.detected_and_placed"), 2),
            spread(get(res, "failover_s.all_healthy"), 2),
            num(floor, 1), spread(get(res, "bare_restart_s"), 3),
            spread(get(res, "memory.node_rss_mib"), 1),
        ])
    out = (f"Heartbeat {num(r.get('heartbeat_s'), 1)} s, a peer suspected after "
           f"k = {num(r.get('k'))} missed beats, {num(r.get('replicas'))} replicas; seconds.\n\n")
    out += table(["slivers", "deploy: 3 instances healthy",
                  "fail-over: detected + placed, median (min–max)",
                  "fail-over: all healthy, median (min–max)", "baseline: detection floor",
                  "baseline: bare local restart", "node RSS MiB"], rows)
    for key, growth in (r.get("growth") or {}).items():
        out += "\nGrowth " + key.replace("_vs_", " vs ") + " slivers: " + ", ".join(
            f"{k.replace('_', ' ')} ×{num(v, 2)}" for k, v in growth.items()) + ".\n"
    return out


def idle(r: dict) -> str:
    rows = []
    for name, res in (r.get("one_program") or {}).items():
        rows.append([f"{name} supervising one program", spread(get(res, "cpu_ms_per_s"), 2),
                     spread(get(res, "wakeups_per_s"), 1), num(res.get("rss_mb"), 1), ""])
    for n, res in (r.get("slices") or {}).items():
        rows.append([f"one node of a {n}-sliver slice (`dsmt up`)",
                     spread(get(res, "node_cpu_ms_per_s"), 2),
                     spread(get(res, "node_wakeups_per_s"), 1), num(res.get("node_rss_mb"), 1),
                     f"{spread(get(res, 'hub_events_per_s'), 1)} events/s on its hub; "
                     f"router {spread(get(res, 'router_cpu_ms_per_s'), 2)} ms/s"])
    out = (f"Nothing asked of anything, {num(r.get('rounds'))} rounds of "
           f"{num(r.get('seconds'))} s; event loop {r.get('event_loop', MISSING)}. CPU is "
           "milliseconds per second of every thread of the process; wake-ups are voluntary "
           "context switches per second.\n\n")
    out += table(["what runs", "CPU ms/s, median (min–max)", "wake-ups/s", "RSS MB", ""], rows)
    if "node_cpu_ms_per_s_per_peer" in r:
        out += ("\nFrom the smallest slice to the largest, a node's CPU grows by "
                f"{num(r['node_cpu_ms_per_s_per_peer'], 2)} ms/s per added peer (every node "
                "reads every peer's heartbeats and statuses).\n")
    return out


SECTIONS = {
    "hub": ("Local hub (issue 2)", hub),
    "router": ("PsEPR router (issue 3)", router),
    "restart": ("Crash to restart (issue 4)", restart),
    "slice": ("Slice deploy and fail-over (issue 5)", slice_),
    "idle": ("Idle cost of a host", idle),
}


def markdown(runs: dict, plots: dict[str, str]) -> str:
    m = runs["machine"]
    out = ["# DSMT benchmark report\n"]
    if m.get("quick"):
        out.append("**Quick run (small arguments): a smoke test, not figures to quote.**\n")
    out.append(table(["machine", ""], [
        ["date (UTC)", m.get("date", MISSING)], ["CPU", f"{m.get('cpu', MISSING)}"],
        ["cores", num(m.get("cpus"))], ["memory", f"{num(m.get('memory_gib'), 1)} GiB"],
        ["kernel", m.get("kernel", MISSING)], ["Python", m.get("python", MISSING)],
        ["commit", m.get("commit", MISSING)],
        ["load average before / after",
         f"{m.get('load_avg_before', MISSING)} / {m.get('load_avg_after', MISSING)}"],
    ]))
    for name, (title, render) in SECTIONS.items():
        entry = runs["benchmarks"].get(name)
        if entry is None:
            continue
        out.append(f"\n## {title}\n")
        out.append(f"`python -m benchmarks {' '.join(entry.get('argv', [name])[1:]) or name}`"
                   .replace("benchmarks  ", "benchmarks ") + f" — {num(entry.get('seconds'))} s\n")
        if "error" in entry:
            out.append(f"\n**Failed**: {entry['error']}\n")
            if entry.get("log_tail"):
                out.append("\n```\n" + entry["log_tail"] + "\n```\n")
        if "result" in entry:
            out.append("\n" + render(entry["result"]))
        if name in plots:
            out.append(f"\n![{title}]({plots[name]})\n")
    return "\n".join(out)


# ---------------------------------------------------------------- plots

def plots(runs: dict, out: Path) -> dict[str, str]:
    """Draw the plots that say more than a table; returns {benchmark: file name}."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    made = {}
    restart_result = get(runs, "benchmarks.restart.result")
    if restart_result and _restart_plot(pyplot, restart_result, out / "restart_latency.png"):
        made["restart"] = "restart_latency.png"
    slice_result = get(runs, "benchmarks.slice.result")
    if slice_result and _slice_plot(pyplot, slice_result, out / "slice_failover.png"):
        made["slice"] = "slice_failover.png"
    return made


def _restart_plot(pyplot, r: dict, path: Path) -> bool:
    tools = [(name, res) for name, res in r.get("results", {}).items()
             if "samples_to_new_pid_ms" in res]
    if not tools:
        return False
    figure, axes = pyplot.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, title in ((axes[0], "samples_to_new_pid_ms", "kill -9 → new pid"),
                           (axes[1], "samples_to_accepting_ms", "kill -9 → accepting TCP")):
        data = [res[key] for _, res in tools]
        ax.boxplot(data, showfliers=False)
        for i, values in enumerate(data, start=1):
            ax.scatter([i] * len(values), values, s=10, alpha=0.6)
        ax.set_xticks(range(1, len(tools) + 1), [name for name, _ in tools])
        ax.set_yscale("log")
        ax.set_title(title)
        ax.grid(True, axis="y", which="both", alpha=0.3)
    axes[0].set_ylabel("milliseconds (log scale), one dot per kill")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return True


def _slice_plot(pyplot, r: dict, path: Path) -> bool:
    ok = [res for res in r.get("results", []) if "error" not in res and "failover_s" in res]
    if not ok:
        return False
    n = [res["slivers"] for res in ok]
    figure, ax = pyplot.subplots(figsize=(7, 4))
    for key, label in (("all_healthy", "replacements healthy"),
                       ("detected_and_placed", "detected + placed")):
        med = [get(res, f"failover_s.{key}.median") for res in ok]
        low = [m - get(res, f"failover_s.{key}.min") for m, res in zip(med, ok)]
        high = [get(res, f"failover_s.{key}.max") - m for m, res in zip(med, ok)]
        ax.errorbar(n, med, yerr=[low, high], marker="o", capsize=4, label=label)
    deploy = [get(res, "deploy_s.all_healthy") for res in ok]
    ax.plot(n, deploy, marker="s", linestyle="--", label="deploy of 3 instances")
    floor = get(r, "baseline.detection_floor_s")
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle=":", label=f"detection floor {floor:g} s")
    ax.set_xlabel("slivers")
    ax.set_ylabel("seconds (median, bars min–max)")
    ax.set_xticks(n)
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return True
