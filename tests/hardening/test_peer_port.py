"""The peer port is closed to anyone without the cluster secret, and a member's
malformed message closes its link instead of touching a core.

Every test ends by checking that nothing changed and every node is up."""

from __future__ import annotations

import os
import random
import socket
import stat
import struct
import time

import msgpack
import pytest

from makod.config import load_cluster_secret, load_config_file
from makod.core.messages import to_wire
from makod.core.paxos import MAX_SLOTS_AHEAD
from makod.core.messages import Accept
from makod.core.requests import ForwardRequest
from makod.net.peer_auth import Dialer, FrameReader, HANDSHAKE_MAX_BYTES

from tests.integration.cluster_util import wait_for


def _config(cluster):
    return load_config_file(os.path.join(cluster.data_dir, "cluster.yaml"))


def _peer_ports(cluster) -> list[int]:
    return [r.peer_port for r in _config(cluster).replicas]


def _rss_kb(cluster, name: str) -> int:
    pid = int(open(os.path.join(cluster.data_dir, name, "makod.pid")).read())
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _closed_by_peer(sock: socket.socket, timeout: float = 10) -> bool:
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def _assert_unchanged(cluster, expected: dict[bytes, bytes]) -> None:
    for name in cluster.names:
        c = cluster.client(name)
        assert c.ping() is True, f"{name} is down"
    leader = cluster.client(cluster.leader())
    for key, value in expected.items():
        assert leader.get(key) == value
    for name in cluster.names:
        assert "Traceback" not in cluster.log(name), cluster.log(name)[-3000:]


def _seed_data(cluster) -> dict[bytes, bytes]:
    c = cluster.client(cluster.leader())
    data = {f"keep:{i}".encode(): f"v{i}".encode() for i in range(20)}
    c.mset(data)
    return data


