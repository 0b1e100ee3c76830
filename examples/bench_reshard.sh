#!/bin/bash
# Client throughput (redis-benchmark SET/GET, 50 clients) alone, during a change, and after it:
#   examples/bench_reshard.sh              2xR: makoctl cluster reshard --slots 0-8191 --to 1
#   ADD_SHARD=1 examples/bench_reshard.sh  1xR: makoctl cluster add-shard --rebalance (half the slots to a new shard)
# REPLICAS=R (default 1), BASE_PORT (21000), DATA_DIR (/tmp/rsb).
set -e
D=${DATA_DIR:-/tmp/rsb}; P=${BASE_PORT:-21000}; R=${REPLICAS:-1}
if [ -n "$ADD_SHARD" ]; then
  SHARDS=1; WHAT="add-shard"; CHANGE="makoctl cluster add-shard --rebalance --base-port $((P + R))"
else
  SHARDS=2; WHAT="reshard"; CHANGE="makoctl cluster reshard --slots 0-8191 --to 1"
fi
makoctl cluster stop --data-dir $D >/dev/null 2>&1 || true; rm -rf $D
makoctl cluster start --shards $SHARDS --replicas $R --base-port $P --data-dir $D >/dev/null 2>&1
redis-benchmark -p $P -t set -n 50000 -r 50000 -c 50 -q >/dev/null 2>&1   # load ~32K keys
bench() { redis-benchmark -p $P -t set,get -n 40000 -r 50000 -c 50 -q 2>&1 | tr '\r' '\n' | grep "requests per second"; }
echo "baseline:"; bench
( sleep 0.5; /usr/bin/time -f "$WHAT %e s" $CHANGE --data-dir $D --json > /tmp/rsb.json ) 2>/tmp/rsb.time &
echo "during $WHAT:"; bench
wait; tail -1 /tmp/rsb.time; python3 -c "import json;d=json.load(open('/tmp/rsb.json'));print('keys moved', d['keys'])"
echo "after (clients still on shard 0's first node):"; bench
makoctl cluster stop --data-dir $D >/dev/null
