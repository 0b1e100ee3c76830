#!/bin/bash
# Client throughput on a 1xR cluster (REPLICAS=1 by default): alone, then during
# `makoctl cluster add-shard --rebalance` (a second shard, half the slots moved to it), then after.
set -e
D=${DATA_DIR:-/tmp/asb}; P=${BASE_PORT:-21000}; R=${REPLICAS:-1}
makoctl cluster stop --data-dir $D >/dev/null 2>&1 || true; rm -rf $D
makoctl cluster start --shards 1 --replicas $R --base-port $P --data-dir $D >/dev/null 2>&1
redis-benchmark -p $P -t set -n 50000 -r 50000 -c 50 -q >/dev/null 2>&1   # load ~32K keys
bench() { redis-benchmark -p $P -t set,get -n 40000 -r 50000 -c 50 -q 2>&1 | tr '\r' '\n' | grep "requests per second"; }
echo "baseline (one shard):"; bench
( sleep 0.5; /usr/bin/time -f "add-shard %e s" makoctl cluster add-shard --rebalance --base-port $((P + R)) \
    --data-dir $D --json > /tmp/asb.json ) 2>/tmp/asb.time &
echo "during add-shard --rebalance:"; bench
wait; tail -1 /tmp/asb.time; python3 -c "import json;d=json.load(open('/tmp/asb.json'));print('keys moved', d['keys'])"
echo "after (two shards, clients still on shard 0's first node):"; bench
makoctl cluster stop --data-dir $D >/dev/null
