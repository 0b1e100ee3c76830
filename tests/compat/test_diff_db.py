"""Differential tests (against redis-server) for numbered databases: SELECT,
MOVE, COPY ... DB, SWAPDB, FLUSHDB, FLUSHALL, DBSIZE, KEYS and SCAN per database.

Every script starts with SELECT 0: the module's redis-server connection keeps
its selected database from one script to the next.
"""

from __future__ import annotations

from typing import Any

import pytest

from makod.kv.table import TABLE
from tests.compat.test_differential import B, check, real, run_real  # noqa: F401  (the module's redis-server)
from tests.unit.harness import Harness

SCRIPTS = {
    "select": [
        B("SELECT", "16"), B("SELECT", "-1"), B("SELECT", "x"), B("SELECT", "01"), B("SELECT", " 1"),
        B("SELECT", "2147483648"), B("SELECT", "99999999999999999999"), B("SELECT"), B("SELECT", "1", "2"),
        B("SET", "k", "zero"), B("SELECT", "1"), B("GET", "k"), B("SET", "k", "one"), B("DBSIZE"),
        B("KEYS", "*"), B("SCAN", "0", "COUNT", "100"), B("RANDOMKEY"), B("SELECT", "15"), B("DBSIZE"),
        B("RANDOMKEY"), B("SELECT", "0"), B("GET", "k"), B("EXISTS", "k"),
    ],
    "move": [
        B("MOVE", "k", "1"), B("SET", "k", "v", "EX", "100"), B("MOVE", "k", "0"), B("MOVE", "k", "16"),
        B("MOVE", "k", "-1"), B("MOVE", "k", "x"), B("MOVE", "k", "2147483648"), B("MOVE", "k"),
        B("MOVE", "k", "1"), B("EXISTS", "k"), B("SELECT", "1"), B("GET", "k"), B("TTL", "k"),
        B("MOVE", "k", "0"), B("SELECT", "0"), B("SET", "k", "back"), B("SELECT", "1"), B("SET", "k", "again"),
        B("MOVE", "k", "0"), B("GET", "k"), B("SELECT", "0"), B("GET", "k"),
        B("RPUSH", "l", "a", "b"), B("MOVE", "l", "3"), B("SELECT", "3"), B("LRANGE", "l", "0", "-1"),
        B("TYPE", "l"), B("SELECT", "0"),
    ],
    "copy_db": [
        B("SET", "a", "1"), B("COPY", "a", "a", "DB", "1"), B("COPY", "a", "a", "DB", "1"),
        B("COPY", "a", "a", "DB", "0"), B("COPY", "a", "b", "DB", "16"), B("COPY", "a", "b", "DB", "x"),
        B("COPY", "a", "b", "DB", "2147483648"), B("COPY", "a", "b", "DB", "-1"), B("SET", "a", "2"),
        B("COPY", "a", "a", "DB", "1", "REPLACE"), B("COPY", "nope", "a", "DB", "1"),
        B("SELECT", "1"), B("GET", "a"), B("COPY", "a", "c", "DB", "0"), B("SELECT", "0"), B("GET", "c"),
        B("HSET", "h", "f", "v"), B("COPY", "h", "h", "DB", "4"), B("SELECT", "4"), B("HGET", "h", "f"),
        B("SELECT", "0"),
    ],
    "swapdb": [
        B("SET", "a", "zero"), B("SET", "t", "x", "EX", "100"), B("SELECT", "1"), B("SET", "a", "one"),
        B("SADD", "s", "m"), B("SWAPDB", "0", "1"), B("GET", "a"), B("TTL", "t"), B("TYPE", "s"),
        B("SELECT", "0"), B("GET", "a"), B("TTL", "t"), B("SMEMBERS", "s"), B("DBSIZE"),
        B("SWAPDB", "0", "0"), B("SWAPDB", "0", "16"), B("SWAPDB", "16", "0"), B("SWAPDB", "x", "1"),
        B("SWAPDB", "1", "y"), B("SWAPDB", "16", "y"), B("SWAPDB", "-1", "0"), B("SWAPDB", "2147483648", "1"),
        B("SWAPDB", "1"), B("SWAPDB", "5", "6"), B("DBSIZE"), B("SWAPDB", "0", "7"), B("DBSIZE"),
        B("SELECT", "7"), B("KEYS", "*"), B("SELECT", "0"),
    ],
    "flush_dbsize": [
        B("MSET", "a", "1", "b", "2"), B("SELECT", "2"), B("SET", "a", "x"), B("DBSIZE"), B("FLUSHDB", "ASYNC"),
        B("DBSIZE"), B("SELECT", "0"), B("DBSIZE"), B("SELECT", "2"), B("SET", "c", "3"), B("FLUSHDB", "x"),
        B("FLUSHDB", "SYNC", "x"), B("SELECT", "0"), B("FLUSHDB"), B("DBSIZE"), B("SELECT", "2"), B("DBSIZE"),
        B("KEYS", "*"), B("FLUSHALL", "SYNC"), B("DBSIZE"), B("SELECT", "0"), B("DBSIZE"),
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script(real: Any, name: str) -> None:  # noqa: F811
    check(real, Harness(), [B("SELECT", "0")] + SCRIPTS[name])


def test_command_info(real: Any) -> None:  # noqa: F811
    for name in ("select", "move", "swapdb", "copy", "flushdb", "flushall", "dbsize"):
        info = run_real(real, [b"COMMAND", b"INFO", name.encode()])[0]
        spec = TABLE.lookup(name.encode())
        flags = set(spec.flags)
        if name == "swapdb":
            # Our one difference: movablekeys tells routing that SWAPDB reads
            # whole databases on every shard (a cross-shard transaction).
            flags.discard("movablekeys")
        assert spec.arity == info[1], name
        assert flags == {f.decode() for f in info[2]}, name
        assert (spec.first_key, spec.last_key, spec.key_step) == tuple(info[3:6]), name
