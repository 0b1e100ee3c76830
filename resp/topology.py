"""The cluster as Redis Cluster clients see it: what the node hands the
CLUSTER commands (resp/commands/cluster.py) through its host interface.

Plain values, so the RESP layer formats replies without knowing shards,
Paxos or leaders: the node (makod/cluster_view.py) maps each shard's current
leader to a master and its other replicas to that master's replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NodeView:
    node_id: str  # 40 hex chars, the same on every node
    host: str
    port: int  # the RESP port clients use (the TLS port when the asking client is on TLS)
    bus_port: int  # the replica's peer port, in Redis's "cluster bus port" field
    master: bool
    myself: bool
    replication_offset: int = 0
    pong_recv_ms: int = 0  # Redis's last-pong time (ms since the epoch); 0 for myself


@dataclass(frozen=True)
class ShardView:
    shard_id: str  # 40 hex chars (Redis 7.2's shard id)
    slot_ranges: list[tuple[int, int]]  # inclusive
    nodes: list[NodeView]  # the master first
    config_epoch: int
    # False: no node of this shard is known to lead right now; its first
    # node stands in as master (any node forwards any key, so clients still
    # reach the data) and CLUSTER INFO reports the shard's slots as failing.
    leader_known: bool = True

    @property
    def master(self) -> NodeView:
        return self.nodes[0]


@dataclass(frozen=True)
class Topology:
    shards: list[ShardView]
    my_id: str
    my_shard_id: str
    current_epoch: int
    my_epoch: int
    tls: bool = False  # ports are TLS ports
    extra_info: list[tuple[str, int]] = field(default_factory=list)

    @property
    def nodes(self) -> list[NodeView]:
        return [n for shard in self.shards for n in shard.nodes]
