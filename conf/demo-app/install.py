#!/usr/bin/env python3
"""The demo app's install step: records how and where it was installed.

Run by DSMT in the version directory with the version's venv first on PATH.
It may run more than once (a resumed install runs it again), so it only
overwrites its one file, ``installed.json``.
"""

import json
import os
import sys
import time

with open("installed.json.tmp", "w") as f:
    json.dump({"python": sys.executable, "prefix": sys.prefix, "at": time.time(),
               "version": os.environ.get("DSMT_VERSION")}, f)
os.replace("installed.json.tmp", "installed.json")
print(f"demo-app installed for {sys.prefix}")
