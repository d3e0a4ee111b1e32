"""``python -m dsmt.cli`` is the ``dsmt`` command (for environments without the script)."""

from dsmt.cli import main

main()
