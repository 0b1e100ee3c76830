"""Damaged files on disk: detected when read, never served, repaired from peers
when they can be, and otherwise one clear line at start instead of a traceback."""

from __future__ import annotations

import glob
import os
import time

from tests.integration.cluster_util import makoctl, wait_for

VALUE = b"MARK" * 64


def _flip_every_copy(path: str, needle: bytes) -> int:
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        hits, at = 0, data.find(needle)
        while at >= 0:
            data[at + 10] ^= 0x01
            hits += 1
            at = data.find(needle, at + 1)
        f.seek(0)
        f.write(data)
    return hits


def _lmdb(cluster, name: str, part: str) -> str:
    return os.path.join(cluster.data_dir, name, "lmdb", part, "data.mdb")


def _write_and_checkpoint(cluster) -> dict[bytes, bytes]:
    c = cluster.client(cluster.leader())
    data = {f"key{i}".encode(): VALUE + str(i).encode() for i in range(40)}
    for key, value in data.items():  # one slot each: the log passes log_retain_slots
        c.set(key, value)
    time.sleep(1.0)  # several checkpoints (interval 100 ms) on every replica
    return data


def _start_fails(cluster, name: str) -> str:
    proc = makoctl("cluster", "restart", name, "--data-dir", cluster.data_dir, check=False, timeout=60)
    assert proc.returncode != 0
    return cluster.log(name)


def test_a_bit_flip_in_a_followers_state_is_rebuilt_from_its_peers(make_cluster):
    # The log keeps 16 slots, so the state cannot come back from the victim's
    # own log: it must come from a peer's snapshot.
    cluster = make_cluster(replicas=3, config={"checkpoint_interval_ms": 100, "leader_datacenter": "none",
                                               "log_retain_slots": 16})
    data = _write_and_checkpoint(cluster)
    leader = cluster.leader()
    victim = next(n for n in cluster.names if n != leader)
    cluster.kill(victim)
    assert _flip_every_copy(_lmdb(cluster, victim, "state"), VALUE) >= 1
    cluster.restart(victim)
    wait_for(lambda: "installed a snapshot" in cluster.log(victim), timeout=30, what="the rebuilt state")
    log_text = cluster.log(victim)
    assert "fails its checksum" in log_text and "moved the damaged state" in log_text
    assert glob.glob(os.path.join(cluster.data_dir, victim, "lmdb", "state.damaged-*"))
    # The victim now leads and serves every value intact.
    makoctl("cluster", "failover", "--shard", "0", "--to", victim, "--data-dir", cluster.data_dir)
    c = cluster.client(victim)
    assert c.mget(list(data)) == list(data.values())
    assert "Traceback" not in cluster.log(victim)


def test_a_bit_flip_on_a_lone_replica_stops_it_with_one_clear_line(make_cluster):
    cluster = make_cluster(replicas=1, config={"checkpoint_interval_ms": 100})
    _write_and_checkpoint(cluster)
    name = cluster.names[0]
    cluster.kill(name)
    _flip_every_copy(_lmdb(cluster, name, "state"), VALUE)
    text = _start_fails(cluster, name)
    assert "fails its checksum" in text and "no other replica to rebuild it from" in text
    assert "state/data.mdb" in text
    assert "Traceback" not in text


def test_a_truncated_log_refuses_to_start(make_cluster):
    cluster = make_cluster(replicas=3, config={"checkpoint_interval_ms": 100, "leader_datacenter": "none"})
    data = _write_and_checkpoint(cluster)
    victim = next(n for n in cluster.names if n != cluster.leader())
    cluster.kill(victim)
    path = _lmdb(cluster, victim, "log")
    os.truncate(path, os.path.getsize(path) // 3)
    text = _start_fails(cluster, victim)
    assert "truncated" in text and "log/data.mdb" in text
    assert "Traceback" not in text
    # The rest of the shard goes on.
    c = cluster.client(cluster.leader())
    assert c.mget(list(data)) == list(data.values())


def test_a_missing_log_refuses_to_start(make_cluster):
    cluster = make_cluster(replicas=3, config={"checkpoint_interval_ms": 100, "leader_datacenter": "none"})
    _write_and_checkpoint(cluster)
    victim = next(n for n in cluster.names if n != cluster.leader())
    cluster.kill(victim)
    for f in glob.glob(os.path.join(cluster.data_dir, victim, "lmdb", "log", "*")):
        os.remove(f)
    os.rmdir(os.path.join(cluster.data_dir, victim, "lmdb", "log"))
    text = _start_fails(cluster, victim)
    assert "lost its Paxos log and must not vote" in text
    assert "Traceback" not in text
