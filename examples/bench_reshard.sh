#!/bin/bash
# Client throughput on a 2xR cluster (REPLICAS=1 by default): without a move, then during `makoctl cluster reshard` of half the slots.
set -e
D=${DATA_DIR:-/tmp/rsb}; P=${BASE_PORT:-21000}; R=${REPLICAS:-1}
makoctl cluster stop --data-dir $D >/dev/null 2>&1 || true; rm -rf $D
makoctl cluster start --shards 2 --replicas $R --base-port $P --data-dir $D >/dev/null 2>&1
redis-benchmark -p $P -t set -n 50000 -r 50000 -c 50 -q >/dev/null 2>&1   # load ~32K keys
bench() { redis-benchmark -p $P -t set,get -n 40000 -r 50000 -c 50 -q 2>&1 | tr '\r' '\n' | grep "requests per second"; }
echo "baseline:"; bench
( sleep 0.5; /usr/bin/time -f "reshard %e s" makoctl cluster reshard --slots 0-8191 --to 1 --data-dir $D --json > /tmp/rsb.json ) 2>/tmp/rsb.time &
echo "during the move:"; bench
wait; cat /tmp/rsb.time | tail -1; python3 -c "import json;d=json.load(open('/tmp/rsb.json'));print('keys moved', d['keys'])"
echo "after (one shard holds every slot):"; bench
makoctl cluster stop --data-dir $D >/dev/null
