"""Client-side caching's wiring into the node: the tracking table of its
clients (resp/tracking.py) and the peer protocol that tells it of changes
made elsewhere (makod/net/tracking_sync.py). A mixin of ``makod.server.Node``,
kept apart so the server module stays the event loop's wiring."""

from __future__ import annotations

import random
from typing import Any

from makod.kv.notify import TRACKING_CLASS
from makod.net.tracking_sync import TrackingAck, TrackingInterest, TrackingInvalidate, TrackingPeers
from resp.tracking import TrackingTable


class NodeTracking:
    core: Any
    cfg: Any
    me: Any
    clients: dict
    peers: Any
    wake: Any

    def setup_tracking(self) -> None:
        self.tracking = TrackingTable(self._find_session, self.wake)
        self.tracking.started = self._tracking_started
        self.tracking_peers = TrackingPeers(
            self.me.node_id, [r.node_id for r in self.cfg.replicas if r.node_id != self.me.node_id],
            random.SystemRandom().getrandbits(62), self.tracking, self.peers.send, self._tracking_changed,
        )
        peers = self.tracking_peers
        self._tracking_handlers = {
            TrackingInvalidate: peers.on_invalidate, TrackingInterest: peers.on_interest, TrackingAck: peers.on_ack,
        }

    def on_tracking_message(self, msg: Any) -> bool:
        """Handle a peer message of the tracking protocol; False if it is not one."""
        handler = self._tracking_handlers.get(type(msg))
        if handler is None:
            return False
        handler(msg)
        return True

    def invalidate_changed(self, events: list[tuple]) -> None:
        """Released transactions' changed keys (kv/notify.py tracking_events):
        to this node's tracking clients and to the peers whose clients track."""
        keys: dict[bytes, None] = {}
        flush = False
        for event in events:
            if event[1] == TRACKING_CLASS:
                if event[2] == "flush":
                    flush = True
                else:
                    keys[event[3]] = None
        if not keys and not flush:
            return
        changed = list(keys)
        self.tracking_peers.on_changes(changed, flush)
        if self.tracking.clients:
            if changed:
                self.tracking.invalidate(changed)
            if flush:
                self.tracking.flush_all()

    def _find_session(self, client_id: int) -> Any:
        proto = self.clients.get(client_id)
        return None if proto is None else proto.session

    def _tracking_started(self) -> None:
        """A first client tracks: peers hear of it now, not at the next refresh."""
        self.tracking_peers.refresh()
        self._tracking_changed()

    def _tracking_changed(self) -> None:
        self.core.set_track_writes(self.tracking_peers.wants_changes)
