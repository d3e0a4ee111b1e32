"""The client's lease state machine: grant, renew at 80 %, retry, give up, renegotiate."""

from __future__ import annotations

import pytest

from dsmt.errors import TransitionError
from gateways.psepr import lease_machine as lm


def _lease(**timing):
    return lm.ClientLease("id", "/a/", None, 100.0, lm.Timing(**timing))


def test_a_lease_is_requested_on_connect_and_renewed_at_80_percent_of_the_grant():
    lease = _lease()
    assert lease.connected(now=0.0) == lm.SEND and lease.state == lm.REQUESTED
    lease.grant(50.0, now=1.0)
    assert lease.state == lm.GRANTED and lease.due == pytest.approx(41.0)
    assert lease.tick(40.9) == lm.NOTHING
    assert lease.tick(41.0) == lm.SEND and lease.state == lm.RENEWING and lease.active
    lease.grant(50.0, now=42.0)
    assert lease.state == lm.GRANTED


def test_an_unanswered_request_is_retried_after_20_seconds_and_given_up_after_10_tries():
    lease = _lease()
    lease.connected(now=0.0)
    sends = 1
    now = 0.0
    while True:
        now += 20.0
        action = lease.tick(now)
        if action != lm.SEND:
            break
        sends += 1
    assert sends == 10 and action == lm.GIVE_UP and lease.state == lm.FAILED
    assert lease.due is None


def test_every_lease_is_renegotiated_after_a_reconnect():
    lease = _lease(retry_after=1.0)
    lease.connected(now=0.0)
    lease.grant(10.0, now=0.0)
    lease.disconnected()
    assert lease.state == lm.DISCONNECTED and lease.due is None and not lease.active
    assert lease.connected(now=5.0) == lm.SEND and lease.state == lm.REQUESTED


def test_a_late_grant_after_a_disconnect_changes_nothing():
    lease = _lease()
    lease.connected(now=0.0)
    lease.disconnected()
    assert lease.grant(10.0, now=1.0) == lm.NOTHING and lease.state == lm.DISCONNECTED


def test_the_table_refuses_a_grant_straight_from_new():
    with pytest.raises(TransitionError):
        _lease().change_state(lm.GRANTED)


def test_a_refused_request_is_not_retried_until_the_next_connection():
    lease = _lease()
    lease.connected(now=0.0)
    assert lease.refuse() == lm.GIVE_UP and lease.state == lm.REFUSED and lease.due is None
    assert lease.tick(1000.0) == lm.NOTHING and not lease.active
    assert lease.refuse() == lm.NOTHING  # a duplicate answer changes nothing
    assert lease.connected(now=2000.0) == lm.SEND and lease.state == lm.REQUESTED
