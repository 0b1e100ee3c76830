"""makod freezes what survives each collector pass (makod/gc_pauses.py), so
no pass scans the keyspace. That is only free if nothing makod does leaves
reference cycles that die after a pass: frozen, they would never be found.
Here connections do all the things that have state (MULTI, WATCH, pub/sub,
scripts, procedures, errors, blocked pops) while enough keys are written to
run a pass and freeze them; then they all close, and MAKO GC's full pass
must find nothing left over."""

from __future__ import annotations

import json
import socket

import msgpack
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.cluster_util import set_many, wait_for

CONNECTIONS = 60
# The young generation's threshold is 100,000 net allocations (makod/main.py):
# a record and its value per key, so this many keys run at least one pass.
KEYS = 120_000


def _status(c: redis.Redis) -> dict:
    return json.loads(c.execute_command("MAKO", "STATUS"))


def _busy(port: int, i: int) -> tuple[redis.Redis, object]:
    c = redis.Redis(port=port, retry=Retry(NoBackoff(), 0), socket_timeout=10)
    c.client_setname(f"gc{i}")
    c.set(f"gc:{i}", i)
    with c.pipeline(transaction=True) as p:
        p.watch(f"gc:{i}")
        p.multi()
        p.incr(f"gc:{i}").lpush(f"gc:l{i}", "a", "b").hset(f"gc:h{i}", mapping={"f": "v"})
        p.execute()
    with pytest.raises(redis.ResponseError, match="^WRONGTYPE"):
        c.incr(f"gc:l{i}")
    with pytest.raises(redis.ResponseError, match="unknown command"):
        c.execute_command("NOSUCHCOMMAND", "x")
    assert c.eval("return redis.call('GET', KEYS[1])", 1, f"gc:{i}") == str(i + 1).encode()
    args = msgpack.packb({"accounts": {f"gc{i}": 10}})
    c.execute_command("MAKO", "CALL", "bank.open", args)
    assert c.blpop([f"gc:empty{i}"], timeout=0.01) is None
    pubsub = c.pubsub()
    pubsub.subscribe(f"gc:ch{i}")
    pubsub.psubscribe("gc:pat*")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    return c, pubsub


def test_connections_leave_no_cycles_to_freeze(fresh_single):
    port = fresh_single.port()
    admin = fresh_single.client(retry=Retry(NoBackoff(), 0))
    before = _status(admin)["gc"]
    opened = [_busy(port, i) for i in range(CONNECTIONS)]
    raw = []
    for _ in range(20):  # connections that go away without a goodbye, half-way through a command
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc")
        raw.append(s)
    set_many(admin, "fill:%d", KEYS)
    during = _status(admin)["gc"]
    assert during["gen0"]["collections"] > before["gen0"]["collections"], during
    assert during["freezes"] > before["freezes"], during
    for c, pubsub in opened:
        pubsub.close()
        c.close()
    for s in raw:
        s.close()
    wait_for(lambda: int(admin.info("clients")["connected_clients"]) == 1, timeout=15, what="clients gone")
    full = json.loads(admin.execute_command("MAKO", "GC"))
    # What a leak would look like: every connection's session, protocol and
    # subscriptions are dozens of objects, so even one cycle per connection
    # is thousands. A few stray objects (a traceback caught mid-pass) are not.
    assert full["collected"] < CONNECTIONS, full
    assert full["pause_ms"] > 0 and full["frozen_objects"] > 0, full
    assert admin.dbsize() >= KEYS
    assert admin.get(f"fill:{KEYS - 1}") == str(KEYS - 1).encode()
    assert _status(admin)["gc"]["freezes"] >= during["freezes"]


def test_mako_gc_and_help_answer_like_redis_containers(single):
    c = single.client()
    with pytest.raises(redis.ResponseError, match=r"^wrong number of arguments for 'mako\|gc' command$"):
        c.execute_command("MAKO", "GC", "now")
    lines = [line.decode() for line in c.execute_command("MAKO", "HELP")]
    assert lines[0].startswith("MAKO <subcommand>")
    assert "GC" in lines and "STATUS" in lines and "HELP" in lines
    with pytest.raises(redis.ResponseError, match=r"^unknown subcommand 'NOPE'\. Try MAKO HELP\.$"):
        c.execute_command("MAKO", "NOPE")
