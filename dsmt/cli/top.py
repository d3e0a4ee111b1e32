"""``dsmt top``: a live view of every application instance of the slice.

Usage::

    dsmt top [--once] [--json] [--wait S] [--interval S]
             [--router HOST:PORT --password-file F --slice NAME]

A PsEPR client on the slice's router (:class:`gateways.view.SliceView`, plus
a lease on the coordinators' heartbeats) keeps the newest status of every
instance (components ``app.<service>.<n>``), the newest load of every
sliver and its newest resource report; a rich Live table (slivers ×
instances: state, pid, cpu, rss, restarts, load, since) is redrawn every
``--interval`` seconds until Ctrl-C. ``--once`` collects for ``--wait``
seconds, prints one frame and exits; with ``--json`` that frame is a list of
rows::

    [{"sliver": "s1", "service": "demo-app", "instance": 0, "state": "running",
      "pid": 4242, "cpu_percent": 0.4, "rss": 24117248, "restarts": 0, "load": 0.12,
      "since": 1764072000.1, "reason": "up for 3.0s", "sliver_state": "alive",
      "quarantined": null}, ...]

``quarantined`` is why the sliver's heartbeat says it is out of placement
(``deselected``, or its failed installs), else null; the table marks it.
``pid``, ``restarts`` and ``load`` are null when not (yet) reported;
``load`` is the sliver's 1-minute load average per CPU. ``cpu_percent`` (of
one CPU, over the report's interval) and ``rss`` (bytes) are the instance's
whole process group as the sliver's container manager last measured it
(every 10 s on a node); null until a report names that pid. ``sliver_state``
is the sliver's liveness from its heartbeats (``alive``, ``suspected``,
``dead``; see :meth:`gateways.view.SliceView.slivers`): an instance of a
dead sliver keeps its last reported state and is marked. A suspected or
dead sliver with no instance seen gets one row with ``service`` and
``instance`` null and ``state`` its liveness.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import click

from dsmt.cli import _command, _slice


@click.command()
@click.option("--once", is_flag=True, help="Print one frame and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print the rows as JSON.")
@click.option("--wait", default=1.5, show_default=True,
              help="With --once: seconds to collect events first.")
@click.option("--interval", default=0.5, show_default=True, help="Seconds between redraws.")
@_slice.options
def command(once, as_json, wait, interval, router, service, password_file, slice_) -> None:
    """Watch the slice's instances live: state, pid, cpu, rss, restarts, load per sliver."""
    from rich.console import Console
    from rich.live import Live

    with _command.view(router, service, password_file, slice_) as view:
        if once:
            threading.Event().wait(wait)  # the time the user gave the slivers to answer
            frame = rows(view)
            if as_json:
                click.echo(json.dumps(frame, indent=1))
            else:
                Console().print(table(frame, view.layout.slice))
            return
        with Live(table(rows(view), view.layout.slice),
                  refresh_per_second=max(1.0, 1 / interval)) as live:
            try:
                while True:
                    view.wait(lambda v: False, interval)
                    live.update(table(rows(view), view.layout.slice))
            except KeyboardInterrupt:
                pass


def rows(view) -> list[dict[str, Any]]:
    """One row per application instance (and per silent sliver without one), ordered."""
    found = []
    liveness = {s["sliver"]: s for s in view.slivers()}

    def load(sliver: str) -> Any:
        return ((view.beat(sliver) or {}).get("load") or {}).get("load")

    def quarantined(sliver: str) -> Any:
        return (view.beat(sliver) or {}).get("quarantined")

    def usage(sliver: str, service: str, instance: int, pid: Any) -> dict[str, Any]:
        for p in (view.resources(sliver) or {}).get("processes") or ():
            if (isinstance(p, dict) and p.get("alive") and pid is not None
                    and (p.get("service"), p.get("instance"), p.get("pid")) ==
                    (service, str(instance), pid)):
                return {"cpu_percent": p.get("cpu_percent"), "rss": p.get("rss")}
        return {"cpu_percent": None, "rss": None}

    for row in view.rows():
        parts = row["component"].split(".")
        if len(parts) != 3 or parts[0] != "app" or not parts[2].isdigit():
            continue
        payload = view.status(row["sliver"], row["component"]) or {}
        service, instance, pid = parts[1], int(parts[2]), payload.get("pid")
        found.append({"sliver": row["sliver"], "service": service, "instance": instance,
                      "state": row["state"], "pid": pid,
                      **usage(row["sliver"], service, instance, pid),
                      "restarts": payload.get("restarts"), "load": load(row["sliver"]),
                      "since": row["since"], "reason": row["reason"],
                      "sliver_state": liveness.get(row["sliver"], {}).get("state"),
                      "quarantined": quarantined(row["sliver"])})
    shown = {r["sliver"] for r in found}
    for name, s in liveness.items():
        if name not in shown and s["state"] in ("suspected", "dead"):
            found.append({"sliver": name, "service": None, "instance": None,
                          "state": s["state"], "pid": None, "cpu_percent": None, "rss": None,
                          "restarts": None, "load": None,
                          "since": s["last_beat"], "reason": s["reason"],
                          "sliver_state": s["state"], "quarantined": quarantined(name)})
    return sorted(found, key=lambda r: (r["sliver"], r["service"] or "", r["instance"] or 0))


def table(frame: list[dict[str, Any]], slice_name: str):
    from rich.table import Table

    t = Table(title=f"slice {slice_name} — {time.strftime('%H:%M:%S')}")
    for column in ("sliver", "load", "instance", "state", "pid", "cpu%", "rss", "restarts",
                   "since", "reason"):
        t.add_column(column)
    now = time.time()
    for r in frame:
        down = r.get("sliver_state") in ("suspected", "dead")
        out = r.get("quarantined")
        t.add_row(f"[red]{r['sliver']} ({r['sliver_state']})[/]" if down else
                  f"[yellow]{r['sliver']} ({out})[/]" if out else r["sliver"],
                  "" if r["load"] is None else f"{r['load']:.2f}",
                  "-" if r["service"] is None else f"{r['service']}.{r['instance']}",
                  str(r["state"]),
                  "" if r["pid"] is None else str(r["pid"]),
                  "" if r["cpu_percent"] is None else f"{r['cpu_percent']:.1f}",
                  "" if r["rss"] is None else f"{r['rss'] / 2**20:.1f}M",
                  "" if r["restarts"] is None else str(r["restarts"]),
                  "never" if r["since"] is None else f"{now - r['since']:.0f}s ago",
                  r["reason"] or "")
    return t
