"""A node process for tests: ``python -m tests.dsmt.node_main RUN_DIR SLIVER [crash]``.

Runs :class:`dsmt.node.Node` with two test workers as root children and
exits with the node's exit code. With ``crash``, the second worker crashes
in ``on_start`` of every restart after the first, so the root gives up.
"""

from __future__ import annotations

import logging
import sys

from dsmt.channels import Layout
from dsmt.childspec import ChildSpec
from dsmt.node import Node

from tests.dsmt.conftest import Worker


class CrashAfterStart(Worker):
    """Starts once, then its first message makes it crash, and every restart fails."""

    started = 0

    def on_start(self) -> None:
        type(self).started += 1
        if type(self).started > 1:
            raise RuntimeError("cannot start again")
        self.actor_ref.tell("crash")


def main() -> int:
    logging.basicConfig(level=logging.INFO)
    run_dir, sliver, *rest = sys.argv[1:]
    second = CrashAfterStart if rest == ["crash"] else Worker
    children = [ChildSpec("first", Worker), ChildSpec("second", second)]
    node = Node(sliver, Layout("test"), run_dir, children, intensity=1, period=5.0)
    print("ready", flush=True)
    return node.run(deadline=5.0)


if __name__ == "__main__":
    sys.exit(main())
