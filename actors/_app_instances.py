"""What a service's instances are doing: ``AppSupervisor.instances()`` and readiness.

Private to :class:`actors.app.AppSupervisor`. :func:`instance_rows` asks the
service's supervisor (which children it has, their restarts) and each process
actor (pid, state, health) with a bounded wait each; an actor that is gone or
does not answer in time leaves its row as far as it got. Runs in the app's
thread; none of the actors asked ever waits on the app.

Readiness is not asked but heard: the app observes the path of every
instance it starts (:func:`observe_instances`; observers are kept per path,
so a restarted process actor is heard too), and each
:class:`dsmt.actor.StateChanged` from one says whether it is ``ready``
(:mod:`actors.process.machine`); :func:`readiness` reads it.
"""

from __future__ import annotations

from typing import Any

import pykka

from dsmt.actor import StateChanged
from dsmt.registry import Registry


def observe_instances(registry: Registry, app_path: str, ref: Any, service: str,
                      count: int) -> None:
    """Have ``ref`` (the app) told every move of the first ``count`` instances of ``service``."""
    for index in range(count):
        registry.observe(f"{app_path}/{service}/{index}", ref)


def readiness(app_path: str, message: StateChanged) -> tuple[str, int, bool] | None:
    """``(service, instance, ready)`` from an instance's StateChanged; None if not one."""
    service, _, index = message.path[len(app_path) + 1:].rpartition("/")
    if not message.path.startswith(app_path + "/") or not service or not index.isdigit():
        return None
    return service, int(index), bool(message.detail.get("ready"))


def instance_rows(ports: list[int], ref: Any, timeout: float) -> list[dict[str, Any]]:
    """One row per port (instance, port, pid, state, restarts…), filled from ``ref`` if alive."""
    rows = {i: {"instance": i, "port": port, "pid": None, "state": None, "restarts": 0,
                "process_restarts": 0, "healthy": None, "adopted": False}
            for i, port in enumerate(ports)}
    if ref is None:
        return list(rows.values())
    try:
        proxy = ref.proxy()
        children = {c.id: c for c in proxy.which_children().get(timeout=timeout)}
        records = {c["id"]: c for c in proxy.inspect_children().get(timeout=timeout)}
    except (pykka.ActorDeadError, pykka.Timeout):
        return list(rows.values())
    for i, row in rows.items():
        info, rec = children.get(i), records.get(i)
        if rec is not None:
            row.update(state=rec["state"], restarts=rec["restarts"])
        if info is None or info.ref is None:
            continue
        try:
            snap = info.ref.proxy().snapshot().get(timeout=timeout)
        except (pykka.ActorDeadError, pykka.Timeout):
            continue
        row.update(pid=snap["pid"], state=snap["state"], process_restarts=snap["restarts"],
                   healthy=snap["healthy"], adopted=snap["adopted"])
    return list(rows.values())
