"""The bus client over a real hub: publish/subscribe, handshakes, ownership, gaps.

Snapshots (late joiners, retained state, exact joins) are in
:mod:`tests.dsmt.test_bus_snapshot`."""

from __future__ import annotations

import threading

import pytest
import zmq

from dsmt import codec
from dsmt.bus import Bus
from dsmt.clock import poll_ms
from dsmt.errors import ChannelError, CodecError
from dsmt.event import Address, Event, Sequencer
from dsmt.gaps import EpochChange, Gap, GapDetector, Stale
from dsmt.hub import Hub, sync_channel
from dsmt.latch import Latch
from dsmt.testing import wait_for

pytestmark = pytest.mark.timeout(30)
BOUND = 20.0  # generous: these tests run beside others on a 2-core machine


def test_an_event_arrives_with_every_field_intact(bus):
    with bus.subscriber("/x/") as sub, bus.publisher(Address("svc", "1")) as pub:
        sent = pub.publish("/x/y/", "urn:t", {"a": [1, 2.5, None, b"\x00"]}, retain=True,
                           to=Address("other", "2"))
        got = sub.recv(BOUND)
    assert got == sent
    assert pub.sent == 1 and pub.dropped == 0


def test_a_receive_that_times_out_waits_in_whole_milliseconds_not_in_a_spin(bus, monkeypatch):
    # pyzmq truncates a float poll timeout to whole milliseconds: recv() used to
    # poll 0 ms over and over through the last millisecond of every timeout.
    with bus.subscriber("/quiet/") as sub:
        polls = []
        real = sub._poller.poll

        def counting(timeout=None):
            polls.append(timeout)
            return real(timeout)

        monkeypatch.setattr(sub._poller, "poll", counting)
        assert sub.recv(0.0505) is None
    assert polls and all(isinstance(t, int) and t > 0 for t in polls), polls
    assert len(polls) <= 3, polls


def test_a_blocking_receive_returns_none_once_another_thread_sets_its_stop_latch(bus):
    stop = Latch()
    results: list = []
    opened = threading.Event()

    def read() -> None:
        with bus.subscriber("/latch/", stop=stop) as sub:
            opened.set()
            results.append(sub.recv())  # no timeout: only the latch ends this wait
            results.append(sub.recv())  # and every wait after it

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert opened.wait(BOUND)
    stop.set()
    reader.join(BOUND)
    assert not reader.is_alive()
    assert results == [None, None]
    stop.close()


def test_a_set_stop_latch_still_lets_the_events_already_waiting_be_read(bus):
    stop = Latch()
    with bus.subscriber("/latch2/", stop=stop) as sub, bus.publisher(Address("p")) as pub:
        sent = [pub.publish("/latch2/", "t", n) for n in range(3)]
        wait_for(lambda: sub._sock.poll(0), BOUND)
        stop.set()
        got = list(sub)  # iterating ends at the first wait once the latch is set
    assert got[:1] == sent[:1] and all(e in sent for e in got)
    stop.close()


def test_poll_ms_rounds_up_so_a_poll_never_returns_before_its_deadline():
    assert [poll_ms(s) for s in (None, -1.0, 0.0, 0.0001, 0.001, 0.0505, 2.0)] == [
        None, 0, 0, 1, 1, 51, 2000]


def test_an_event_published_right_after_both_constructors_is_never_missed(bus):
    # The slow-joiner problem, fifty times over: handshakes, not sleeps.
    for round_ in range(50):
        with bus.subscriber(f"/r{round_}/") as sub, bus.publisher(Address("p")) as pub:
            pub.publish(f"/r{round_}/", "t", round_)
            event = sub.recv(BOUND)
            assert event is not None and event.payload == round_


def test_send_forwards_an_event_made_elsewhere_unchanged(bus):
    foreign = Sequencer(Address("psepr-peer", "x")).make("/imported/", "t", "hi")
    with bus.subscriber("/imported/") as sub, bus.publisher(Address("bridge")) as pub:
        pub.send(foreign)
        assert sub.recv(BOUND) == foreign


def test_a_bad_channel_or_payload_raises_and_sends_nothing(bus):
    with bus.publisher(Address("p")) as pub:
        for bad in ("no-slash", "/a//b/", "/a/*/", "/sp ace/", "/"):
            with pytest.raises(ChannelError):
                pub.publish(bad, "t", None)
        with pytest.raises(CodecError):
            pub.publish("/a/", "t", object())
        with pytest.raises(ChannelError):
            bus.subscriber("/bad//")
    assert pub.sent == 0


def test_publisher_and_subscriber_refuse_another_thread_and_use_after_close(bus):
    pub = bus.publisher(Address("p"))
    sub = bus.subscriber("/a/")
    errors = []

    def intrude():
        for call in (lambda: pub.publish("/a/", "t", 1), lambda: sub.recv(0), pub.close):
            try:
                call()
            except RuntimeError as exc:
                errors.append(exc)

    thread = threading.Thread(target=intrude)
    thread.start()
    thread.join(BOUND)
    assert len(errors) == 3
    pub.close()
    sub.close()
    pub.close()  # idempotent
    with pytest.raises(RuntimeError):
        pub.publish("/a/", "t", 1)
    with pytest.raises(RuntimeError):
        sub.recv(0)


def test_recv_times_out_with_none(bus):
    with bus.subscriber("/quiet/") as sub:
        assert sub.recv(0) is None
        assert sub.recv(0.01) is None


