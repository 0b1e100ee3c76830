"""makoctl as scripts use it: exit codes, JSON, bad config files, auth."""

from __future__ import annotations

import json

import pytest
import redis

from tests.integration.cluster_util import Cluster, free_port_block, makoctl


@pytest.mark.parametrize(
    "text, field, expected",
    [
        ("shards: [\n  {slots: '0-16383', replicas: [{name: a, resp_port: notaport}]}]\n",
         "shards[0].replicas[0].resp_port", "an integer 1-65535"),
        ("shards:\n  - slots: '0-100'\n    replicas: [{name: a, resp_port: 30001}]\n",
         "shards[*].slots", "every hash slot 0-16383 covered"),
        ("cluster: x\nshards: []\n", "shards", "a non-empty list of shards"),
        ("clustr: x\n", "clustr", "one of the known fields"),
        ("shards: [ {slots: 0-16383\n", "line", "valid YAML"),
        ("protocol: fast\nshards: [{slots: '0-16383', replicas: [{name: a, resp_port: 30001}]}]\n",
         "protocol", "one of mako, 2pc-paxos"),
        ("shards: [{slots: '0-16383', preferred_leader: b, replicas: [{name: a, resp_port: 30001}]}]\n",
         "shards[0].preferred_leader", "the name of a voter of this shard"),
        ("shards: [{slots: '0-16383', prefered_leader: a, replicas: [{name: a, resp_port: 30001}]}]\n",
         "shards[0].prefered_leader", "one of id, slots, serving, replicas, preferred_leader"),
    ],
)
def test_bad_config_names_file_field_and_expectation(tmp_path, text, field, expected):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    proc = makoctl("cluster", "start", "--config", str(cfg), "--data-dir", str(tmp_path / "d"), check=False)
    assert proc.returncode == 2
    assert str(cfg) in proc.stderr and field in proc.stderr and expected in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_status_json_and_kill_restart(fresh_single):
    status = fresh_single.status()
    (node,) = status["nodes"]
    assert {"name", "shard", "role", "host", "resp_port", "pid"} <= set(node)
    assert node["role"] == "leader" and node["pid"] > 0
    fresh_single.kill(node["name"])
    proc = makoctl("cluster", "status", "--data-dir", fresh_single.data_dir, "--json", check=False)
    assert proc.returncode == 3  # nothing is up
    assert json.loads(proc.stdout)["nodes"][0]["role"] == "down"
    fresh_single.restart(node["name"])
    assert fresh_single.status()["nodes"][0]["role"] == "leader"


def test_unknown_node_name_is_an_error(fresh_single):
    proc = makoctl("cluster", "kill", "nosuch", "--data-dir", fresh_single.data_dir, check=False)
    assert proc.returncode == 2 and "no node named 'nosuch'" in proc.stderr


def test_every_command_has_help():
    for args in (["--help"], ["cluster", "--help"], ["cluster", "start", "--help"], ["cluster", "status", "--help"],
                 ["cluster", "stop", "--help"], ["cluster", "kill", "--help"], ["cluster", "restart", "--help"],
                 ["cluster", "failover", "--help"]):
        proc = makoctl(*args)
        assert "Usage:" in proc.stdout


def test_requirepass(tmp_path):
    c = Cluster(tmp_path / "d", config={"requirepass": "s3cret"})
    c.start()
    try:
        anon = redis.Redis(port=c.port(), protocol=2)
        with pytest.raises(redis.AuthenticationError):
            anon.get("x")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=c.port(), password="wrong", protocol=2).ping()
        assert redis.Redis(port=c.port(), password="s3cret", protocol=2).set("x", 1)
        # redis-py 8 authenticates inside HELLO 3 (HELLO 3 AUTH default <pw>).
        r3 = redis.Redis(port=c.port(), password="s3cret", protocol=3)
        assert r3.get("x") == b"1"
    finally:
        c.stop()


def test_port_already_taken_is_reported(tmp_path):
    import socket

    base = free_port_block(1)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", base))
    blocker.listen()
    try:
        proc = makoctl("cluster", "start", "--data-dir", str(tmp_path / "d"), "--base-port", str(base),
                       "--replicas", "1", "--shards", "1", check=False)
        assert proc.returncode != 0 and f"port {base}" in proc.stderr
    finally:
        blocker.close()
