"""A coordinator's side of slot moves (docs/RESHARDING.md): a transaction
whose slots changed owner while it ran is retried by the corrected map (a
mixin of Coordinator, which keeps the state and ``_abort``)."""

from __future__ import annotations

from typing import Any

from makod.core.coord_txn import DistTxn
from makod.core.slots import MOVED, parse_moved
from makod.kv import errors


class SlotMoves:
    node: Any  # (and Coordinator's _abort)

    def _wait_out_move(self, txn: DistTxn, retry: bool, error: str | None) -> tuple[bool, str | None]:
        """(retry, error) for an attempt that met a moving slot. A move's
        steps take a few replication rounds: wait them out (up to the queue
        timeout, as a request waiting for a leader does) without using up
        the attempts meant for conflicts."""
        node = self.node
        if txn.moving_since is None:
            txn.moving_since = node.mono_ms
        if node.mono_ms - txn.moving_since < node.cfg.queue_timeout_ms:
            txn.attempt -= 1
            return retry, error
        if error is None:
            return False, errors.TRYAGAIN_SLOT_MOVING
        return retry, error

    def _slots_moved(self, txn: DistTxn) -> bool:
        """Did a slot's owner change (here) since this attempt routed its keys?
        Then it may have read or be about to lock at the wrong shard: retry."""
        if self.node.slots.current() == txn.slots_version:
            return False
        self._abort(txn, retry=True, cause="slot_moving")
        return True

    def _refused_moved(self, txn: DistTxn, msg: Any) -> bool:
        """A shard refused keys it no longer (or not yet) holds: learn where
        they went, and retry by the corrected map."""
        if not msg.reason.startswith(MOVED):
            return False
        slots = self.node.slots
        for slot, shard in parse_moved(msg.reason):
            if shard >= 0:
                slots.learn(slot, slot, shard)
        self._abort(txn, retry=True, cause="slot_moving")
        return True
