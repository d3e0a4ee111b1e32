"""``dsmt stop``: stop the actor at SLIVER:PATH (its supervisor terminates it).

Usage::

    dsmt stop SLIVER:PATH [--timeout S] [--key-file F]
                 [--router HOST:PORT --password-file F --slice NAME]

Sends the signed ``stop`` command (:mod:`actors.commander`) to SLIVER
with ``{"path": PATH}``: the commander has the supervisor of the actor at
PATH terminate it (``terminate_child``; it stays stopped). Prints the outcome::

    stop /s1/app-monitor on s1: done

Exits 2 with one line if the command is rejected (bad key, stale, ...),
fails (no actor at PATH, the commander itself, ...) or gets no reply.
"""

from __future__ import annotations

from dsmt.cli import _command

command = _command.signed_command(
    "stop", "Stop the actor at SLIVER:PATH (its supervisor terminates it).")
