"""The package manifest dsmt-app.toml: parsed once, every mistake named by file and key."""

from __future__ import annotations

import signal

import pytest

from dsmt.errors import ConfigError

from actors.deploy import manifest
from actors.deploy.package import DEMO_DIR

pytestmark = pytest.mark.timeout(10)

GOOD = """
name = "web"
version = "2.1.0"
requirements = ["./wheels/x.whl"]
[install]
command = ["sh", "install.sh"]
timeout = "infinity"
[start]
command = ["python", "server.py"]
stop_signal = "INT"
[health]
kind = "http"
path = "/ok"
interval = 2
timeout = 1
failure_threshold = 4
[env]
PORT = "9000"
EMPTY = ""
"""


def test_a_full_manifest_becomes_frozen_dataclasses():
    m = manifest.loads(GOOD)
    assert (m.name, m.version, m.requirements) == ("web", "2.1.0", ("./wheels/x.whl",))
    assert m.install.command == ("sh", "install.sh") and m.install.timeout is None
    assert m.start.command == ("python", "server.py") and m.start.stop_signal is signal.SIGINT
    assert (m.health.kind, m.health.path, m.health.interval, m.health.failure_threshold) == (
        "http", "/ok", 2.0, 4)
    assert dict(m.env) == {"PORT": "9000", "EMPTY": ""}
    with pytest.raises(AttributeError):
        m.name = "other"
    with pytest.raises(TypeError):
        m.env["PORT"] = "1"


def test_the_demo_app_manifest_is_valid():
    m = manifest.load(DEMO_DIR)
    assert m.name == "demo-app" and m.health.kind == "http"
    assert m.source == DEMO_DIR / "dsmt-app.toml"


@pytest.mark.parametrize("text,key,why", [
    ('version = "1.0"\n[start]\ncommand=["x"]', "name", "missing"),
    ('name = "Web"\nversion = "1.0"\n[start]\ncommand=["x"]', "name", "not a package name"),
    ('name = "web"\nversion = "v1"\n[start]\ncommand=["x"]', "version", "start with a digit"),
    ('name = "web"\nversion = "1.0"', "start", "missing table"),
    ('name = "web"\nversion = "1.0"\n[start]\ncommand=[]', "start.command", "non-empty"),
    ('name = "web"\nversion = "1.0"\n[start]\ncommand="python x"', "start.command", "list"),
    ('name = "web"\nversion = "1.0"\ncolour = 1\n[start]\ncommand=["x"]', "colour", "unknown key"),
    ('name = "web"\nversion = "1.0"\n[start]\ncommand=["x"]\nstop_signal="SIGNOPE"',
     "start.stop_signal", "unknown signal"),
    ('name = "web"\nversion = "1.0"\n[start]\ncommand=["x"]\n[health]\nkind="ping"',
     "health.kind", "one of tcp, http, command"),
    ('name = "web"\nversion = "1.0"\n[start]\ncommand=["x"]\n[health]\nkind="tcp"\n'
     'interval=1\ntimeout=2',
     "health.timeout", "longer than interval"),
    ('name = "web"\nversion = "1.0"\n[start]\ncommand=["x"]\n[health]\nkind="command"',
     "health.command", "missing"),
    ('name = "web"\nversion = "1.0"\n[start]\ncommand=["x"]\n[health]\nkind="tcp"\n'
     'failure_threshold=0',
     "health.failure_threshold", ">= 1"),
    ('name = "web"\nversion = "1.0"\n[start]\ncommand=["x"]\n[env]\nPORT = 8080',
     "env.PORT", "expected a string"),
    ('name = "web"\nversion = "1.0"\n[start]\ncommand=["x"]\n[install]\ncommand=["x"]\ntimeout=-1',
     "install.timeout", ">= 0"),
    ('name = "web"\nversion = "1.0"\n[start]\ncommand=["x"]\n[install]\ncommand=["x"]\ntimout=1',
     "install.timout", "unknown key"),
    ('name = "web\nversion', "-", "not valid TOML"),
])
def test_a_wrong_manifest_is_refused_naming_file_key_and_what_is_wrong(text, key, why):
    with pytest.raises(ConfigError) as info:
        manifest.loads(text, "pkg/dsmt-app.toml")
    assert info.value.path == "pkg/dsmt-app.toml"
    assert info.value.key == key
    assert why in info.value.why


def test_a_missing_manifest_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        manifest.load(tmp_path)


def test_check_matches_refuses_a_package_that_is_not_what_the_plan_asked_for():
    m = manifest.loads(GOOD, "x/dsmt-app.toml")
    manifest.check_matches(m, "web", "2.1.0")
    with pytest.raises(ConfigError, match="version: is '2.1.0', the plan asks for '2.2.0'"):
        manifest.check_matches(m, "web", "2.2.0")
