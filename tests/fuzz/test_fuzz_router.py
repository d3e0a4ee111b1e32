"""Hostile connections never stop the router serving: fuzzed streams, then a normal client.

One router (gateways.psepr.router.RouterThread on 127.0.0.1) takes a few
hundred hostile connections -- random bytes, mutants of a valid stream
before or after login -- each closed by the fuzzer; after every one the
router must still be running with no internal error, and at the end a normal
client subscribes and gets a delivery. Slower than the parser targets (a
real socket per case), so it runs :data:`ROUTER_CASES` cases.
"""

from __future__ import annotations

import socket

from hypothesis import given
from hypothesis import strategies as st

from dsmt.event import ATTRIBUTE
from gateways.psepr import stream
from tests.gateways.conftest import PASSWORD, Wire, make_router, router  # noqa: F401

from . import CASES, fuzz_settings, fuzz_timeout, mutants
from .test_fuzz_stream import VALID

pytestmark = fuzz_timeout(180)

ROUTER_CASES = max(1000, CASES // 10)
LOGIN = stream.stream_header(to="r1") + stream.auth_set("a2", "fuzz", PASSWORD, "i1")
hostile = st.one_of(st.binary(max_size=200), st.just(VALID), st.just(LOGIN + VALID[len(LOGIN):]))


def _hostile_connection(address, data: bytes) -> None:
    with socket.create_connection(address, timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(1 << 16):  # until the router answers and closes, or we time out
                pass
        except OSError:  # reset or timeout: the router hung up on garbage, as it should
            pass


def test_a_router_keeps_serving_after_hundreds_of_hostile_connections(router):  # noqa: F811
    @fuzz_settings(ROUTER_CASES)
    @given(data=hostile, seed=st.integers(0, 2**32))
    def hostile_connections(data, seed):
        for raw in [data, *mutants(data, seed)]:
            _hostile_connection(router.address, raw)
        assert router.call(lambda: router.router.loop.is_running())
        assert router.call(lambda: router.router.stats["internal_errors"]) == 0

    hostile_connections()
    sub = Wire(router.address).login("alice")
    pub = Wire(router.address).login("bob")
    try:
        sub.lease("/f/", "l1")
        sub.grant("l1")
        pub.publish(pub.event("/f/", ATTRIBUTE, {"field": "f", "value": "ok"}))
        assert sub.next_event(lambda e: e.payload.get("value") == "ok").channel == "/f/"
    finally:
        sub.close()
        pub.close()
