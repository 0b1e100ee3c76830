"""CLUSTER, READONLY and READWRITE: what Redis Cluster clients ask at startup.

redis-py's RedisCluster, ``redis-cli -c`` and ``redis-cli --cluster check``
learn which node serves which slot from CLUSTER SLOTS / SHARDS / NODES; the
node answers from its topology (resp/topology.py: each shard's current leader
is a master, its followers are replicas). Reply shapes and error texts are
Redis 7's (src/cluster.c). Any node still serves any key by forwarding, so a
client that routes by a stale map is slower, never wrong (docs/ARCHITECTURE.md,
"Redis Cluster clients").
"""

from __future__ import annotations

from typing import Any

from makod.kv import errors
from makod.kv.args import parse_int
from makod.kv.errors import CommandError
from makod.kv.hashslot import NUM_SLOTS, key_slot
from makod.kv.table import command, container, subcommand
from resp.replies import OK, Map, Verbatim
from resp.topology import NodeView, ShardView, Topology


def _topology(session: Any) -> Topology:
    return session.host.cluster_topology(getattr(session, "tls", False))


def _int_arg(arg: bytes) -> int:
    value = parse_int(arg)
    if value is None:
        raise CommandError(errors.NOT_INTEGER)
    return value


# -- INFO ----------------------------------------------------------------------------------
def _cluster_info(session: Any, argv: list[bytes]) -> Any:
    topo = _topology(session)
    failing = sum(hi - lo + 1 for sh in topo.shards if not sh.leader_known for lo, hi in sh.slot_ranges)
    assigned = sum(hi - lo + 1 for sh in topo.shards for lo, hi in sh.slot_ranges)
    fields: list[tuple[str, Any]] = [
        ("cluster_state", "ok" if failing == 0 and assigned == NUM_SLOTS else "fail"),
        ("cluster_slots_assigned", assigned),
        ("cluster_slots_ok", assigned - failing),
        ("cluster_slots_pfail", failing),
        ("cluster_slots_fail", 0),
        ("cluster_known_nodes", len(topo.nodes)),
        ("cluster_size", len(topo.shards)),
        ("cluster_current_epoch", topo.current_epoch),
        ("cluster_my_epoch", topo.my_epoch),
        *topo.extra_info,
    ]
    return Verbatim("".join(f"{k}:{v}\r\n" for k, v in fields).encode())


# -- SLOTS / SHARDS / NODES -------------------------------------------------------------------
def _slots_node(node: NodeView) -> list:
    # [ip, port, id, {extra networking metadata}]: Redis 7 sends an empty map
    # when the node has no hostname (an empty array in RESP2).
    return [node.host, node.port, node.node_id, Map([])]


def _cluster_slots(session: Any, argv: list[bytes]) -> Any:
    topo = _topology(session)
    entries = [
        (lo, [lo, hi, *(_slots_node(n) for n in shard.nodes)])
        for shard in topo.shards
        for lo, hi in shard.slot_ranges
    ]
    return [entry for _, entry in sorted(entries, key=lambda e: e[0])]


def _shard_node(node: NodeView, tls: bool, leader_known: bool) -> Map:
    healthy = leader_known or not node.master
    return Map(
        [
            ("id", node.node_id),
            ("tls-port" if tls else "port", node.port),
            ("ip", node.host),
            ("endpoint", node.host),
            ("role", "master" if node.master else "replica"),
            ("replication-offset", node.replication_offset),
            ("health", "online" if healthy else "failed"),
        ]
    )


def _cluster_shards(session: Any, argv: list[bytes]) -> Any:
    topo = _topology(session)
    return [
        Map(
            [
                ("slots", [bound for lo, hi in shard.slot_ranges for bound in (lo, hi)]),
                ("nodes", [_shard_node(n, topo.tls, shard.leader_known) for n in shard.nodes]),
            ]
        )
        for shard in topo.shards
    ]


def node_line(node: NodeView, shard: ShardView) -> str:
    """One CLUSTER NODES line: id addr flags master ping pong epoch link slots."""
    flags = ("myself," if node.myself else "") + ("master" if node.master else "slave")
    if node.master and not shard.leader_known:
        flags += ",fail?"
    master = "-" if node.master else shard.master.node_id
    slots = [f"{lo}-{hi}" if hi > lo else str(lo) for lo, hi in shard.slot_ranges] if node.master else []
    return " ".join(
        [node.node_id, f"{node.host}:{node.port}@{node.bus_port}", flags, master, "0",
         str(node.pong_recv_ms), str(shard.config_epoch), "connected", *slots]
    )


def _cluster_nodes(session: Any, argv: list[bytes]) -> Any:
    topo = _topology(session)
    text = "".join(node_line(n, shard) + "\n" for shard in topo.shards for n in shard.nodes)
    return Verbatim(text.encode())


def _cluster_myid(session: Any, argv: list[bytes]) -> Any:
    return _topology(session).my_id


def _cluster_myshardid(session: Any, argv: list[bytes]) -> Any:
    return _topology(session).my_shard_id


