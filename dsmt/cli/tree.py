"""``dsmt tree``: the actor tree of each sliver, with states and restart counters.

Usage::

    dsmt tree [SLIVER] [--json] [--wait S] [--timeout S] [--key-file F]
              [--router HOST:PORT --password-file F --slice NAME]

The tree comes from the slivers' status events (every actor publishes one;
its ``path`` places it), collected for ``--wait`` seconds after a resync.
The restart counters come from the supervisors: every actor with children
(the sliver's root included) gets a signed ``inspect``, all sent at once;
each child record there gives its restarts, its supervisor's restarts left
in the intensity window, and the time of a pending restart (backoff).
Printed as a rich tree, one per sliver.

``--json`` prints a list with one root node per sliver; every node is::

    {"sliver": "s1", "path": "/s1/app/demo-app/0", "component": "app.demo-app.0",
     "state": "stopped",            # the newest status event's state (null if none seen)
     "reason": "...",               # its reason, or null
     "record": "backoff",           # the supervisor's record of it, or null
     "restarts": 2,                 # restarts by its supervisor so far, or null
     "restarts_in_window": 3,       # restarts in the supervisor's window (intensity - left)
     "restarts_left": 2,            # restarts its supervisor may still do in the window
     "next_backoff": 1764072002.0,  # UNIX time of the pending restart, or null
     "next_backoff_in": 0.8,        # seconds from now until then, or null
     "children": [...]}

Counters are null where no supervisor answered within ``--timeout`` (the root
itself has no supervisor in the tree: the OS restarts the node).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import click

from dsmt.cli import _command, _slice
from dsmt.errors import DsmtError

COUNTERS = ("record", "restarts", "restarts_in_window", "restarts_left", "next_backoff",
            "next_backoff_in")


@click.command()
@click.argument("sliver", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the trees as JSON.")
@click.option("--wait", default=1.5, show_default=True, help="Seconds to collect status events.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for inspects.")
@_command.key_option
@_slice.options
def command(sliver, as_json, wait, timeout, key_file, router, service, password_file,
            slice_) -> None:
    """Show each sliver's actor tree: states, restarts, restarts left, next backoff."""
    key = _command.load_key(key_file)
    with _command.view(router, service, password_file, slice_) as view:
        threading.Event().wait(wait)  # the time the user gave the slivers to answer
        nodes = _nodes(view, sliver)
        _supervision(view, key, nodes, timeout)
    roots = _assemble(nodes)
    if as_json:
        click.echo(json.dumps(roots, indent=1))
        return
    from rich.console import Console

    console = Console()
    for root in roots:
        console.print(_render(root))


def _nodes(view, only: str | None) -> dict[tuple[str, str], dict[str, Any]]:
    nodes: dict[tuple[str, str], dict[str, Any]] = {}
    for row in view.rows():
        if only is not None and row["sliver"] != only:
            continue
        payload = view.status(row["sliver"], row["component"]) or {}
        path = payload.get("path") or _path(row["sliver"], row["component"])
        nodes[(row["sliver"], path)] = _node(row["sliver"], path, row["component"],
                                             row["state"], row["reason"])
    if not nodes:
        seen = sorted({r["sliver"] for r in view.rows()})
        raise DsmtError(f"no sliver {only!r} in slice {view.layout.slice} (seen: "
                        f"{', '.join(seen) or 'none'})" if only else
                        f"no status from any sliver of slice {view.layout.slice}")
    return nodes


def _node(sliver, path, component, state=None, reason=None) -> dict[str, Any]:
    return {"sliver": sliver, "path": path, "component": component, "state": state,
            "reason": reason, **dict.fromkeys(COUNTERS), "children": []}


def _path(sliver: str, component: str) -> str:
    return f"/{sliver}" if component == "sliver" else f"/{sliver}/" + component.replace(".", "/")


def _supervision(view, key: bytes, nodes, timeout: float) -> None:
    """Inspect every supervisor (all at once) and copy its child records into ``nodes``."""
    from gateways.commands import CommandRequest

    parents = sorted({(s, p.rpartition("/")[0]) for s, p in nodes if p.count("/") > 1})
    requests = []
    try:
        for sliver, path in parents:
            request = CommandRequest(view.client, key, view.layout, sliver, "inspect",
                                     {"path": path})
            requests.append(request)
            request.lease(timeout)
        for request in requests:
            request.send()
        deadline = time.monotonic() + timeout
        now = time.time()
        for (sliver, _), request in zip(parents, requests):
            try:
                reply = request.reply(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                continue
            if reply.get("outcome") != "done" or not isinstance(reply.get("result"), dict):
                continue
            _merge(nodes, sliver, reply["result"], now)
    except TimeoutError as exc:
        raise DsmtError(f"tree: {exc}") from None
    finally:
        for request in requests:
            request.close()


def _merge(nodes, sliver: str, snapshot: dict[str, Any], now: float) -> None:
    intensity = (snapshot.get("config") or {}).get("intensity")
    for child in snapshot.get("children") or ():
        path = child.get("path")
        if not isinstance(path, str):
            continue
        node = nodes.setdefault((sliver, path), _node(
            sliver, path, ".".join(path.strip("/").split("/")[1:])))
        left = child.get("restarts_left")
        when = child.get("next_attempt")
        node.update(record=child.get("state"), restarts=child.get("restarts"),
                    restarts_left=left,
                    restarts_in_window=(intensity - left if isinstance(intensity, int)
                                        and isinstance(left, int) else None),
                    next_backoff=when,
                    next_backoff_in=None if when is None else round(max(0.0, when - now), 3))


def _assemble(nodes) -> list[dict[str, Any]]:
    roots = []
    for (sliver, path), node in sorted(nodes.items()):
        parent = nodes.get((sliver, path.rpartition("/")[0]))
        (parent["children"] if parent is not None else roots).append(node)
    return roots


def _render(node: dict[str, Any], tree=None):
    from rich.tree import Tree

    label = f"[bold]{node['path'].rsplit('/', 1)[-1] if tree is not None else node['path']}[/]"
    label += f"  {node['state'] or '?'}"
    if node["record"] and node["record"] != node["state"]:
        label += f" ({node['record']})"
    if node["restarts"] is not None:
        label += (f"  restarts {node['restarts']}, {node['restarts_in_window']} in window, "
                  f"{node['restarts_left']} left")
    if node["next_backoff_in"] is not None:
        label += f"  [yellow]next try in {node['next_backoff_in']:.1f}s[/]"
    if node["reason"]:
        label += f"  [dim]{node['reason']}[/]"
    branch = Tree(label) if tree is None else tree.add(label)
    for child in node["children"]:
        _render(child, branch)
    return branch
