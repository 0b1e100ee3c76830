"""Online membership changes on real processes (docs/MEMBERSHIP.md):
``makoctl cluster add-replica`` grows a 1x3 shard to four voters and
``remove-replica`` shrinks it back with a different replica gone, while
MULTI/EXEC bank transfers run, the leader is SIGKILLed during the
addition, and the new replica is SIGKILLed and restarted from its own
files. No acknowledged transfer is lost or applied twice, the balances
keep their total, and every replica ends with the same state."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time

import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.bank_load import replay_journal
from tests.integration.cluster_util import free_port_block, makoctl, wait_for

ACCOUNTS = [f"acct{i}" for i in range(6)]
INITIAL = 100


def _members(port: int) -> dict:
    with redis.Redis(port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0)) as c:
        return json.loads(c.execute_command("MAKO", "MEMBERS"))


def test_a_shard_grows_and_shrinks_under_transfers_and_kills(make_cluster):
    cluster = make_cluster(shards=1, replicas=3)
    ports = dict(cluster.ports)  # name -> RESP port, the new replica added below
    cluster.client().mset({a: INITIAL for a in ACCOUNTS})
    _bad_requests_get_clear_errors(cluster)
    acked: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def transferer(worker: int) -> None:
        rng = random.Random(worker)
        conn = None
        n = 0
        while not stop.is_set():
            if conn is None:
                with lock:
                    port = rng.choice(list(ports.values()))
                # No retries: a retried EXEC could apply a transfer twice unseen.
                conn = redis.Redis(port=port, socket_timeout=10, retry=Retry(NoBackoff(), 0))
            src, dst = rng.sample(ACCOUNTS, 2)
            tid = f"{worker}-{n}"
            try:
                pipe = conn.pipeline(transaction=True)
                pipe.decrby(src, 1).incrby(dst, 1).rpush(f"journal:{worker}", f"{tid}:{src}:{dst}")
                pipe.execute()
                acked.append(tid)
                n += 1
            except redis.RedisError:
                n += 1  # outcome unknown: not counted, and never reused
                conn.close()
                conn = None
                time.sleep(0.05)

    threads = [threading.Thread(target=transferer, args=(w,), daemon=True) for w in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(acked) >= 30, timeout=60, what="transfers before the changes")
        # Grow: add s0r3 while its leader is SIGKILLed mid-way.
        new_port = free_port_block(1)
        add = subprocess.Popen(
            [sys.executable, "-m", "makoctl.cli", "cluster", "add-replica", "--shard", "0", "--data-dir",
             cluster.data_dir, "--resp-port", str(new_port), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(0.7)
        leader = cluster.leader()
        cluster.kill(leader)
        time.sleep(1.0)
        cluster.restart(leader)
        out, err = add.communicate(timeout=150)
        assert add.returncode == 0, err
        added = json.loads(out.strip().splitlines()[-1])
        assert added["name"] == "s0r3" and added["role"] == "voter"
        assert added["voters"] == [0, 1, 2, 3]
        with open(os.path.join(cluster.data_dir, "cluster.yaml")) as f:
            entry = next(r for r in yaml.safe_load(f)["shards"][0]["replicas"] if r["name"] == "s0r3")
        assert entry["joined"] is True and entry["role"] == "voter" and entry["resp_port"] == new_port
        with lock:
            ports["s0r3"] = new_port
        before = len(acked)
        wait_for(lambda: len(acked) >= before + 20, timeout=60, what="transfers on four voters")

        # The new replica restarts from its own files, still a voter.
        cluster.kill("s0r3")
        cluster.restart("s0r3")
        assert 3 in wait_for(lambda: _members(new_port)["voters"], timeout=30, what="s0r3 back as a voter")

        # Shrink: remove whichever replica leads now (it hands over first).
        gone = cluster.leader()
        with lock:
            del ports[gone]
        proc = makoctl("cluster", "remove-replica", gone, "--data-dir", cluster.data_dir, "--json", timeout=120)
        removed = json.loads(proc.stdout.strip().splitlines()[-1])
        assert len(removed["voters"]) == 3 and removed["node_id"] not in removed["voters"]
        before = len(acked)
        wait_for(lambda: len(acked) >= before + 20, timeout=60, what="transfers after the removal")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)

    status = cluster.status()
    assert sorted(n["name"] for n in status["nodes"]) == sorted(ports)
    assert sorted(n["role"] for n in status["nodes"]) == ["follower", "follower", "leader"]
    c = redis.Redis(port=next(iter(ports.values())), socket_timeout=30, decode_responses=True)
    expected = replay_journal(c, 3, acked, ACCOUNTS, INITIAL)
    assert dict(zip(ACCOUNTS, map(int, c.mget(ACCOUNTS)))) == expected

    def digests() -> set[str] | None:
        found = set()
        for port in ports.values():
            with redis.Redis(port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0)) as r:
                found.add(r.execute_command("MAKO", "DIGEST"))
        return found if len(found) == 1 else None

    wait_for(digests, timeout=30, what="every remaining replica to hold the same state")
    assert all(_members(p)["voters"] == removed["voters"] for p in ports.values())


def _bad_requests_get_clear_errors(cluster) -> None:
    leader = cluster.leader()
    follower = next(n for n in cluster.names if n != leader)
    lead_id = int(leader[-1])  # s0rK has id K in the default layout

    def error(name: str, *args) -> str:
        with redis.Redis(port=cluster.port(name), socket_timeout=5, retry=Retry(NoBackoff(), 0)) as c:
            try:
                c.execute_command(*args)
            except redis.ResponseError as exc:
                return str(exc)
        raise AssertionError(f"{args} did not fail")

    assert error(follower, "MAKO", "MEMBER", "ADD", "1") == "this node is not its shard's leader"
    assert error(leader, "MAKO", "MEMBER", "ADD", "99").startswith("no replica with id 99 in this node's configuration")
    assert error(leader, "MAKO", "MEMBER", "ADD", "x") == "value is not an integer or out of range"
    assert error(leader, "MAKO", "MEMBER", "SWAP", "1") == "unknown MEMBER action 'SWAP' (ADD, PROMOTE or REMOVE)"
    assert error(leader, "MAKO", "MEMBER", "PROMOTE", str(lead_id)) == f"replica {leader} is already a voter of shard 0"
    assert error(leader, "MAKO", "MEMBER", "REMOVE", str(lead_id)) == (
        "membership change refused: a leader cannot remove itself: hand leadership over first")
    assert error(leader, "MAKO", "MEMBER") .startswith("wrong number of arguments")
    assert error(leader, "MAKO", "TOPOLOGY", "REWRITE") == "syntax error"
    proc = makoctl("cluster", "remove-replica", "nosuch", "--data-dir", cluster.data_dir, check=False)
    assert proc.returncode == 2 and "no replica named nosuch" in proc.stderr
    proc = makoctl("cluster", "add-replica", "--shard", "7", "--data-dir", cluster.data_dir, check=False)
    assert proc.returncode == 2 and "no shard 7" in proc.stderr
