"""Acknowledged writes survive SIGKILL; a restarted node serves them from LMDB."""

from __future__ import annotations

import threading

import redis

from tests.integration.cluster_util import wait_for


def test_every_acknowledged_write_survives_sigkill(fresh_single):
    c = fresh_single.client()
    acked: dict[bytes, bytes] = {}
    stop = threading.Event()

    def writer(worker: int) -> None:
        client = fresh_single.client(socket_timeout=5)
        i = 0
        while not stop.is_set():
            key, value = f"w{worker}:{i}".encode(), f"v{i}".encode()
            try:
                if client.set(key, value):
                    acked[key] = value
            except (redis.ConnectionError, redis.TimeoutError):
                return
            i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= 2000, timeout=60, what="2000 acknowledged writes")
    c.hset("profile", mapping={"a": "1", "b": "2"})
    c.set("ttl-key", "x", ex=3600)
    name = fresh_single.names[0]
    fresh_single.kill(name)  # SIGKILL while the writers are still writing
    stop.set()
    for t in threads:
        t.join(timeout=10)
    fresh_single.restart(name)
    c = fresh_single.client()
    missing = [k for k, v in acked.items() if c.get(k) != v]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    assert c.hgetall("profile") == {b"a": b"1", b"b": b"2"}
    assert 3500 < c.ttl("ttl-key") <= 3600


def test_clean_stop_and_start_keeps_data(fresh_single):
    from tests.integration.cluster_util import makoctl

    c = fresh_single.client()
    for i in range(100):
        c.set(f"k{i}", i)
    c.close()
    makoctl("cluster", "stop", "--data-dir", fresh_single.data_dir)
    makoctl("cluster", "start", "--data-dir", fresh_single.data_dir)
    c = fresh_single.client()
    assert c.dbsize() == 100
    assert c.get("k42") == b"42"
