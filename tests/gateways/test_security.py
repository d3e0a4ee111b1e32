"""Who may talk to a router, over what, and on which channels (DESIGN.md §8, issue 6).

Real routers on loopback, real clients and raw sockets: unauthenticated and
wrong-password clients are refused, a TLS listener serves TLS clients and
refuses plaintext while it keeps serving, and an account's access list
(gateways.psepr.acl) bounds what it may lease and publish. Forged and
replayed commands are refused in tests/dsmt/test_commands.py,
tests/actors/test_commander.py and tests/e2e/test_commands.py.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time

import pytest
import trustme

from dsmt.errors import ConfigError
from dsmt.event import ATTRIBUTE, LEASE
from dsmt.testing import wait_for
from gateways.psepr import accounts, config, stream

from tests.gateways.conftest import HASH, PASSWORD, ROOT, SERVICES, lease_count, stats

RESTRICTED = "carol"


def _attr(value: str = "1") -> dict:
    return {"field": "load", "value": value}


def _accounts_with_acl(**acl) -> accounts.Accounts:
    text = "[accounts]\n" + "".join(f'"{s}" = "{HASH}"\n' for s in SERVICES
                                     if s != RESTRICTED)
    text += f'\n[accounts."{RESTRICTED}"]\npassword = "{HASH}"\n'
    text += "".join(f"{k} = {list(v)!r}\n".replace("'", '"') for k, v in acl.items())
    from dsmt import config as tomlconfig
    return accounts.from_table(tomlconfig.loads(text, "accounts.toml").table("accounts"))


@pytest.fixture
def acl_router(make_router):
    return make_router(accounts=_accounts_with_acl(lease=["/allowed/"], publish=["/allowed/"]))


# --------------------------------------------------------------------------- logging in

def test_a_client_that_never_logs_in_can_neither_lease_nor_publish(router, wire):
    w = wire(router)
    w.open()
    w.lease("/a/")
    w.wait_closed()
    assert w.error is None or w.error.condition == "not-authorized"
    assert lease_count(router) == 0


def test_a_wrong_password_and_an_unknown_service_are_refused_alike(router, make_client):
    from gateways.psepr.client import CONNECTED
    wrong = make_client(router, "alice", password="not-it", connect=False)
    unknown = make_client(router, "mallory", connect=False)
    wait_for(lambda: stats(router).get("refused", 0) >= 2, 20, "both logins refused")
    assert wrong.state != CONNECTED and unknown.state != CONNECTED


# --------------------------------------------------------------------------- TLS

@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = folder / "router.pem", folder / "router.key"
    server.cert_chain_pems[0].write_to_path(str(cert))
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(str(cert), append=True)
    server.private_key_pem.write_to_path(str(key))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return config.Tls(cert, key), context


def test_tls_clients_log_in_and_receive_over_an_encrypted_stream(make_router, make_client,
                                                                 certificates):
    tls, context = certificates
    router = make_router(tls=tls)
    got = []
    sub = make_client(router, ssl=context)
    lease = sub.lease("/t/", got.append)
    wait_for(lambda: lease.granted, 10, "a grant over TLS")
    pub = make_client(router, "bob", ssl=context)
    pub.publish(pub.make("/t/", ATTRIBUTE, _attr("secret")))
    wait_for(lambda: got, 10, "a delivery over TLS")
    assert got[0].payload["value"] == "secret"


def test_a_tls_listener_refuses_a_plaintext_stream_and_keeps_serving(make_router, make_client,
                                                                     certificates):
    tls, context = certificates
    router = make_router(tls=tls)
    with socket.create_connection(router.address, timeout=10) as plain:
        plain.sendall(stream.stream_header(to="r1")
                      + stream.auth_set("a1", "alice", PASSWORD, None))
        answer = b""
        while chunk := _recv(plain):
            answer += chunk
    assert b"stream" not in answer and b"result" not in answer, answer
    assert lease_count(router) == 0

    got = []
    sub = make_client(router, ssl=context)
    lease = sub.lease("/t/", got.append)
    wait_for(lambda: lease.granted, 10, "a TLS client served after the plaintext one")


def test_a_client_that_does_not_trust_the_router_certificate_does_not_log_in(
        make_router, make_client, certificates):
    tls, _ = certificates
    router = make_router(tls=tls)
    stranger = ssl.create_default_context()  # trusts the system CAs, not this router's
    client = make_client(router, ssl=stranger, connect=False)
    wait_for(lambda: client.stats["connect_failures"] >= 1, 20, "a failed TLS handshake")
    assert not client.wait_connected(0)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(4096)
    except (ConnectionResetError, socket.timeout):
        return b""


# --------------------------------------------------------------------------- access lists

def test_an_account_table_with_an_access_list_is_read_from_the_accounts_file(tmp_path):
    path = tmp_path / "accounts.toml"
    path.write_text(f'[accounts]\n"dsmt" = "{HASH}"\n\n[accounts."watch"]\npassword = "{HASH}"\n'
                    'lease = ["/org/dsmt/", "/"]\npublish = []\n')
    loaded = accounts.load(path)
    assert loaded.acl("dsmt").unrestricted
    watch = loaded.acl("watch")
    assert watch.lease == ("/org/dsmt/", "/") and watch.publish == ()
    assert not watch.may_publish("/org/dsmt/x/") and watch.may_lease("/anything/")
    assert loaded.verify("watch", PASSWORD)


@pytest.mark.parametrize("entry, key", [
    ('password = "{h}"\nlease = ["no-slash"]\n', "accounts.watch.lease"),
    ('password = "{h}"\npublish = ["/a/*/"]\n', "accounts.watch.publish"),
    ('password = "{h}"\npublish = "/a/"\n', "accounts.watch.publish"),
    ('password = "{h}"\nsubscribe = ["/a/"]\n', "accounts.watch.subscribe"),
    ('lease = ["/a/"]\n', "accounts.watch.password"),
])
def test_a_bad_access_list_is_a_config_error_naming_the_key(tmp_path, entry, key):
    path = tmp_path / "accounts.toml"
    path.write_text('[accounts."watch"]\n' + entry.format(h=HASH))
    with pytest.raises(ConfigError) as caught:
        accounts.load(path)
    assert key in str(caught.value)


def test_a_restricted_account_may_lease_under_its_prefixes_only(acl_router, make_client):
    client = make_client(acl_router, RESTRICTED)
    inside = client.lease("/allowed/x/", lambda e: None)
    outside = client.lease("/other/", lambda e: None)
    wider = client.lease("/allow/", lambda e: None)  # shares a start, not an element
    wait_for(lambda: inside.state == "granted" and outside.state == "refused"
             and wider.state == "refused", 10,
             lambda: f"states {inside.state}, {outside.state}, {wider.state}")
    assert "forbidden" in outside.error and "/other/" in outside.error
    assert lease_count(acl_router) == 1
    assert stats(acl_router)["forbidden"] == 2


def test_waiting_for_a_grant_ends_at_the_routers_answer_granted_or_refused(acl_router,
                                                                           make_client):
    client = make_client(acl_router, RESTRICTED)
    inside = client.lease("/allowed/y/", lambda e: None)
    assert inside.wait_granted(10) and inside.state == "granted"
    outside = client.lease("/other/", lambda e: None)
    started = time.monotonic()
    assert not outside.wait_granted(30)  # refused: it does not wait out the timeout
    assert outside.state == "refused" and "forbidden" in outside.error
    assert time.monotonic() - started < 20


def test_an_event_outside_the_publish_prefixes_goes_nowhere_and_the_sender_stays_connected(
        acl_router, make_client):
    got = []
    watcher = make_client(acl_router, "alice")
    leases = [watcher.lease(prefix, got.append) for prefix in ("/other/", "/allowed/")]
    wait_for(lambda: all(s.state == "granted" for s in leases), 10, "the watcher's leases")
    carol = make_client(acl_router, RESTRICTED)
    carol.publish(carol.make("/other/x/", ATTRIBUTE, _attr("forbidden")))
    carol.publish(carol.make("/allowed/y/", ATTRIBUTE, _attr("fine")))
    # The router handles one connection's events in order, so once the second
    # one arrived, the first would have arrived before it had it been routed.
    wait_for(lambda: got, 10, "the allowed event")
    assert [e.payload["value"] for e in got] == ["fine"]
    wait_for(lambda: carol.stats["refused"] == 1, 10, "the refusal at the sender")
    assert stats(acl_router)["forbidden"] == 1


def test_the_refusal_on_the_wire_is_a_forbidden_error_echoing_the_event(acl_router, wire):
    w = wire(acl_router).login(RESTRICTED)
    w.lease("/other/", identifier="nope")
    error = w.expect(lambda i: getattr(i, "get", lambda k: None)("type") == "error",
                     what="an error answer")
    assert error.tag == stream.MESSAGE
    assert stream.message_error_reason(error)[0] == "forbidden"
    echoed = stream.message_event(error)
    assert echoed.type == LEASE and echoed.payload["identifier"] == "nope"
    w.lease("/", identifier="everything")
    error = w.expect(lambda i: getattr(i, "get", lambda k: None)("type") == "error",
                     what="an error answer to a lease on /")
    assert stream.message_event(error).payload["identifier"] == "everything"
    w.lease("/allowed/", identifier="yes")
    assert w.grant("yes")["identifier"] == "yes"  # the same connection goes on


def test_dsmt_events_on_a_forbidden_channel_fails_in_one_line(acl_router, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "dsmt.cli", "events", "--router", "%s:%d" % acl_router.address,
         "--service", RESTRICTED, "--password-file", str(secret), "--follow", "/other/"],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0] and "/other/" in lines[0], done.stderr