# -- keys and slots ---------------------------------------------------------------------------
def _cluster_keyslot(session: Any, argv: list[bytes]) -> Any:
    return key_slot(argv[2])


def _cluster_countkeysinslot(session: Any, argv: list[bytes]) -> Any:
    slot = _int_arg(argv[2])
    if not 0 <= slot < NUM_SLOTS:
        raise CommandError(errors.INVALID_SLOT)
    # Only this replica's keyspace, as Redis counts only its own keys: a slot
    # of another shard answers 0 here (see "Redis Cluster clients").
    return session.host.count_slot_keys(session.db, slot)


def _cluster_getkeysinslot(session: Any, argv: list[bytes]) -> Any:
    slot = _int_arg(argv[2])
    limit = _int_arg(argv[3])
    if not 0 <= slot < NUM_SLOTS or limit < 0:
        raise CommandError(errors.INVALID_SLOT_OR_COUNT)
    return session.host.slot_keys(session.db, slot, limit)


def _cluster_help(session: Any, argv: list[bytes]) -> Any:
    return [
        "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "COUNTKEYSINSLOT <slot>",
        "    Return the number of keys in <slot>.",
        "GETKEYSINSLOT <slot> <count>",
        "    Return key names stored by current node in a slot.",
        "INFO",
        "    Return information about the cluster.",
        "KEYSLOT <key>",
        "    Return the hash slot for <key>.",
        "MYID",
        "    Return the node id.",
        "MYSHARDID",
        "    Return the node's shard id.",
        "NODES",
        "    Return cluster configuration seen by node. Output format:",
        "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
        "SHARDS",
        "    Return information about slot range mappings and the nodes associated with them.",
        "SLOTS",
        "    Return information about slots range mappings. Each range is made of:",
        "    start, end, master and replicas IP addresses, ports and ids",
        "HELP",
        "    Print this help.",
    ]


# Flags as Redis 7 declares them (src/commands/cluster-*.json): only HELP
# also runs while loading.
_TOPO = "stale"
container(
    "cluster",
    scope="server",
    group="cluster",
    summary="A container for Redis Cluster commands.",
    since="3.0.0",
    subcommands=[
        subcommand("cluster", "info", 2, _cluster_info, "stale", scope="server", group="cluster", summary="Returns information about the state of a node.", since="3.0.0"),
        subcommand("cluster", "slots", 2, _cluster_slots, _TOPO, scope="server", group="cluster", summary="Returns the mapping of cluster slots to nodes.", since="3.0.0", complexity="O(N) where N is the total number of Cluster nodes"),
        subcommand("cluster", "shards", 2, _cluster_shards, _TOPO, scope="server", group="cluster", summary="Returns the mapping of cluster slots to shards.", since="7.0.0", complexity="O(N) where N is the total number of cluster nodes"),
        subcommand("cluster", "nodes", 2, _cluster_nodes, _TOPO, scope="server", group="cluster", summary="Returns the cluster configuration for a node.", since="3.0.0", complexity="O(N) where N is the total number of Cluster nodes"),
        subcommand("cluster", "myid", 2, _cluster_myid, _TOPO, scope="server", group="cluster", summary="Returns the ID of a node.", since="3.0.0"),
        subcommand("cluster", "myshardid", 2, _cluster_myshardid, _TOPO, scope="server", group="cluster", summary="Returns the shard ID of a node.", since="7.2.0"),
        subcommand("cluster", "keyslot", 3, _cluster_keyslot, "stale", scope="server", group="cluster", summary="Returns the hash slot for a key.", since="3.0.0", complexity="O(N) where N is the number of bytes in the key"),
        subcommand("cluster", "countkeysinslot", 3, _cluster_countkeysinslot, "stale", scope="server", group="cluster", summary="Returns the number of keys in a hash slot.", since="3.0.0", complexity="O(N) where N is the number of keys this replica holds (Redis: O(1))"),
        subcommand("cluster", "getkeysinslot", 4, _cluster_getkeysinslot, "stale", scope="server", group="cluster", summary="Returns the key names in a hash slot.", since="3.0.0", complexity="O(N) where N is the number of keys this replica holds"),
        subcommand("cluster", "help", 2, _cluster_help, "loading stale", scope="server", group="cluster", summary="Returns helpful text about the different subcommands.", since="5.0.0"),
    ],
)


# READONLY / READWRITE: a cluster client sends READONLY before reading from
# replicas. Every node here serves every key (reads on followers go through
# the leader's lease, docs/ARCHITECTURE.md), so both only answer OK.
@command("readonly", 1, "fast loading stale", scope="session", group="cluster", summary="Enables read-only queries for a connection to a Redis Cluster replica node.", since="3.0.0")
def readonly(session: Any, argv: list[bytes]) -> Any:
    return OK


@command("readwrite", 1, "fast loading stale", scope="session", group="cluster", summary="Enables read-write queries for a connection to a Redis Cluster replica node.", since="3.0.0")
def readwrite(session: Any, argv: list[bytes]) -> Any:
    return OK
