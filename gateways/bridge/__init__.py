"""The PsEPR bridge: a sliver's hub channels out to PsEPR, leased PsEPR channels in.

One :class:`Bridge` actor per sliver, a child of the sliver's root
supervisor (DESIGN.md §4 "Bridge", §5)::

    hub --(export prefixes)--> HubReader -> Exporter/Outbox -> psepr.Client -> router
    hub <-- Importer (in the client's thread) <--(import leases)-- psepr.Client <- router

- **Export**: every hub event under an export prefix (the hub's retained
  snapshot first, when the bridge starts) is sent to the router as is: its
  sender, id, seq and epoch cross unchanged.
- **Import**: every event of an import lease is published on the hub
  unchanged (bus ``Publisher.send``).
- **No loops**: the identities (sender, id) of exported and imported events
  are remembered (the newest ``id_memory`` of each); an exported event that
  comes back from the router is not imported, and an imported event the hub
  reader then sees is not exported (see :mod:`gateways.bridge.importer`,
  :mod:`gateways.bridge.exporter`).
- **Disconnected**: the bridge keeps the newest retained event per key
  (compacted, counted) and queues non-retained events within the bound
  (oldest dropped first, counted, reported in ``inspect()`` and in the
  bridge's status); on reconnection it sends the queue and the whole
  current state (:mod:`gateways.bridge.outbox`).
- **Failover**: the PsEPR client tries the routers of the list in random
  order with exponential backoff (``reconnect_min`` .. ``reconnect_max``)
  and renegotiates every lease after a reconnection.
- **Resync** (a DSMT addition; PsEPR routers keep no state): a PsEPR client
  that joins late publishes an event of type :data:`RESYNC` on
  :data:`RESYNC_CHANNEL` with payload ``{"prefix": CHANNEL}``; every
  connected bridge re-sends its current retained state under that prefix.
  :func:`resync_request` makes such an event.

States, status and counters: :mod:`gateways.bridge.actor`. Configuration:
:class:`BridgeConfig`.

Known limits: a resync request is answered in full every time (no
rate limit); the current state is bounded by ``buffer_max_events`` keys, so
a sliver exporting more retained keys than that forgets the oldest ones for
re-sends (counted ``forgotten``).
"""

from typing import Any

from gateways.bridge.actor import Bridge, BridgeError
from gateways.bridge.config import BridgeConfig
from gateways.bridge.exporter import RESYNC, RESYNC_CHANNEL

__all__ = ["Bridge", "BridgeConfig", "BridgeError", "RESYNC", "RESYNC_CHANNEL",
           "resync_request"]


def resync_request(client: Any, prefix: str) -> Any:
    """A resync request event made by a PsEPR ``client`` for the state under ``prefix``."""
    return client.make(RESYNC_CHANNEL, RESYNC, {"prefix": prefix})
