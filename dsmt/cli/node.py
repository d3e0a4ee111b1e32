"""``dsmt node``: run one sliver — the actor tree of DESIGN.md §5 — until SIGTERM.

Usage::

    dsmt node --config node.toml

Creates the workspace, starts the hub (``<workspace>/run``, mode 0700), the
bridge to PsEPR (when ``[bridge]`` is configured), the container manager, the
deployment agent, the application supervisor and the coordinator, in that
order (root strategy ``rest_for_one``), installs and runs the plan of the
config if it names one, and serves until SIGTERM or SIGINT, which stop the
tree in reverse order. Exit status: 0 after an orderly stop, 1 when the root
supervisor gave up, 3 when the shutdown overran its deadline
(see :mod:`dsmt.node`). The systemd unit in ``conf/`` restarts it on failure.
"""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The node's TOML configuration.")
@click.option("--deadline", default=20.0, show_default=True,
              help="Seconds an orderly shutdown may take before the process exits anyway.")
def command(config_path: str, deadline: float) -> None:
    """Run one sliver's actor tree until SIGTERM/SIGINT."""
    from actors import nodeconf, sliver
    from actors.workspace import Workspace
    from dsmt.node import Node

    config = nodeconf.load(config_path)
    Workspace.create(config.workspace)
    node = Node(config.sliver, config.layout, config.run_dir, sliver.children(config))
    sys.exit(node.run(deadline=deadline))