def test_secret_file_and_data_dir_are_private(trio):
    cfg = _config(trio)
    path = os.path.join(trio.data_dir, "cluster.secret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(trio.data_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(trio.data_dir, "cluster.yaml")).st_mode) == 0o600
    assert len(load_cluster_secret(cfg)) >= 32


def test_forged_messages_without_the_secret_change_nothing(trio):
    data = _seed_data(trio)
    flush = ForwardRequest(0, 0, 1, [0, [[b"FLUSHALL"]], None, True], 1 << 40)
    accept = Accept(0, 1, (1 << 63) - 1, 1, [b"x"], 1 << 40, 1)
    for port in _peer_ports(trio):
        for payload in (msgpack.packb(to_wire(flush)), msgpack.packb(to_wire(accept))):
            # Old, unframed msgpack; then the same inside a length prefix.
            for wire in (payload, struct.pack(">I", len(payload)) + payload):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(wire)
                    assert _closed_by_peer(s), f"peer port {port} kept a forged connection open"
    time.sleep(0.3)
    _assert_unchanged(trio, data)


def test_a_wrong_secret_fails_the_handshake_both_ways(trio):
    data = _seed_data(trio)
    port = _peer_ports(trio)[0]
    dialer = Dialer(b"not-the-cluster-secret-at-all!!", 1, 0)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(dialer.hello())
        reader = FrameReader(HANDSHAKE_MAX_BYTES)
        s.settimeout(5)
        reader.feed(s.recv(4096))
        challenge = reader.pop()
        with pytest.raises(Exception, match="does not know the cluster secret"):
            dialer.on_challenge(challenge)  # we detect the listener does not share our secret
        # Answer anyway with a made-up proof: the listener closes the link.
        s.sendall(struct.pack(">I", 32) + os.urandom(32))
        assert _closed_by_peer(s)
    _assert_unchanged(trio, data)


def test_random_frames_and_huge_lengths_neither_crash_nor_bloat_a_node(trio):
    data = _seed_data(trio)
    rng = random.Random(7)
    rss_before = {n: _rss_kb(trio, n) for n in trio.names}
    ports = _peer_ports(trio)
    for i in range(300):
        port = ports[i % len(ports)]
        kind = i % 4
        if kind == 0:
            wire = rng.randbytes(rng.randrange(1, 4096))
        elif kind == 1:
            wire = struct.pack(">I", 0xFFFFFFFF) + rng.randbytes(1000)  # claims a 4 GB frame
        elif kind == 2:
            wire = struct.pack(">I", 200) + rng.randbytes(200)  # a well-framed, wrong hello
        else:
            wire = msgpack.packb([rng.randrange(0, 60)] + [rng.randrange(-(1 << 63), 1 << 63) for _ in range(8)])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(wire)
                assert _closed_by_peer(s), f"connection {i} ({kind=}) left open"
        except (ConnectionResetError, BrokenPipeError):
            pass
    _assert_unchanged(trio, data)
    for name in trio.names:
        grown_mb = (_rss_kb(trio, name) - rss_before[name]) / 1024
        assert grown_mb < 64, f"{name} grew by {grown_mb:.0f} MB under peer garbage"


def _authenticated(cluster, port: int, my_id: int, peer_id: int) -> tuple[socket.socket, Dialer]:
    secret = load_cluster_secret(_config(cluster))
    dialer = Dialer(secret, my_id, peer_id)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(dialer.hello())
    reader = FrameReader(HANDSHAKE_MAX_BYTES)
    s.settimeout(5)
    while (challenge := reader.pop()) is None:
        reader.feed(s.recv(4096))
    s.sendall(dialer.on_challenge(challenge))
    return s, dialer


# Each case: the wire array a member (node ``me``) sends; ``other`` is a third node.
MALFORMED = {
    "huge-ballot": lambda me, other: to_wire(Accept(0, me, (1 << 63) - 1, 1, [b""], 0, 1)),
    "forged-src": lambda me, other: to_wire(Accept(0, other, 512 + other, 1, [b""], 0, 1)),
    "bad-shard": lambda me, other: to_wire(ForwardRequest(7, me, 1, [1, [b"k"]], 1)),
    "negative-slot": lambda me, other: to_wire(Accept(0, me, 512 + me, -5, [b""], 0, 1)),
    "unknown-type": lambda me, other: [999, 1, 2, 3],
    "short": lambda me, other: [3, 0, 1],
    "wrong-types": lambda me, other: [3, 0, me, "ballot", 1, "values", 0, 1],
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_members_malformed_message_closes_its_link(trio, case):
    data = _seed_data(trio)
    leader = trio.leader()
    replicas = _config(trio).replicas
    target = next(r for r in replicas if r.name != leader)
    me, other = [r.node_id for r in replicas if r.node_id != target.node_id]
    s, dialer = _authenticated(trio, target.peer_port, me, target.node_id)
    with s:
        s.sendall(dialer.seal(msgpack.packb(MALFORMED[case](me, other))))
        assert _closed_by_peer(s)
    _assert_unchanged(trio, data)
    assert "dropping peer connection" in trio.log(target.name)


def test_far_ahead_accepts_are_not_stored(trio):
    # A member (here: the test, holding the secret) that claims a huge slot
    # must not make a later leader fill 2^40 slots: the follower ignores it.
    data = _seed_data(trio)
    leader = trio.leader()
    target = next(r for r in _config(trio).replicas if r.name != leader)
    other = next(r for r in _config(trio).replicas if r.name not in (leader, target.name))
    s, dialer = _authenticated(trio, target.peer_port, other.node_id, target.node_id)
    with s:
        s.sendall(dialer.seal(msgpack.packb(to_wire(Accept(0, other.node_id, 1, 1 << 40, [b""], 0, 1)))))
        time.sleep(0.3)
    _assert_unchanged(trio, data)
    assert MAX_SLOTS_AHEAD < 1 << 40


def test_peer_listener_binds_only_the_configured_address(trio):
    port = _peer_ports(trio)[0]
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", port), timeout=2).close()
