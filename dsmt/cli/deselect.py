"""``dsmt deselect``: take a sliver out of the slice (its app stopped, its workspace released).

Usage::

    dsmt deselect SLIVER [--timeout S] [--key-file F]
                  [--router HOST:PORT --password-file F --slice NAME]

Sends the signed ``deselect`` command (:mod:`actors.commander`) to SLIVER:
its container manager has the application stopped, releases the workspace
(packages, versions, links; the logs stay) and says ``deselected``; its
coordinator then announces itself quarantined, so every sliver's placement
gives its share to the others. No process starts there until ``dsmt select
SLIVER`` (or a restart of its node). Prints the outcome::

    deselect s2: done (deselected)

Exits 2 with one line if the command is rejected, fails (e.g. the app would
not stop: the container is then ``failed`` and the workspace kept) or gets
no reply within ``--timeout``.
"""

from __future__ import annotations

from dsmt.cli import _command

command = _command.signed_command(
    "deselect", "Take SLIVER out of the slice: stop its app, release its workspace.",
    to_sliver=True, timeout=90.0)
