"""The example configurations shipped in conf/ parse as documented."""

from __future__ import annotations

from pathlib import Path

from actors import nodeconf, plan
from dsmt import channels
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


def _example_node(tmp_path: Path) -> str:
    """conf/node.toml as text, with its password file made under ``tmp_path``."""
    secret = tmp_path / "dsmt.secret"
    secret.write_text("pw\n")
    return (CONF / "node.toml").read_text().replace("/etc/dsmt/dsmt.secret", str(secret))


def test_the_example_node_config_parses_once_its_password_file_exists(tmp_path):
    (tmp_path / "node.toml").write_text(_example_node(tmp_path))
    parsed = nodeconf.load(tmp_path / "node.toml")
    assert parsed.bridge.password == "pw" and parsed.limits.nofile == 4096


def test_a_sliver_imports_by_default_what_its_actors_read_and_not_every_peer_status(tmp_path):
    text = _example_node(tmp_path)
    (tmp_path / "node.toml").write_text(text)
    parsed = nodeconf.load(tmp_path / "node.toml")
    layout = parsed.layout

    def imported(channel: str) -> bool:
        return any(channels.is_under(channel, p) for p in parsed.bridge.import_prefixes)

    assert imported(layout.plan())
    assert imported(layout.heartbeat("s7")) and imported(layout.resources("s7"))
    assert imported(layout.command("sliver")) and imported(layout.command("sliver", "s1"))
    assert not imported(layout.status("app", "s7"))
    assert not imported(layout.reply("r-1"))
    assert parsed.bridge.export_prefixes == (layout.base,)  # every local event still goes out

    (tmp_path / "node.toml").write_text(text.replace(
        "[bridge]\n", f'[bridge]\nimport = ["{layout.base}"]\n'))
    assert nodeconf.load(tmp_path / "node.toml").bridge.import_prefixes == (layout.base,)
