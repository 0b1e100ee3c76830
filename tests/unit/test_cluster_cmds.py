"""CLUSTER KEYSLOT against Redis's own values, and the CLUSTER replies'
shapes (RESP2 and RESP3) from a fixed topology through a real Session."""

from __future__ import annotations

from typing import Any

import pytest

import makod.commands  # noqa: F401  (fills the command table)
from makod.cluster_view import node_hex_id, shard_hex_id
from makod.kv.hashslot import key_slot
from resp.session import Session
from resp.topology import NodeView, ShardView, Topology


def _node(name: str, port: int, master: bool, myself: bool = False) -> NodeView:
    return NodeView(node_hex_id("c", name), "127.0.0.1", port, port + 10000, master, myself)


TOPO = Topology(
    shards=[
        ShardView(shard_hex_id("c", 0), [(0, 8191)], [_node("s0r1", 7001, True), _node("s0r0", 7000, False, True)], 3),
        ShardView(shard_hex_id("c", 1), [(8192, 16383)], [_node("s1r0", 7002, True), _node("s1r1", 7003, False)], 1),
    ],
    my_id=node_hex_id("c", "s0r0"),
    my_shard_id=shard_hex_id("c", 0),
    current_epoch=3,
    my_epoch=3,
)


class _Host:
    requirepass = None
    databases = 16

    def __init__(self) -> None:
        self.keys = {5: [b"a", b"b", b"c"]}

    def now_ms(self) -> int:
        return 0

    def submit(self, session: Any, token: int, request: Any) -> Any:
        raise AssertionError("CLUSTER never reaches the data path")

    def cluster_topology(self, tls: bool) -> Topology:
        return TOPO

    def count_slot_keys(self, db: int, slot: int) -> int:
        return len(self.keys.get(slot, []))

    def slot_keys(self, db: int, slot: int, limit: int) -> list[bytes]:
        return self.keys.get(slot, [])[:limit]


def call(*args: str | bytes, proto: int = 2) -> bytes:
    s = Session(_Host(), 1)
    s.proto = proto
    argv = [a.encode() if isinstance(a, str) else a for a in args]
    s.feed(b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv))
    return s.take_output()


def test_keyslot_matches_redis() -> None:
    # Values from Redis's documentation and `redis-cli CLUSTER KEYSLOT`.
    assert key_slot(b"foo") == 12182
    assert key_slot(b"somekey") == 11058
    assert key_slot(b"{user1000}.following") == key_slot(b"{user1000}.followers") == key_slot(b"user1000")
    assert key_slot(b"foo{}{bar}") == key_slot(b"foo{}{bar}")  # empty tag: the whole key is hashed
    assert key_slot(b"foo{{bar}}zap") == key_slot(b"{bar")
    assert call("CLUSTER", "KEYSLOT", "foo") == b":12182\r\n"
    assert call("cluster", "keyslot", "{user1000}.following") == call("CLUSTER", "KEYSLOT", "{user1000}.followers")


def test_node_ids_are_stable_hex() -> None:
    a = node_hex_id("c", "s0r0")
    assert a == node_hex_id("c", "s0r0") and len(a) == 40 and int(a, 16) >= 0
    assert a != node_hex_id("c", "s0r1") and a != node_hex_id("d", "s0r0")


def test_errors_are_redis_texts() -> None:
    assert call("CLUSTER", "nope") == b"-ERR unknown subcommand 'nope'. Try CLUSTER HELP.\r\n"
    assert call("CLUSTER", "KEYSLOT") == b"-ERR wrong number of arguments for 'cluster|keyslot' command\r\n"
    assert call("CLUSTER", "COUNTKEYSINSLOT", "x") == b"-ERR value is not an integer or out of range\r\n"
    assert call("CLUSTER", "COUNTKEYSINSLOT", "16384") == b"-ERR Invalid slot\r\n"
    assert call("CLUSTER", "GETKEYSINSLOT", "1", "-1") == b"-ERR Invalid slot or number of keys\r\n"
    assert call("CLUSTER", "GETKEYSINSLOT", "-1", "1") == b"-ERR Invalid slot or number of keys\r\n"


def test_keys_in_slot() -> None:
    assert call("CLUSTER", "COUNTKEYSINSLOT", "5") == b":3\r\n"
    assert call("CLUSTER", "COUNTKEYSINSLOT", "6") == b":0\r\n"
    assert call("CLUSTER", "GETKEYSINSLOT", "5", "2") == b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"


def test_slots_shape() -> None:
    master0 = node_hex_id("c", "s0r1").encode()
    out = call("CLUSTER", "SLOTS")
    assert out.startswith(b"*2\r\n*4\r\n:0\r\n:8191\r\n*4\r\n$9\r\n127.0.0.1\r\n:7001\r\n$40\r\n" + master0 + b"\r\n*0\r\n")
    assert b"%0\r\n" in call("CLUSTER", "SLOTS", proto=3)  # RESP3: the metadata is an empty map


def test_nodes_lines() -> None:
    text = call("CLUSTER", "NODES").decode()
    lines = text.split("\r\n", 1)[1].strip("\r\n").split("\n")
    assert len(lines) == 4
    by_port = {line.split()[1].split("@")[0]: line.split() for line in lines}
    m0 = by_port["127.0.0.1:7001"]
    assert m0[2] == "master" and m0[3] == "-" and m0[6] == "3" and m0[7] == "connected" and m0[8:] == ["0-8191"]
    me = by_port["127.0.0.1:7000"]
    assert me[1] == "127.0.0.1:7000@17000" and me[2] == "myself,slave" and me[3] == m0[0] and len(me) == 8
    assert call("CLUSTER", "NODES", proto=3).startswith(b"=")  # verbatim text, as Redis 7


def test_info_shards_and_myid() -> None:
    info = call("CLUSTER", "INFO").decode()
    for field in ("cluster_state:ok", "cluster_slots_assigned:16384", "cluster_slots_ok:16384",
                  "cluster_known_nodes:4", "cluster_size:2", "cluster_current_epoch:3", "cluster_my_epoch:3"):
        assert field + "\r\n" in info
    assert call("CLUSTER", "MYID") == b"$40\r\n" + node_hex_id("c", "s0r0").encode() + b"\r\n"
    shards = call("CLUSTER", "SHARDS", proto=3)
    assert shards.startswith(b"*2\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:8191\r\n$5\r\nnodes\r\n*2\r\n%7\r\n")
    assert b"$4\r\nrole\r\n$6\r\nmaster\r\n" in shards and b"$6\r\nhealth\r\n$6\r\nonline\r\n" in shards


@pytest.mark.parametrize("cmd", ["READONLY", "READWRITE"])
def test_readonly_readwrite(cmd: str) -> None:
    assert call(cmd) == b"+OK\r\n"


def test_command_table_entries() -> None:
    out = call("COMMAND", "INFO", "cluster", "readonly")
    assert b"cluster|slots" in out and b"readonly" in out
    assert call("COMMAND", "DOCS", "cluster").count(b"keyslot") == 1
