"""dsmt.latch: a stop flag with a descriptor a poll can wait on."""

from __future__ import annotations

import os
import select
import signal
import threading

import zmq

from dsmt.latch import Latch, wait_in_main_thread


def _readable(latch: Latch) -> bool:
    return bool(select.select([latch.fileno()], [], [], 0)[0])


def test_a_latch_is_readable_from_the_moment_it_is_set_and_stays_so():
    latch = Latch()
    assert not latch.is_set() and not _readable(latch)
    latch.set()
    latch.set()  # idempotent: one byte in the pipe, never more
    assert latch.is_set() and _readable(latch) and _readable(latch)
    assert os.read(latch.fileno(), 16) == b"\0"
    latch.close()


def test_a_zmq_poll_waiting_forever_returns_when_another_thread_sets_the_latch():
    latch = Latch()
    poller = zmq.Poller()
    poller.register(latch.fileno(), zmq.POLLIN)
    threading.Timer(0.01, latch.set).start()
    assert poller.poll(20_000) == [(latch.fileno(), zmq.POLLIN)]
    latch.close()


def test_close_is_idempotent_and_a_closed_latch_still_works_as_a_flag():
    latch = Latch()
    latch.close()
    latch.close()
    assert not latch._closer.alive  # both ends released
    latch.set()  # no descriptor to write to any more: the flag alone
    assert latch.is_set()


def test_a_forgotten_latch_releases_its_descriptors():
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(100):
        Latch().set()
    assert len(os.listdir("/proc/self/fd")) <= before + 2


def test_the_main_thread_waits_until_another_thread_sets_the_latch():
    latch = Latch()
    setter = threading.Thread(target=latch.set)
    setter.start()
    wait_in_main_thread(latch)  # bounded by the test's timeout
    setter.join()
    assert latch.is_set()
    latch.close()


def test_a_signal_received_by_another_thread_still_wakes_the_main_thread_at_once():
    # The case the old 0.5 s loop was for: the C handler runs in whichever thread the
    # kernel picked; Python runs the Python handler in the main thread only.
    latch = Latch()
    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: latch.set())
    parked = threading.Event()
    other = threading.Thread(target=parked.wait)
    other.start()
    try:
        threading.Thread(target=signal.pthread_kill, args=(other.ident, signal.SIGUSR1)).start()
        wait_in_main_thread(latch)
        assert latch.is_set()
        assert signal.set_wakeup_fd(before) == before  # ours was taken back on return
    finally:
        signal.signal(signal.SIGUSR1, previous)
        parked.set()
        other.join()
        latch.close()
