"""Fuzzed stanzas never crash the router: after each, another client is still served."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsmt.event import ATTRIBUTE

from .conftest import Wire

pytestmark = pytest.mark.timeout(60)

GOOD = (b"<message to='psepr_registry@r1'><event xmlns='http://psepr.org/xs/event'>"
        b"<to><channel>/f/</channel></to><from><service>fuzz</service></from>"
        b"<payload xmlns='http://psepr.org/xs/payload/attribute'><field>f</field>"
        b"<value>v</value></payload></event></message>")

fragments = st.sampled_from([
    b"<", b">", b"</", b"/>", b"<message>", b"</message>", b"<event xmlns='http://psepr.org/xs/event'>",
    b"</event>", b"<to>", b"</to>", b"<channel>", b"</channel>", b"/a/", b"//", b"*",
    b"<payload xmlns='http://psepr.org/xs/payload/lease'>", b"<op>register</op>",
    b"<duration>-1e999</duration>", b"<identifier/>", b"&amp;", b"&lol;", b"<!DOCTYPE x>",
    b"<?pi x?>", b"<!-- c -->", b"\x00", b"\xff", b"]]>", b"<![CDATA[x]]>", b"'", b'"',
    b"<iq type='set'>", b"<stream:stream>", b"</stream:stream>", b"d:id='x'",
    b"xmlns:d='http://dsmt.org/xs/event-meta'", b"<from><service>s</service></from>",
])
stanzas = st.one_of(
    st.binary(max_size=300),
    st.lists(fragments, max_size=30).map(b"".join),
    st.tuples(st.integers(0, len(GOOD)), st.binary(max_size=20)).map(
        lambda t: GOOD[:t[0]] + t[1] + GOOD[t[0]:]),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=stanzas)
def test_fuzzed_stanzas_never_stop_the_router_serving_another_client(router, junk):
    sub = Wire(router.address).login("alice")
    fuzz = Wire(router.address).login("fuzz")
    try:
        sub.lease("/f/", "l1")
        sub.grant("l1")
        fuzz.send(junk + GOOD)
        sub.publish(sub.event("/f/", ATTRIBUTE, {"field": "f", "value": "ok"}))
        assert sub.next_event(lambda e: e.payload.get("value") == "ok").channel == "/f/"
    finally:
        sub.close()
        fuzz.close()
    assert router.router.loop.is_running()
    assert router.router.stats["internal_errors"] == 0
