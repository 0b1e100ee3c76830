"""What MAKO STATUS tells of one replica: role, log positions, watermark,
speculation and certification counts."""

from __future__ import annotations

from typing import Any

from makod.core.paxos import LEADER


def replica_status(replica: Any) -> dict[str, Any]:
    """MAKO STATUS's replica fields (ReplicaCore.status)."""
    p = replica.paxos
    epoch, w, closed, _ = replica.wm.snapshot(replica.shard)
    info = {
        "shard": replica.shard,
        "role": p.role,
        "ballot": p.promised,
        "epoch": replica.epoch if replica.serving else None,
        "leader": p.known_leader(),
        "last_index": p.last_slot,
        "commit_index": p.commit,
        "applied_index": replica.applied_slot,
        "first_index": p.first_slot,
        "serving": replica.serving,
        "lease_valid": p.lease_valid(),
        "clock": replica.clock,
        "watermark": w,
        "closed_epochs": len(closed),
        "keys": replica.ks.user_key_count(),
        "expires": replica.ks.expires_count,
        "inflight_batches": len(replica.inflight),
        "speculative_txns": len(replica.txns),
        "unresolved_slots": len(replica.unresolved),
        "locks": len(replica.locks),
        "prepared": len(replica.prepared),
        "rolled_back": len(replica.rolled_back_versions),
    }
    if p.role == LEADER:
        info["follower_match"] = {str(k): v for k, v in p.match.items()}
    return info
