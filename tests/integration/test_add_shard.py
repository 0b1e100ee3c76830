"""Adding a shard to a running cluster on real processes (docs/RESHARDING.md,
"Adding a shard"): a cluster of one shard grows to two with ``makoctl
cluster add-shard --rebalance`` while MAKO/EXEC bank transfers and counters
run (redis-py retries off), so the same transactions that ran on one shard
become cross-shard two-phase commits mid-stream. Then both shards' replicas
are SIGKILLed in turn and restart from their LMDB files (the old one boots
with two shards for the first time, over a log written with one). No
acknowledged transfer is lost or applied twice, balances equal the
journal's replay, no read goes back in time, FUNCTION libraries answer on
both shards, and every key is where the tables say."""

from __future__ import annotations

import json
import os
import time

import redis
import yaml

from makod.kv.hashslot import key_slot
from tests.integration.bank_load import BankLoad, client
from tests.integration.cluster_util import free_port_block, makoctl

ACCOUNTS = [f"acct{i}" for i in range(16)]
COUNTERS = [f"ctr{i}" for i in range(8)]
INITIAL = 100
BULK = 1000
LIBRARY = "#!lua name=banklib\nredis.register_function('balance', function(keys, args) " \
          "return redis.call('GET', keys[1]) end)"


def test_a_shard_joins_under_transfers_and_both_survive_a_kill(make_cluster):
    cluster = make_cluster(shards=1, replicas=1)
    old_port = cluster.port("s0r0")
    assert {key_slot(a.encode()) < 8192 for a in ACCOUNTS} == {True, False}  # the halves split them
    c = cluster.client()
    c.function_load(LIBRARY)
    c.mset({a: INITIAL for a in ACCOUNTS})
    c.mset({f"bulk{i}": "x" * (i % 200) for i in range(BULK)})
    _refusals(cluster)

    new_port = free_port_block(1)
    load = BankLoad([old_port], ACCOUNTS, COUNTERS).start()  # the new shard's node joins the ports later
    try:
        load.wait_more(20, "transfers on one shard")
        proc = makoctl("cluster", "add-shard", "--rebalance", "--base-port", str(new_port), "--chunk", "2048",
                       "--batch", "50", "--data-dir", cluster.data_dir, "--json", timeout=180)
        out = json.loads(proc.stdout)  # nothing but the JSON on stdout
        assert (out["shard"], out["replicas"], out["leader"]) == (1, ["s1r0"], "s1r0"), out
        assert out["serving"] == {"0": ["0-8191"], "1": ["8192-16383"]}, out
        assert "FUNCTION libraries copied to it: 1" in proc.stderr, (proc.stdout, proc.stderr)
        load.ports.append(new_port)
        load.wait_more(20, "transfers across the two shards")
        # The old shard's replica restarts from a log written with one shard,
        # now with two; then the new one.
        for name in ("s0r0", "s1r0"):
            makoctl("cluster", "kill", name, "--data-dir", cluster.data_dir)
            time.sleep(0.3)
            makoctl("cluster", "restart", name, "--data-dir", cluster.data_dir)
            load.wait_more(20, f"transfers after {name} restarted")
    finally:
        load.stop()

    with open(os.path.join(cluster.data_dir, "cluster.yaml")) as f:
        raw = yaml.safe_load(f)
    assert [s["slots"] for s in raw["shards"]] == ["0-16383", []]  # where each log began
    assert [s["serving"] for s in raw["shards"]] == [["0-8191"], ["8192-16383"]]
    for port in (old_port, new_port):
        with redis.Redis(port=port, socket_timeout=30, decode_responses=True) as r:
            expected = load.check(r)
            # Each shard's own copy of the library answers for its own keys.
            for account in ACCOUNTS:
                assert int(r.fcall("balance", 1, account)) == expected[account]
            assert len(r.execute_command("CLUSTER", "SHARDS")) == 2
    r = redis.Redis(port=new_port, socket_timeout=30, decode_responses=True)
    assert [r.strlen(f"bulk{i}") for i in range(BULK)] == [i % 200 for i in range(BULK)]
    # DBSIZE is exact: every key is on exactly one shard, none left behind.
    assert r.dbsize() == len(ACCOUNTS) + BULK + 3 + sum(r.exists(k) for k in COUNTERS)
    per_shard = []
    for port in (old_port, new_port):
        with redis.Redis(port=port, decode_responses=True) as node:
            keys = node.info("keyspace")["db0"]["keys"]
            per_shard.append(keys)
            assert json.loads(node.execute_command("MAKO", "SLOTMAP"))["moving"] is False
    assert sum(per_shard) == r.dbsize() and min(per_shard) > BULK // 4, per_shard
    status = json.loads(makoctl("cluster", "status", "--data-dir", cluster.data_dir, "--json").stdout)
    assert sorted((n["name"], n["shard"], n["role"]) for n in status["nodes"]) == [
        ("s0r0", 0, "leader"), ("s1r0", 1, "leader")]
    assert status["keys"] == r.dbsize()  # hidden keys (slot table, libraries) not counted


