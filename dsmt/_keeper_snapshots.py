"""The hub keeper's snapshot service: requests, the marker cut, answers (dsmt.snapshot).

:class:`SnapshotService` is a mixin of :class:`dsmt._keeper.Keeper` and of
nothing else; its methods run in the keeper's thread and use the keeper's
state: ``_pending`` (token -> ROUTER identity, request, deadline: waiting
for the marker), ``counters``, ``last_problem``, ``store``, ``stream_seq``,
``_max_snapshot``, ``_router``, ``_say`` (publish one of the hub's own
events) and ``_check_store``. The protocol itself (what a late joiner sends
and gets) is :mod:`dsmt.snapshot`'s.
"""

from __future__ import annotations

import time
from typing import Iterator

import zmq

from dsmt import snapshot
from dsmt.errors import CodecError
from dsmt.event import Event

BATCH = 512  # messages handled per socket per loop turn, so no socket starves (all the keeper's)
MARKER_TIMEOUT = 10.0  # seconds a snapshot request waits for its marker (a safety net)
MAX_PENDING = 1024  # snapshot requests waiting for their marker


def waiting(sock: zmq.Socket) -> Iterator[bytes]:
    """The frames already queued on ``sock``, at most :data:`BATCH` (a loop turn's share)."""
    for _ in range(BATCH):
        try:
            yield sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            return


class SnapshotService:
    """Snapshot requests on the keeper's ROUTER socket, answered at the marker's cut."""

    def _requests(self, router: zmq.Socket) -> None:
        for identity in waiting(router):
            frames = []  # at most MAX_REQUEST_FRAMES + 1 kept: enough to refuse the rest
            while router.getsockopt(zmq.RCVMORE):
                frame = router.recv()
                if len(frames) <= snapshot.MAX_REQUEST_FRAMES:
                    frames.append(frame)
            try:
                request = snapshot.parse_request(frames)
                if request.token in self._pending or len(self._pending) >= MAX_PENDING:
                    raise CodecError("too many snapshot requests waiting, or a token reused")
            except CodecError as exc:
                self.counters["bad_snapshot_requests"] += 1
                self.last_problem = f"snapshot request: {exc}"[:200]
                self._reply(router, identity,
                            snapshot.reply_error(frames[1] if len(frames) > 1 else b"", str(exc)))
                continue
            self.counters["snapshots"] += 1
            if request.sync_channel is None:  # no cut asked for: the store as it is now
                self._reply(router, identity, self._answer(request))
                continue
            # The cut: the marker goes out through the proxy like any event and
            # the store is read when it comes back on the stream. The proxy
            # sends the one stream to the keeper and to the subscriber in the
            # same order, so the subscriber sees the marker exactly after the
            # events the snapshot reflects (see dsmt.snapshot).
            self._pending[request.token] = (identity, request,
                                            time.monotonic() + MARKER_TIMEOUT)
            self._say(request.sync_channel, {"kind": "snapshot", "token": request.token})

    def _marker(self, event: Event) -> None:
        payload = event.payload
        if type(payload) is not dict or payload.get("kind") != "snapshot":
            return
        waiting = self._pending.pop(payload.get("token"), None)
        if waiting is not None:
            identity, request, _ = waiting
            self._reply(self._router, identity, self._answer(request))

    def _answer(self, request: snapshot.Request) -> list[bytes]:
        self._check_store()
        picked, truncated = self.store.select(request.prefixes, *self._max_snapshot)
        return snapshot.reply_ok(request, self.stream_seq, picked, truncated)

    def _expire(self, router: zmq.Socket, now: float) -> None:
        """Refuse requests whose marker never came back (the keeper's XPUB dropped it)."""
        for token, (identity, request, deadline) in list(self._pending.items()):
            if now >= deadline:
                del self._pending[token]
                self.counters["snapshot_markers_lost"] += 1
                self.last_problem = "a snapshot marker did not come back"
                self._reply(router, identity, snapshot.reply_error(
                    token.encode("ascii"), "the snapshot marker did not come back; retry"))

    def _reply(self, router: zmq.Socket, identity: bytes, reply: list[bytes]) -> None:
        try:
            router.send_multipart([identity, *reply], zmq.NOBLOCK)
        except zmq.Again:
            self.counters["snapshot_replies_dropped"] += 1
