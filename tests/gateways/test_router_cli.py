"""``dsmt passwd``, ``dsmt router`` and ``dsmt events`` from the command line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from dsmt.cli import cli
from dsmt.event import ATTRIBUTE
from dsmt.testing import wait_for
from gateways.psepr import accounts

from .conftest import PASSWORD, ROOT, lease_count

pytestmark = pytest.mark.timeout(30)


def test_passwd_prints_a_hash_that_verifies_the_password_read_from_stdin():
    result = CliRunner().invoke(cli, ["passwd"], input="s3cret\n")
    assert result.exit_code == 0, result.output
    text = result.output.strip()
    assert text.startswith("scrypt$16384$8$1$") and accounts.verify_hash("s3cret", text)


def test_router_refuses_a_public_listener_without_tls_in_one_line(tmp_path):
    run = subprocess.run([sys.executable, "-c", "from dsmt.cli import main; main()", "router",
                          "--listen", "0.0.0.0:0"], capture_output=True, text=True, timeout=20,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "dsmt: error: <command line>: router.listen: 0.0.0.0 is not loopback: "
        "configure [router.tls] or pass --insecure"]


def test_events_prints_one_line_per_event(router, make_client, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from dsmt.cli import main; main()", "events", "--router",
         "%s:%d" % router.address, "--service", "alice", "--password-file", str(secret),
         "--count", "1", "/ev/"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_for(lambda: lease_count(router) == 1, 15, "the events command to lease")
        pub = make_client(router, "bob")
        pub.publish(pub.make("/ev/x/", ATTRIBUTE, {"field": "load", "value": "3"}))
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    line = out.strip()
    assert " /ev/x/ attribute bob " in line and '"value": "3"' in line
