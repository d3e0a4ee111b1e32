"""``dsmt restart``: restart the actor at SLIVER:PATH through its supervisor.

Usage::

    dsmt restart SLIVER:PATH [--timeout S] [--key-file F]
                 [--router HOST:PORT --password-file F --slice NAME]

Sends the signed ``restart`` command (:mod:`actors.commander`) to SLIVER
with ``{"path": PATH}``: the commander makes the actor at PATH fail, so its
supervisor restarts it per its child spec (the reply comes before the restart).
Prints the outcome::

    restart /s1/app-monitor on s1: done

Exits 2 with one line if the command is rejected (bad key, stale, ...),
fails (no actor at PATH, the commander itself, ...) or gets no reply.
"""

from __future__ import annotations

from dsmt.cli import _command

command = _command.signed_command(
    "restart", "Restart the actor at SLIVER:PATH through its supervisor.")
