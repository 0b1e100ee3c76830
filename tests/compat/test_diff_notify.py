"""Keyspace notifications (kv/notify.py) against redis-server: the same
commands raise the same events, with the same names and keys, in the same
order (one difference: Redis raises "ltrim" also for an LTRIM that removed
nothing; makodb raises events only for changes). Redis is asked with notify-keyspace-events "KEA" and a subscriber to
``__keyevent@*__:*``; makodb's events come from the data model run in process
(the delivery through a cluster is tested in tests/integration/test_pubsub*)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from makod.kv import notify
from makod.kv.table import TABLE, resolve
from tests.compat.test_differential import real  # noqa: F401  (the redis-server fixture)
from tests.unit.harness import Harness, as_bytes

SCRIPTS = {
    "strings": [["SET", "s", "1"], ["INCR", "s"], ["INCRBYFLOAT", "s", "1.5"], ["APPEND", "s", "x"],
                ["SETRANGE", "s", "0", "ab"], ["SET", "e", "v", "EX", "100"], ["GETDEL", "s"], ["SETNX", "e", "w"],
                ["MSET", "a", "1", "b", "2"], ["GETEX", "a", "PX", "5000"], ["PERSIST", "a"],
                ["SETBIT", "bits", "3", "1"], ["DEL", "a", "b", "nosuch"]],
    "lists": [["RPUSH", "l", "a", "b", "c"], ["LPUSH", "l", "z"], ["LPOP", "l"], ["LSET", "l", "0", "q"],
              ["LINSERT", "l", "BEFORE", "q", "p"], ["LREM", "l", "0", "p"], ["LTRIM", "l", "0", "1"],
              ["LMOVE", "l", "l2", "RIGHT", "LEFT"], ["RPOP", "l", "5"], ["RPOPLPUSH", "l2", "l3"], ["LPOP", "l2"]],
    "hashes_sets": [["HSET", "h", "f", "1", "g", "2"], ["HINCRBY", "h", "f", "2"], ["HDEL", "h", "f", "g"],
                    ["SADD", "st", "a", "b"], ["SREM", "st", "a"], ["SMOVE", "st", "st2", "b"],
                    ["SADD", "x1", "1", "2"], ["SINTERSTORE", "x2", "x1", "x1"]],
    "zsets_keys": [["ZADD", "z", "1", "a", "2", "b"], ["ZINCRBY", "z", "3", "a"], ["ZREM", "z", "b"],
                   ["ZPOPMIN", "z"], ["ZADD", "z", "1", "c"], ["EXPIRE", "z", "100"], ["RENAME", "z", "z2"],
                   ["COPY", "z2", "z3"], ["EXPIRE", "z3", "0"], ["PFADD", "hll", "a"], ["XADD", "st1", "1-1", "f", "v"],
                   ["XDEL", "st1", "1-1"]],
}


def _ours(script: list[list[str]]) -> list[tuple[str, bytes]]:
    h = Harness(now_ms=int(time.time() * 1000))
    out: list[tuple[str, bytes]] = []
    for argv in script:
        args = [as_bytes(a) for a in argv]
        spec = resolve(TABLE, args)
        ctx = h.context()
        ctx.events = []
        try:
            spec.handler(ctx, args)
        except Exception as exc:  # a test script is valid: fail loudly
            raise AssertionError(f"{argv}: {exc}") from None
        notify.collect(ctx, spec, 0, args)
        ctx.finish()
        out.extend((event, key) for _db, _cls, event, key in ctx.events)
    return out


def _redis(client: Any, script: list[list[str]]) -> list[tuple[str, bytes]]:
    client.execute_command("FLUSHALL")
    client.execute_command("CONFIG", "SET", "notify-keyspace-events", "KEA")
    sub = redis.Redis(connection_pool=client.connection_pool).pubsub()
    try:
        sub.psubscribe("__keyevent@0__:*")
        assert sub.get_message(timeout=5)["type"] == "psubscribe"
        for argv in script:
            client.execute_command(*argv)
        client.execute_command("PUBLISH", "__keyevent@0__:zzend", "end")
        out = []
        while True:
            msg = sub.get_message(timeout=5)
            assert msg is not None, "redis-server stopped sending events"
            event = msg["channel"].split(b":", 1)[1].decode()
            if event == "zzend":
                return out
            out.append((event, msg["data"]))
    finally:
        sub.close()
        client.execute_command("CONFIG", "SET", "notify-keyspace-events", "")


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_the_same_events_as_redis(real, name: str) -> None:  # noqa: F811
    script = SCRIPTS[name]
    assert _ours(script) == _redis(real, script)


def test_flags_parse_and_print_as_redis() -> None:
    assert notify.parse_flags("KEA") == "".join(sorted("KEg$lshzxet"))
    assert notify.flags_text(notify.parse_flags("EAK")) == "AKE"
    assert notify.flags_text(notify.parse_flags("Kl")) == "lK"
    assert notify.parse_flags("A") == ""  # no K or E: nothing is published, as in Redis
    with pytest.raises(ValueError):
        notify.parse_flags("Q")
