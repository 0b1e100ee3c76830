"""One command over 200,000 keys on two shards: a distributed transaction that
takes seconds of CPU at each shard. Its phases are given time for their size:
with a fixed 2 s deadline it was aborted and retried until it answered
TRYAGAIN, and each attempt stalled the event loop for 3 s."""

from __future__ import annotations

import os
import time

from redis.backoff import NoBackoff
from redis.retry import Retry

from makod.config import load_config_file
from makod.core.slots import key_slot
from tests.integration.cluster_util import Cluster

KEYS = 200_000


def test_mset_exists_and_del_of_200000_keys_across_shards(make_cluster):
    duo = make_cluster(shards=2, replicas=1)
    keys = [f"big:{i}" for i in range(KEYS)]
    shards = {duo_shard(duo, k) for k in keys[:100]}
    assert shards == {0, 1}, "the keys must span both shards"
    c = duo.client(socket_timeout=120, retry=Retry(NoBackoff(), 0))
    started = time.monotonic()
    assert c.mset({k: "v" for k in keys}) is True
    mset_s = time.monotonic() - started
    assert c.exists(*keys) == KEYS
    started = time.monotonic()
    assert c.delete(*keys) == KEYS
    del_s = time.monotonic() - started
    assert c.exists(*keys[:1000]) == 0
    print(f"\nMSET of {KEYS} keys across 2 shards {mset_s:.1f} s, DEL {del_s:.1f} s")


def duo_shard(cluster: Cluster, key: str) -> int:
    cfg = load_config_file(os.path.join(cluster.data_dir, "cluster.yaml"))
    return cfg.shard_of_slot(key_slot(key.encode()))
