"""``dsmt select``: take a deselected sliver back into the slice.

Usage::

    dsmt select SLIVER [--timeout S] [--key-file F]
                [--router HOST:PORT --password-file F --slice NAME]

Sends the signed ``select`` command (:mod:`actors.commander`) to SLIVER: its
container manager starts the application supervisor again, prepares the
workspace and says ``installed``; its coordinator leaves quarantine, so
placement counts the sliver again and it installs and runs its share.
Selecting a sliver that is not deselected changes nothing, except that it
ends a drain still under way (``dsmt deselect`` then fails: cancelled).
Prints::

    select s2: done (installed)

Exits 2 with one line if the command is rejected, fails or gets no reply.
"""

from __future__ import annotations

from dsmt.cli import _command

command = _command.signed_command(
    "select", "Take a deselected SLIVER back into the slice.", to_sliver=True,
    timeout=90.0)
