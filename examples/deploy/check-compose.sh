#!/usr/bin/env bash
# Builds the image, starts compose.yaml's 3 replicas, and checks them the way
# the README says it was checked: writes through one container read through
# another, /metrics answers, the leader's container killed and another leads,
# restarted and it leads again. Needs docker with compose (v2 or docker-compose).
#   bash examples/deploy/check-compose.sh
set -euo pipefail
cd "$(dirname "$0")"
compose() { if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi; }
[ -f cluster.secret ] || python3 -c "import secrets; print(secrets.token_hex(32))" > cluster.secret
chmod 644 cluster.secret  # the containers' makodb user reads it
# DOCKER_BUILD_FLAGS: e.g. "--network host" where builds get no network of their own.
(cd ../.. && docker build ${DOCKER_BUILD_FLAGS:-} -f examples/deploy/Dockerfile -t makodb .)
trap 'compose down -v >/dev/null 2>&1 || true' EXIT
compose up -d --no-build
wait_for() { for _ in $(seq 100); do if eval "$1" >/dev/null 2>&1; then return 0; fi; sleep 0.2; done; echo "timed out: $1" >&2; exit 1; }
wait_for "[ \"\$(redis-cli -p 6379 ping)\" = PONG ]"
wait_for "[ \"\$(redis-cli -p 6379 set hello world)\" = OK ]"
[ "$(redis-cli -p 6381 get hello)" = world ]
metrics=$(curl -sf localhost:36379/metrics)
grep -q '^makod_commands_total' <<<"$metrics"
leader=$(docker ps --format '{{.Names}}' | grep mako1)
docker kill "$leader" >/dev/null
wait_for "[ \"\$(redis-cli -p 6380 set after kill)\" = OK ]"
[ "$(redis-cli -p 6381 get after)" = kill ]
docker start "$leader" >/dev/null
wait_for "[ \"\$(redis-cli -p 6379 role | head -1)\" = master ]"
[ "$(redis-cli -p 6379 get after)" = kill ]
echo "compose cluster: ok"
