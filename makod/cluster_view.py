"""The node's side of the CLUSTER commands: its topology as Redis Cluster
clients expect it, and the keys of one hash slot.

Each shard's current leader is a master and its other replicas are that
master's replicas. A follower knows its own shard's leader from Paxos and the
other shards' from the leaders' watermark gossip (core/node.py), so every
node's answer follows leadership changes within a gossip round. Node and
shard ids are sha1 hashes of the cluster's and the replica's (shard's) names:
stable across restarts and the same on every node, as clients compare them.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Iterator

from makod.core.messages import ballot_round
from makod.kv import dbs
from makod.kv.hashslot import key_slot
from resp.topology import NodeView, ShardView, Topology

if TYPE_CHECKING:
    from makod.config import ReplicaConfig
    from makod.server import Node


def node_hex_id(cluster_name: str, replica_name: str) -> str:
    return hashlib.sha1(f"makodb:{cluster_name}:node:{replica_name}".encode()).hexdigest()


def shard_hex_id(cluster_name: str, shard: int) -> str:
    return hashlib.sha1(f"makodb:{cluster_name}:shard:{shard}".encode()).hexdigest()


def topology(node: "Node", tls: bool) -> Topology:
    cfg, core, me = node.cfg, node.core, node.me
    now_ms = node.now_ms()
    shards = []
    for shard in cfg.shards:
        leader = core.leader_of(shard.id)
        leader_known = leader is not None
        if not leader_known:
            preferred = cfg.preferred_leader(shard.id)
            leader = preferred if preferred is not None else next(r.node_id for r in shard.replicas if r.voter)

        def view(rep: "ReplicaConfig") -> NodeView:
            myself = rep.node_id == me.node_id
            return NodeView(
                node_id=node_hex_id(cfg.name, rep.name),
                host=rep.host,
                port=rep.tls_port if tls and rep.tls_port else rep.resp_port,
                bus_port=rep.peer_port,
                master=rep.node_id == leader,
                myself=myself,
                replication_offset=core.applied_slot if myself else 0,
                pong_recv_ms=0 if myself else now_ms,
            )

        nodes = sorted((view(r) for r in shard.replicas), key=lambda n: not n.master)
        shards.append(ShardView(shard_hex_id(cfg.name, shard.id), core.slots.ranges_of(shard.id), nodes,
                                ballot_round(core.leader_ballot(shard.id)), leader_known))
    sent = sum(link["sent"] for link in node.peers.stats().values())
    stats = [("cluster_stats_messages_sent", sent), ("cluster_stats_messages_received", node.peer_messages_received),
             ("total_cluster_links_buffer_limit_exceeded", 0)]
    return Topology(
        shards=shards,
        my_id=node_hex_id(cfg.name, me.name),
        my_shard_id=shard_hex_id(cfg.name, me.shard),
        current_epoch=max(sh.config_epoch for sh in shards),
        my_epoch=shards[me.shard].config_epoch,
        tls=tls,
        extra_info=stats,
    )


def _slot_keys(data: dict, db: int, slot: int, now_ms: int) -> Iterator[bytes]:
    """The user keys of database ``db`` in ``slot`` that a read would still see.

    A scan of the whole keyspace: Redis keeps a per-slot index, makodb does
    not (these commands serve resharding tools, not the data path)."""
    for ikey, rec in data.items():
        if rec.expire_ms is not None and rec.expire_ms <= now_ms:
            continue
        key_db, key = dbs.decode(ikey)
        if key_db == db and key_slot(key) == slot:
            yield key


def count_slot_keys(node: "Node", db: int, slot: int) -> int:
    return sum(1 for _ in _slot_keys(node.core.ks.data, db, slot, node.now_ms()))


def slot_keys(node: "Node", db: int, slot: int, limit: int) -> list[bytes]:
    out: list[bytes] = []
    if limit == 0:
        return out
    for key in _slot_keys(node.core.ks.data, db, slot, node.now_ms()):
        out.append(key)
        if len(out) == limit:
            break
    return out
