"""Router configuration and accounts: TOML in, frozen dataclasses out, errors that say where."""

from __future__ import annotations

import pytest

from dsmt.errors import ConfigError
from gateways.psepr import accounts, config


def test_a_hash_verifies_its_password_only(tmp_path):
    text = accounts.hash_password("s3cret", n=1 << 10)
    assert text.startswith("scrypt$1024$8$1$")
    assert accounts.verify_hash("s3cret", text)
    assert not accounts.verify_hash("s3cret ", text)


def test_accounts_remember_a_verified_password_but_not_a_wrong_one():
    accts = accounts.Accounts({"svc": accounts.hash_password("pw", n=1 << 10)})
    assert not accts.is_remembered("svc", "pw")
    assert accts.verify("svc", "pw") and accts.is_remembered("svc", "pw")
    assert not accts.verify("svc", "nope") and not accts.verify("ghost", "pw")


def test_a_full_router_config_is_read_into_dataclasses(tmp_path):
    (tmp_path / "accounts.toml").write_text(
        f'[accounts]\nsvc = "{accounts.hash_password("pw", n=1 << 10)}"\n')
    (tmp_path / "mesh.secret").write_text("meshpw\n")
    path = tmp_path / "router.toml"
    path.write_text(
        '[router]\nname = "r1"\nlisten = "127.0.0.1:0"\naccounts = "accounts.toml"\n'
        'heartbeat = "infinity"\nmax_lease = 30\n'
        '[limits]\nrate = 100\n'
        '[mesh]\nlisten = "127.0.0.1:0"\npeers = ["127.0.0.1:9", "localhost"]\n'
        'password_file = "mesh.secret"\n')
    cfg = config.load(path).check(path)
    assert cfg.name == "r1" and cfg.listen == ("127.0.0.1", 0) and cfg.heartbeat is None
    assert cfg.max_lease == 30.0 and cfg.limits.rate == 100.0 and "svc" in cfg.accounts
    assert cfg.mesh.peers == (("127.0.0.1", 9), ("localhost", 23341))
    assert cfg.mesh.password == "meshpw"


@pytest.mark.parametrize("text,key", [
    ('[router]\nlisten = "h:port"\n', "router.listen"),
    ('[router]\nlistne = "h:1"\n', "router.listne"),
    ('[limits]\nrate = "fast"\n', "limits.rate"),
    ('[accounts]\nsvc = "plaintext"\n', "accounts.svc"),
    ('[mesh]\npeers = [1]\n', "mesh.peers[0]"),
])
def test_a_config_error_names_the_file_and_the_key(tmp_path, text, key):
    path = tmp_path / "router.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert err.value.key == key and str(path) in str(err.value)


def test_a_non_loopback_listener_needs_tls_or_insecure():
    cfg = config.RouterConfig(listen=("0.0.0.0", 23345))
    with pytest.raises(ConfigError, match="--insecure"):
        cfg.check()
    cfg.replace(insecure=True).check()