def test_a_mute_hub_makes_the_constructors_time_out(zctx, tmp_path):
    from dsmt.hub import Endpoints
    nowhere = Endpoints(*(f"ipc://{tmp_path}/{n}" for n in ("p", "s", "q")))
    bus = Bus(zctx, nowhere, connect_timeout=0.05)
    with pytest.raises(TimeoutError):
        bus.publisher(Address("p"))
    with pytest.raises(TimeoutError):
        bus.subscriber("/a/")


# -- gaps and epochs -------------------------------------------------------------


def _raw_publisher(zctx, hub):
    sock = zctx.socket(zmq.XPUB)
    sock.linger = 0
    sock.connect(hub.endpoints.publish)
    assert sock.poll(BOUND * 1000)
    sock.recv()
    return sock


def _event(sender: Address, epoch: int, seq: int, channel: str = "/g/") -> Event:
    return Event(channel, "t", sender, seq, f"{epoch:x}.{seq}", seq, epoch, 0.0)


def test_a_seq_jump_is_reported_as_a_gap_and_a_restart_as_an_epoch_change(zctx, hub, bus):
    who = Address("raw", "1")
    sock = _raw_publisher(zctx, hub)
    try:
        with bus.subscriber("/g/") as sub:
            for epoch, seq in ((10, 1), (10, 2), (10, 5), (10, 6), (11, 1), (11, 2), (10, 7)):
                sock.send_multipart(codec.encode(_event(who, epoch, seq)))
            got = [sub.recv(BOUND) for _ in range(7)]
            assert all(got)
            assert sub.gaps == [Gap(who, 10, 3, 4), EpochChange(who, 10, 11, 1),
                                Stale(who, 10, 7, 11, 2)]
            assert sub.gap_detector.missing == 2
    finally:
        sock.close()


def test_a_restarted_publisher_shows_as_an_epoch_change(bus):
    who = Address("svc", "0")
    events = []
    with bus.subscriber("/e/") as sub:
        for _ in range(2):
            with bus.publisher(who) as pub:
                pub.publish("/e/", "t", 1)
                pub.publish("/e/", "t", 2)
                # Received before the restart: two publishers' events are not ordered.
                events += [sub.recv(BOUND), sub.recv(BOUND)]
    assert [e.seq for e in events] == [1, 2, 1, 2]
    assert sub.gaps == [EpochChange(who, events[0].epoch, events[2].epoch, 1)]


def test_a_subscriber_that_falls_behind_its_high_water_mark_sees_the_loss_as_a_gap(
        zctx, tmp_path):
    with Hub(zctx, tmp_path / "run", hwm=50, stats_interval=None) as hub:
        bus = Bus(zctx, hub.endpoints, hwm=50)
        with bus.subscriber("/flood/") as sub, bus.publisher(Address("fast")) as pub:
            for i in range(5000):  # the subscriber reads nothing meanwhile
                pub.publish("/flood/", "t", i)
            received, first = 0, None
            while True:
                event = sub.recv(0.2)
                if event is None:  # drained; the flood's tail may have been dropped
                    pub.publish("/flood/", "t", "tail")
                    continue
                received += 1
                first = first or event.seq
                if event.payload == "tail":
                    break
            assert pub.dropped == 0  # publisher -> hub is back-pressured, not lossy
            detector = sub.gap_detector
            assert detector.missing > 0
            # Every seq is accounted for: received or reported missing.
            assert first - 1 + received + detector.missing == event.seq


def test_the_gap_detector_forgets_the_oldest_sender_beyond_its_bound():
    detector = GapDetector(max_senders=2)
    for name in ("a", "b", "c"):
        detector.observe(_event(Address(name), 1, 1))
    assert detector.position(Address("a")) is None
    assert detector.position(Address("c")) == (1, 1)


# -- frames that do not decode ---------------------------------------------------


def test_a_subscriber_counts_and_skips_frames_it_cannot_decode(zctx):
    """Against a fake hub: the real one never forwards garbage."""
    endpoint = "inproc://fake-hub"
    fake = zctx.socket(zmq.XPUB)
    fake.linger = 0
    fake.setsockopt(zmq.XPUB_VERBOSE, 1)
    fake.bind(endpoint)
    from dsmt.hub import Endpoints

    def serve():
        hub_seq = Sequencer(Address("fake-hub"))
        while True:
            assert fake.poll(BOUND * 1000)
            topic = fake.recv()[1:].decode()
            if topic.startswith(sync_channel("x")[:-2]):
                break
        fake.send_multipart(codec.encode(hub_seq.make(topic, "t", {"kind": "welcome"})))
        # Framing is by content (dsmt.codec): a pair that does not decode, a lone
        # channel frame, a pair with an empty body and the stray frame after it.
        for junk in ([b"/d/", b"junk"], [b"/d/"], [b"/d/", b"", b""]):
            fake.send_multipart(junk)
        fake.send_multipart(codec.encode(hub_seq.make("/d/", "t", "good")))
        # A valid event with a stray frame after it: the event, then one undecodable.
        fake.send_multipart([*codec.encode(hub_seq.make("/d/", "t", "extra")), b"\x9c"])
        fake.send_multipart(codec.encode(hub_seq.make("/d/", "t", "last")))

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with Bus(zctx, Endpoints(endpoint, endpoint, endpoint)).subscriber("/d/") as sub:
            event = sub.recv(BOUND)
            assert event is not None and event.payload == "good"
            assert sub.undecodable == 4
            assert [sub.recv(BOUND).payload for _ in range(2)] == ["extra", "last"]
            assert sub.undecodable == 5
    finally:
        thread.join(BOUND)
        fake.close()
