"""makoctl tells the truth about a cluster: status in parallel with reasons
and exit codes, node identity from the node, failover that says when it
will not stick, failed starts that leave nothing, config changes shown,
logs with names and reasons."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import redis
import yaml

from tests.integration.cluster_util import Cluster, free_port_block, makoctl, wait_for


def _status(cluster: Cluster, *extra: str) -> subprocess.CompletedProcess:
    return makoctl("cluster", "status", "--data-dir", cluster.data_dir, *extra, check=False)


def _node(proc: subprocess.CompletedProcess, name: str) -> dict:
    return next(n for n in json.loads(proc.stdout)["nodes"] if n["name"] == name)


def test_status_is_fast_says_why_and_exits_nonzero(make_cluster):
    cluster = make_cluster(shards=1, replicas=3)
    proc = _status(cluster, "--json")
    assert proc.returncode == 0, proc.stderr
    assert {n["health"] for n in json.loads(proc.stdout)["nodes"]} == {"ok"}
    leader = cluster.leader()
    hung, dead = [n for n in cluster.names if n != leader]
    hung_pid = _node(proc, hung)["pid"]
    cluster.kill(dead)
    os.kill(hung_pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        proc = _status(cluster, "--json")
        took = time.monotonic() - start
        assert proc.returncode == 1
        assert _node(proc, hung)["health"] == "not answering" and _node(proc, hung)["role"] == "down"
        assert _node(proc, dead)["health"] == "not running"
        assert _node(proc, leader)["health"] == "ok"
        # One hung node costs one timeout (1 s), not ten retries of it; the
        # rest is makoctl's own start.
        assert took < 6, took
        table = _status(cluster)
        assert table.returncode == 1
        assert f"{hung}: not answering" in table.stdout and f"{dead}: not running" in table.stdout
    finally:
        os.kill(hung_pid, signal.SIGCONT)
    cluster.restart(dead)
    assert _status(cluster).returncode == 0


def test_status_fits_80_columns_and_wide_shows_more(fresh_single):
    narrow = _status(fresh_single)
    assert narrow.returncode == 0
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80, narrow.stdout
    wide = _status(fresh_single, "--wide")
    assert "ballot" in wide.stdout and "commit" in wide.stdout and "ballot" not in narrow.stdout


def test_status_watch_shows_commands_per_second(fresh_single):
    c = fresh_single.client()
    for i in range(50):
        c.set(f"k{i}", i)
    proc = _status(fresh_single, "--watch", "0.3", "--count", "2")
    assert proc.returncode == 0, proc.stderr
    assert "ops/s" in proc.stdout and "lat ms" in proc.stdout and proc.stdout.count("every 0.3s") >= 1
    assert "keys: 50 in the cluster" in proc.stdout


def test_wrong_password_is_auth_failed_not_down(fresh_single):
    name = fresh_single.names[0]
    c = fresh_single.client()
    c.config_set("requirepass", "sesame")
    try:
        proc = _status(fresh_single, "--json")
        assert proc.returncode == 3
        assert _node(proc, name)["health"] == "auth failed"
    finally:
        redis.Redis(port=fresh_single.ports[name], password="sesame").config_set("requirepass", "")


def test_a_stale_pid_file_is_not_trusted_and_a_hand_started_node_is_found(fresh_single, tmp_path):
    name = fresh_single.names[0]
    pid_file = os.path.join(fresh_single.data_dir, name, "makod.pid")
    fresh_single.kill(name)
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        with open(pid_file, "w") as f:
            f.write(str(bystander.pid))  # a pid reused by another program
        proc = _status(fresh_single, "--json")
        assert _node(proc, name)["health"] == "not running" and _node(proc, name)["pid"] is None
        makoctl("cluster", "stop", "--data-dir", fresh_single.data_dir)
        assert bystander.poll() is None, "cluster stop signalled an unrelated process"
    finally:
        bystander.kill()
        bystander.wait()
    # A node started by hand (no pid file): status finds it, stop stops it.
    os.unlink(pid_file)
    cfg = os.path.join(fresh_single.data_dir, "cluster.yaml")
    log = open(tmp_path / "by-hand.log", "wb")
    by_hand = subprocess.Popen([sys.executable, "-m", "makod.main", "--config", cfg, "--node", name],
                               stdout=log, stderr=log, start_new_session=True)
    try:
        wait_for(lambda: _node(_status(fresh_single, "--json"), name)["health"] == "ok", timeout=30,
                 what="the hand-started node to answer")
        assert _node(_status(fresh_single, "--json"), name)["pid"] == by_hand.pid
        makoctl("cluster", "stop", "--data-dir", fresh_single.data_dir)
        assert by_hand.wait(timeout=15) is not None
    finally:
        if by_hand.poll() is None:
            by_hand.kill()
        log.close()


def test_failover_to_a_down_node_fails_fast_and_a_reverting_one_says_so(make_cluster):
    cluster = make_cluster(shards=1, replicas=3)
    leader = cluster.leader()
    down = [n for n in cluster.names if n != leader][0]
    cluster.kill(down)
    start = time.monotonic()
    proc = makoctl("cluster", "failover", "--shard", "0", "--to", down, "--data-dir", cluster.data_dir, check=False)
    assert proc.returncode == 1 and "not running" in proc.stderr
    assert time.monotonic() - start < 8
    cluster.restart(down)
    target = [n for n in cluster.names if n != leader][1]
    proc = makoctl("cluster", "failover", "--shard", "0", "--to", target, "--data-dir", cluster.data_dir)
    # The default config prefers the first replica: say it takes leadership back.
    assert f"-> {target}" in proc.stdout
    assert "preferred leader" in proc.stdout and leader in proc.stdout
    wait_for(lambda: cluster.leader() == leader, timeout=30, what="leadership to return to the preferred replica")
    log = makoctl("cluster", "logs", target, "-n", "200", "--data-dir", cluster.data_dir).stdout
    # Role changes name replicas and say why.
    assert "preferred leader" in log and f"handed leadership to {leader}" in log, log
    assert "won the election: promises from" in makoctl(
        "cluster", "logs", leader, "-n", "200", "--data-dir", cluster.data_dir).stdout


def test_a_failed_start_leaves_nothing_behind(tmp_path):
    base = free_port_block(1)
    data = tmp_path / "d"
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", base))
    blocker.listen()
    try:
        proc = makoctl("cluster", "start", "--shards", "1", "--replicas", "1", "--base-port", str(base),
                       "--data-dir", str(data), check=False)
        assert proc.returncode == 1 and f"port {base}" in proc.stderr
        assert not data.exists(), list(data.iterdir())
    finally:
        blocker.close()
    other = free_port_block(1)
    c = Cluster(str(data))
    try:
        makoctl("cluster", "start", "--shards", "1", "--replicas", "1", "--base-port", str(other),
                "--data-dir", str(data))
        c.names, c.ports = ["s0r0"], {"s0r0": other}
        assert redis.Redis(port=other).ping()
    finally:
        c.stop()


def test_a_changed_config_is_applied_when_stopped_and_refused_when_running(tmp_path):
    from makod.config import default_config_dict

    base = free_port_block(1)
    data = tmp_path / "d"
    cfg_file = tmp_path / "c.yaml"
    raw = default_config_dict(1, 1, base)
    cfg_file.write_text(yaml.safe_dump(raw))
    c = Cluster(str(data))
    try:
        makoctl("cluster", "start", "--config", str(cfg_file), "--data-dir", str(data))
        raw["databases"] = 4
        cfg_file.write_text(yaml.safe_dump(raw))
        proc = makoctl("cluster", "start", "--config", str(cfg_file), "--data-dir", str(data), check=False)
        assert proc.returncode == 2 and "databases: (unset) -> 4" in proc.stderr and "stop the cluster" in proc.stderr
        makoctl("cluster", "stop", "--data-dir", str(data))
        proc = makoctl("cluster", "start", "--config", str(cfg_file), "--data-dir", str(data))
        assert "databases: (unset) -> 4" in proc.stdout
        with pytest.raises(redis.ResponseError, match="DB index is out of range"):
            redis.Redis(port=base).select(5)
        raw["shards"][0]["replicas"][0]["resp_port"] = base + 1
        cfg_file.write_text(yaml.safe_dump(raw))
        proc = makoctl("cluster", "start", "--config", str(cfg_file), "--data-dir", str(data), check=False)
        assert proc.returncode == 2 and "different cluster" in proc.stderr and "RESP ports" in proc.stderr
    finally:
        c.stop()


def test_json_logs_name_the_node(make_cluster):
    cluster = make_cluster(config={"log_format": "json"})
    name = cluster.names[0]
    lines = makoctl("cluster", "logs", name, "-n", "20", "--data-dir", cluster.data_dir).stdout.splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records and all(r["node"] == name for r in records)
    assert any(r.get("kind") == "role" and r["msg"].startswith("role: leader") for r in records), records


def test_config_rewrite_keeps_live_settings_across_a_restart(fresh_single):
    name = fresh_single.names[0]
    c = fresh_single.client()
    assert c.config_set("slowlog-max-len", "7") and c.config_set("notify-keyspace-events", "KEA")
    assert c.execute_command("CONFIG", "REWRITE") == b"OK"
    fresh_single.restart(name)
    c = fresh_single.client()
    assert c.config_get("slowlog-max-len") == {"slowlog-max-len": "7"}
    assert c.config_get("notify-keyspace-events")["notify-keyspace-events"] == "AKE"
    # A bad value in the file stops the start, naming the file and the field.
    path = os.path.join(fresh_single.data_dir, name, "config-overrides.yaml")
    with open(path, "a") as f:
        f.write("slowlog-max-len: lots\n")
    proc = makoctl("cluster", "restart", name, "--data-dir", fresh_single.data_dir, check=False)
    assert proc.returncode == 1
    log = makoctl("cluster", "logs", name, "-n", "20", "--data-dir", fresh_single.data_dir).stdout
    assert "config-overrides.yaml: slowlog-max-len: expected a value CONFIG SET accepts" in log
    os.unlink(path)
    fresh_single.restart(name)


def test_another_cluster_on_the_same_ports_is_a_wrong_node_and_is_not_stopped(fresh_single, tmp_path):
    name = fresh_single.names[0]
    with open(os.path.join(fresh_single.data_dir, "cluster.yaml")) as f:
        raw = yaml.safe_load(f)
    assert raw.get("cluster_id"), "makoctl gives every cluster an id"
    raw["cluster_id"] = "someone-else"
    other = tmp_path / "other"
    other.mkdir()
    (other / "cluster.yaml").write_text(yaml.safe_dump(raw))
    proc = makoctl("cluster", "status", "--data-dir", str(other), "--json", check=False)
    node = _node(proc, name)
    assert proc.returncode == 3 and node["health"] == "wrong node" and "id" in node["detail"]
    makoctl("cluster", "stop", "--data-dir", str(other))
    assert fresh_single.client().ping(), "the other cluster's stop left this node alone"


def test_failover_stick_keeps_the_target_leading_through_restarts(make_cluster):
    cluster = make_cluster(shards=1, replicas=3)
    leader = cluster.leader()
    target = [n for n in cluster.names if n != leader][1]
    proc = makoctl("cluster", "failover", "--shard", "0", "--stick", "--data-dir", cluster.data_dir, check=False)
    assert proc.returncode == 2 and "--stick needs --to" in proc.stderr
    proc = makoctl("cluster", "failover", "--shard", "0", "--to", target, "--stick", "--data-dir", cluster.data_dir)
    assert f"{target} is now shard 0's preferred leader" in proc.stdout and f"-> {target}" in proc.stdout
    assert "goes back" not in proc.stdout
    with open(os.path.join(cluster.data_dir, "cluster.yaml")) as f:
        assert yaml.safe_load(f)["shards"][0]["preferred_leader"] == target
    # Without --stick leadership returns to the old preferred replica after
    # two election timeouts of leading (test above); here it stays.
    time.sleep(4)
    assert cluster.leader() == target
    for name in cluster.names:
        assert json.loads(cluster.client(name).execute_command("MAKO", "STATUS"))["preferred_leader"] == target
    # It outlives restarts: the whole cluster's, then the target's own crash.
    cluster.stop()
    makoctl("cluster", "start", "--data-dir", cluster.data_dir, "--timeout", "60", timeout=90)
    assert cluster.leader() == target
    cluster.kill(target)
    wait_for(lambda: cluster.leader() != target, timeout=30, what="another leader while the target is down")
    cluster.restart(target)
    wait_for(lambda: cluster.leader() == target, timeout=30, what="leadership to return to the sticky target")
    # And back: the old leader sticks again.
    makoctl("cluster", "failover", "--shard", "0", "--to", leader, "--stick", "--data-dir", cluster.data_dir)
    time.sleep(3)
    assert cluster.leader() == leader


def test_status_sums_the_keyspace_over_shards_per_database(make_cluster):
    cluster = make_cluster(shards=2, replicas=1)
    c = cluster.client()
    c.mset({f"k{i}": i for i in range(40)})
    for i in range(5):
        c.set(f"t{i}", i, ex=1000)
    db3 = redis.Redis(port=cluster.port(), db=3)
    db3.mset({f"x{i}": i for i in range(7)})
    proc = _status(cluster, "--json")
    out = json.loads(proc.stdout)
    assert out["keyspace"] == {"db0": {"keys": 45, "expires": 5}, "db3": {"keys": 7, "expires": 0}}
    assert out["keys"] == 52 == c.dbsize() + db3.dbsize()
    # Each shard holds part of it: INFO keyspace is per shard, as on a Redis Cluster node.
    per_node = [n["keyspace"]["db0"]["keys"] for n in out["nodes"]]
    assert sum(per_node) == 45 and all(0 < k < 45 for k in per_node)
    assert "db0: 45, db3: 7" in _status(cluster).stdout


def test_a_pid_file_naming_another_clusters_node_of_the_same_name_is_ignored(make_cluster):
    # Pids are reused within minutes (pid_max is often 32768) and every
    # cluster has an s0r0: a stale pid file may name another cluster's node.
    mine, other = make_cluster(shards=1, replicas=1), make_cluster(shards=1, replicas=1)
    other_pid = _node(_status(other, "--json"), "s0r0")["pid"]
    mine.kill("s0r0")
    with open(os.path.join(mine.data_dir, "s0r0", "makod.pid"), "w") as f:
        f.write(str(other_pid))
    assert _node(_status(mine, "--json"), "s0r0")["health"] == "not running"
    assert makoctl("cluster", "kill", "s0r0", "--data-dir", mine.data_dir, check=False).returncode != 0
    makoctl("cluster", "stop", "--data-dir", mine.data_dir)
    makoctl("cluster", "restart", "s0r0", "--data-dir", mine.data_dir)
    assert _node(_status(other, "--json"), "s0r0")["pid"] == other_pid, "another cluster's node was signalled"
    assert redis.Redis(port=other.port()).ping()
