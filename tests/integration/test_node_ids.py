"""Replica ids come from the config (``id``), not from positions in it: a
cluster whose ids are neither dense nor in file order elects, replicates,
commits cross-shard transactions, fails over and reports its nodes by
name; bad ids are config errors that name the field. (Stable ids are the
first step of online membership changes: docs/MEMBERSHIP.md.)"""

from __future__ import annotations

import json

import pytest
import redis
import yaml

from makod.config import ConfigError, default_config_dict, parse_config
from tests.integration.cluster_util import Cluster, free_port_block, makoctl, wait_for
from tests.integration.nemesis_util import keys_on_shards


def test_new_configs_write_ids_and_old_ones_keep_their_positions():
    data = default_config_dict(2, 3)
    assert [r["id"] for sh in data["shards"] for r in sh["replicas"]] == list(range(6))
    for sh in data["shards"]:
        for r in sh["replicas"]:
            del r["id"]
    assert [r.node_id for r in parse_config(data, "old.yaml").replicas] == list(range(6))


@pytest.mark.parametrize("ids, field, expected", [
    ([5, 5, 1], "shards[0].replicas[1].id", "an id no other replica has"),
    ([256, 1, 2], "shards[0].replicas[0].id", "an integer 0-255"),
    ([None, 0, 2], "shards[0].replicas[1].id", "an id no other replica has"),  # position 0 is taken
])
def test_bad_ids_name_the_field(ids, field, expected):
    data = default_config_dict(1, 3)
    for rep, rid in zip(data["shards"][0]["replicas"], ids):
        if rid is None:
            del rep["id"]
        else:
            rep["id"] = rid
    with pytest.raises(ConfigError) as err:
        parse_config(data, "ids.yaml")
    assert field in str(err.value) and expected in str(err.value)


def test_a_cluster_with_sparse_unordered_ids_works(tmp_path):
    base = free_port_block(6)
    data = default_config_dict(2, 3, base)
    ids = {"s0r0": 200, "s0r1": 3, "s0r2": 100, "s1r0": 7, "s1r1": 50, "s1r2": 9}
    for rep in [r for sh in data["shards"] for r in sh["replicas"]]:
        rep["id"] = ids[rep["name"]]
    path = tmp_path / "ids.yaml"
    path.write_text(yaml.safe_dump(data))
    cluster = Cluster(str(tmp_path / "d"))
    try:
        makoctl("cluster", "start", "--data-dir", cluster.data_dir, "--config", str(path), timeout=90)
        for node in cluster.status()["nodes"]:
            cluster.names.append(node["name"])
            cluster.ports[node["name"]] = node["resp_port"]
        assert {n["health"] for n in cluster.status()["nodes"]} == {"ok"}
        leader = cluster.leader(0)
        c = redis.Redis(port=cluster.port(leader))
        assert json.loads(c.execute_command("MAKO", "STATUS"))["node_id"] == ids[leader]
        k0, k1 = keys_on_shards("ids", 1)
        with c.pipeline(transaction=True) as p:  # a cross-shard transaction
            p.set(k0, "a").set(k1, "b").execute()
        assert c.mget(k0, k1) == [b"a", b"b"]
        target = "s0r1" if leader != "s0r1" else "s0r2"
        makoctl("cluster", "failover", "--shard", "0", "--to", target, "--stick", "--data-dir", cluster.data_dir)
        assert cluster.leader(0) == target
        cluster.kill(target)
        wait_for(lambda: cluster.leader(0) not in (None, target), timeout=30, what="another replica to take over")
        assert redis.Redis(port=cluster.port(cluster.leader(0))).get(k1) == b"b"
        cluster.restart(target)
        wait_for(lambda: cluster.leader(0) == target, timeout=30, what="the sticky preferred leader back")
        roles = {n["name"]: n["state"] for n in cluster.status()["nodes"]}
        assert roles[target] == "leader" and list(roles.values()).count("leader") == 2
    finally:
        cluster.stop()
