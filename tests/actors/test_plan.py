"""The slice plan: parsed once into frozen dataclasses; every mistake names the key."""

from __future__ import annotations

import pytest

from actors import plan
from dsmt.childspec import Backoff
from dsmt.errors import ConfigError

SHA = "a" * 64

FULL = f'''
version = 3

[services.web]
package = "file:///srv/demo-app-1.0.0.tar.gz"
sha256 = "{SHA.upper()}"
version = "1.0.0"
command = ["python", "server.py"]
replicas = 2
port = 9000
restart = "transient"
strategy = "one_for_all"
intensity = 2
period = 4
stop_timeout = 3

[services.web.backoff]
min = 0.1
max = 2
jitter = 0
reset_after = 30

[services.web.health]
kind = "http"
path = "/ready"
interval = 1
timeout = 0.5

[services.web.placement]
require = ["label:edge"]
exclude = ["s3"]
max_per_sliver = 1

[services.web.scaling]
metric = "load"
high = 0.8
low = 0.2
min = 1
max = 5

[services.web.env]
GREETING = "hello"

[services.db]
package = "https://example.org/db-2.tar.gz"
sha256 = "{SHA}"
version = "2"
replicas = "all"
'''


def test_a_full_plan_parses_into_frozen_services_with_every_field():
    p = plan.loads(FULL)
    assert p.version == 3 and set(p.services) == {"web", "db"}
    web = p.service("web")
    assert web.sha256 == SHA  # normalised to lower case
    assert web.command == ("python", "server.py") and web.replicas == 2 and web.port == 9000
    assert (web.restart, web.strategy, web.intensity, web.period) == (
        "transient", "one_for_all", 2, 4)
    assert web.stop_timeout == 3
    assert web.backoff == Backoff(min=0.1, max=2, factor=2.0, jitter=0, reset_after=30)
    assert web.health.kind == "http" and web.health.path == "/ready" and web.health.interval == 1
    assert web.placement == plan.Placement(("label:edge",), ("s3",), 1)
    assert web.scaling.metric == "load" and web.scaling.cooldown == 30.0
    assert dict(web.env) == {"GREETING": "hello"}
    with pytest.raises(AttributeError):
        web.replicas = 3  # frozen


def test_defaults_apply_to_a_minimal_service():
    db = plan.loads(FULL).service("db")
    assert db.replicas == plan.ALL and db.port == plan.AUTO and db.command is None
    assert (db.restart, db.strategy, db.intensity, db.period) == (
        "permanent", "one_for_one", 5, 10.0)
    assert db.backoff is None and db.health is None and db.scaling is None and dict(db.env) == {}


@pytest.mark.parametrize("line, key", [
    ('package = "ftp://x/y.tar.gz"', "package"),
    ('sha256 = "abc"', "sha256"),
    ("replicas = -1", "replicas"),
    ('port = "any"', "port"),
    ("port = 70000", "port"),
    ("command = []", "command"),
    ('restart = "sometimes"', "restart"),
    ("period = 0", "period"),
    ("colour = 1", "colour"),
])
def test_a_bad_value_is_refused_naming_the_service_key(line, key):
    base = {"package": 'package = "file:///a.tar.gz"', "sha256": f'sha256 = "{SHA}"',
            "version": 'version = "1"'}
    name = line.split(" ", 1)[0]
    base[name] = line
    text = "version = 1\n[services.web]\n" + "\n".join(base.values()) + "\n"
    with pytest.raises(ConfigError) as caught:
        plan.loads(text, "plan.toml")
    assert f"services.web.{key}" in str(caught.value) and "plan.toml" in str(caught.value)


def test_a_bad_service_name_and_a_bad_health_table_are_refused():
    with pytest.raises(ConfigError, match="Web"):
        plan.loads(f'version = 1\n[services.Web]\npackage = "file:///a"\nsha256 = "{SHA}"\n'
                   'version = "1"\n')
    with pytest.raises(ConfigError, match="services.web.health.kind"):
        plan.loads(f'version = 1\n[services.web]\npackage = "file:///a"\nsha256 = "{SHA}"\n'
                   'version = "1"\n[services.web.health]\nkind = "ping"\n')


def test_scaling_bounds_must_be_ordered():
    with pytest.raises(ConfigError, match="services.web.scaling.low"):
        plan.loads(f'version = 1\n[services.web]\npackage = "file:///a"\nsha256 = "{SHA}"\n'
                   'version = "1"\n[services.web.scaling]\nmetric = "m"\nhigh = 0.1\nlow = 0.5\n'
                   'min = 1\nmax = 2\n')


def test_version_must_be_a_positive_integer():
    with pytest.raises(ConfigError, match="version"):
        plan.loads("version = 0\n[services]\n")