def _refusals(cluster) -> None:
    """What add-shard and a node's reload refuse, with exact reasons."""
    cfg_path = os.path.join(cluster.data_dir, "cluster.yaml")
    with open(cfg_path) as f:
        good = f.read()
    raw = yaml.safe_load(good)
    # A file whose first shard's slots changed: the first assignment is fixed.
    raw["shards"][0]["slots"] = ["0-100", "101-16383"]
    with open(cfg_path, "w") as f:
        yaml.safe_dump(raw, f)
    try:
        with client(cluster.port("s0r0")) as r:
            try:
                r.execute_command("MAKO", "TOPOLOGY", "RELOAD")
                raise AssertionError("a reload that changes a shard's slots was taken")
            except redis.ResponseError as exc:
                assert str(exc) == ("cannot reload the topology: it changes shard 0's slots (the first "
                                    "assignment; moves write serving)"), exc
    finally:
        with open(cfg_path, "w") as f:
            f.write(good)
    # A shard in the file that the running node never took in: reshard refuses to move slots to it.
    _write_shard_1(cfg_path)
    try:
        proc = makoctl("cluster", "reshard", "--slots", "0-10", "--to", "1", "--data-dir", cluster.data_dir,
                       check=False)
        assert proc.returncode == 1 and "s0r0 do not know all 2 shards" in proc.stderr, proc
    finally:
        with open(cfg_path, "w") as f:
            f.write(good)
    # A port in use: refused before anything is written.
    taken = cluster.port("s0r0")
    proc = makoctl("cluster", "add-shard", "--base-port", str(taken), "--data-dir", cluster.data_dir, check=False)
    assert proc.returncode == 1 and f"port {taken} on 127.0.0.1 is in use" in proc.stderr + proc.stdout, proc
    with open(cfg_path) as f:
        assert f.read() == good
    assert not os.path.exists(os.path.join(cluster.data_dir, "s1r0"))


def test_an_interrupted_add_shard_is_finished_not_repeated(make_cluster):
    """A run that stopped after writing the new shard into cluster.yaml (and
    before starting it or telling the nodes): the next run finishes adding
    that shard rather than adding another."""
    cluster = make_cluster(shards=1, replicas=1)
    cluster.client().set("k", "v")
    cfg_path = os.path.join(cluster.data_dir, "cluster.yaml")
    spare = _write_shard_1(cfg_path)
    proc = makoctl("cluster", "add-shard", "--data-dir", cluster.data_dir, "--json", timeout=120)
    assert "note: finishing the addition of shard 1 (s0r0 did not know it" in proc.stderr, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["shard"], out["replicas"], out["told"]) == (1, ["s1r0"], ["s0r0", "s1r0"]), out
    with open(cfg_path) as f:
        assert len(yaml.safe_load(f)["shards"]) == 2
    makoctl("cluster", "reshard", "--slots", "8192-16383", "--to", "1", "--data-dir", cluster.data_dir)
    with redis.Redis(port=spare, socket_timeout=10) as r:
        assert r.get("k") == b"v" and r.dbsize() == 1


def _write_shard_1(cfg_path: str) -> int:
    """Write a shard 1 of one replica (on free ports) into cluster.yaml, as
    an add-shard that stopped right after step 1 leaves it; its RESP port."""
    with open(cfg_path) as f:
        raw = yaml.safe_load(f)
    rep = dict(raw["shards"][0]["replicas"][0])
    spare = free_port_block(1)
    rep.update(id=rep["id"] + 1, name="s1r0", resp_port=spare, peer_port=spare + 10000)
    rep.pop("metrics_port", None)
    raw["shards"].append({"id": 1, "slots": [], "replicas": [rep]})
    with open(cfg_path, "w") as f:
        yaml.safe_dump(raw, f)
    return spare
