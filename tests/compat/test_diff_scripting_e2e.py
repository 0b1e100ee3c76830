"""Scripts and functions end to end: the scripts of test_diff_scripting_lua.py
(conversions, redis.call and its errors, runtime errors) sent as EVAL to a
real 2-shard makod and to redis-server, in RESP2 and RESP3, byte for byte;
plus scripts whose keys are on both shards, FCALL, SCRIPT and FUNCTION
subcommands and their errors. (The in-process tests cover the sandbox and
the libraries exhaustively; this checks the whole path: session, routing,
the transaction, and the reply's encoding.)"""

from __future__ import annotations

from typing import Any

import pytest

from makod.core.slots import key_slot
from tests.compat.test_diff_scripting_lua import COMMANDS, CONVERSIONS, ERRORS, Raw, server  # noqa: F401
from tests.integration.cluster_util import Cluster


def _key_on(shard: int, prefix: str) -> str:
    i = 0
    while (key_slot(f"{prefix}{i}".encode()) >= 8192) != bool(shard):
        i += 1
    return f"{prefix}{i}"


K0, K1 = _key_on(0, "k"), _key_on(1, "k")


@pytest.fixture(scope="module")
def makod(tmp_path_factory) -> Any:
    cluster = Cluster(tmp_path_factory.mktemp("script-e2e") / "data", shards=2, replicas=1)
    cluster.start()
    conns = {2: Raw(cluster.port(cluster.names[1]), 2), 3: Raw(cluster.port(cluster.names[1]), 3)}
    try:
        yield conns
    finally:
        for c in conns.values():
            c.close()
        cluster.stop()


def _same(server: Any, makod: Any, *command: Any, setup: tuple = ()) -> None:  # noqa: F811
    for proto in (2, 3):
        replies = []
        for conns in (server, makod):
            conn = conns[proto]
            conn.call("FLUSHALL")
            conn.call("FUNCTION", "FLUSH")
            for step in setup:
                conn.call(*step)
            replies.append(conn.call(*command))
        assert replies[1] == replies[0], (proto, command)


@pytest.mark.parametrize("script", CONVERSIONS[::3] + COMMANDS + ERRORS)
def test_eval_as_redis(server: Any, makod: Any, script: str) -> None:  # noqa: F811
    _same(server, makod, "EVAL", script, "2", K0, K1, "a1", "a2")


BOTH_SHARDS = [
    "redis.call('SET', KEYS[1], ARGV[1]); redis.call('RPUSH', KEYS[2], ARGV[1], ARGV[2]); "
    "return {redis.call('GET', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}",
    "return redis.call('MSET', KEYS[1], 1, KEYS[2], 2)",
    "redis.call('INCR', KEYS[1]); return redis.pcall('LPUSH', KEYS[1], 'x')",
    "redis.setresp(3); redis.call('HSET', KEYS[2], 'f', '1.5'); return redis.call('HGETALL', KEYS[2])",
    "return redis.call('EXISTS', KEYS[1], KEYS[2], 'nosuch')",
]


@pytest.mark.parametrize("script", BOTH_SHARDS)
def test_scripts_on_both_shards_as_redis(server: Any, makod: Any, script: str) -> None:  # noqa: F811
    _same(server, makod, "EVAL", script, "2", K0, K1, "v", "w")


LIB = "#!lua name=lib\nredis.register_function('f', function(k, a) return redis.call('INCRBY', k[1], a[1]) end)"


@pytest.mark.parametrize("command,setup", [
    (("FCALL", "f", "1", K1, "5"), (("FUNCTION", "LOAD", LIB),)),
    (("FCALL_RO", "f", "1", K1, "5"), (("FUNCTION", "LOAD", LIB),)),
    (("FCALL", "nosuch", "0"), ()),
    (("FCALL", "f", "5", K1), (("FUNCTION", "LOAD", LIB),)),
    (("FUNCTION", "LOAD", LIB), (("FUNCTION", "LOAD", LIB),)),
    (("FUNCTION", "LIST", "WITHCODE"), (("FUNCTION", "LOAD", LIB),)),
    (("FUNCTION", "DELETE", "nosuch"), ()),
    (("FUNCTION", "STATS"), (("FUNCTION", "LOAD", LIB),)),
    (("FUNCTION", "RESTORE", "garbage"), ()),
    (("FUNCTION", "FLUSH", "LATER"), ()),
    (("SCRIPT", "EXISTS", "a" * 40), ()),
    (("SCRIPT", "KILL"), ()),
    (("EVALSHA", "b" * 40, "0"), ()),
    (("EVAL", "return 1", "-1"), ()),
    (("EVAL", "return 1", "3", "a"), ()),
    (("EVAL", "return 1", "x"), ()),
    (("EVAL", "retur 1", "0"), ()),
    (("EVAL_RO", "return redis.call('SET', KEYS[1], 1)", "1", K0), ()),
    (("EVAL", "#!lua flags=no-writes\nreturn redis.call('SET', KEYS[1], 1)", "1", K0), ()),
])
def test_functions_and_script_commands_as_redis(server: Any, makod: Any, command: tuple, setup: tuple) -> None:  # noqa: F811
    _same(server, makod, *command, setup=setup)
