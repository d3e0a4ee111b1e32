"""The example configurations shipped in conf/ parse as documented."""

from __future__ import annotations

from pathlib import Path

from actors import nodeconf, plan
from gateways.psepr import config as router_config

CONF = Path(__file__).resolve().parent.parent / "conf"


def test_the_example_plan_parses():
    parsed = plan.load(CONF / "plan.toml")
    assert parsed.service("demo-app").replicas == 3


def test_the_example_router_config_parses_once_its_files_exist(tmp_path):
    secret = tmp_path / "mesh.secret"
    secret.write_text("pw\n")
    (tmp_path / "accounts.toml").write_text((CONF / "accounts.toml").read_text())
    text = (CONF / "router.toml").read_text().replace("/etc/dsmt/mesh.secret", str(secret))
    (tmp_path / "router.toml").write_text(text)
    parsed = router_config.load(tmp_path / "router.toml")
    assert parsed.listen == ("127.0.0.1", 23345)


def test_the_example_node_config_parses_once_its_password_file_exists(tmp_path):
    secret = tmp_path / "dsmt.secret"
    secret.write_text("pw\n")
    text = (CONF / "node.toml").read_text().replace("/etc/dsmt/dsmt.secret", str(secret))
    (tmp_path / "node.toml").write_text(text)
    parsed = nodeconf.load(tmp_path / "node.toml")
    assert parsed.bridge.password == "pw" and parsed.limits.nofile == 4096
