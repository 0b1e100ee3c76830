"""Numbered databases: the internal key mapping (kv/dbs.py) and the commands
that see databases (SELECT, MOVE, COPY ... DB, SWAPDB, FLUSHDB, FLUSHALL,
DBSIZE, KEYS, SCAN, RANDOMKEY), through the handlers and through a session."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makod.config import ConfigError, default_config_dict, parse_config
from makod.core.durability import Checkpoint
from makod.core.slots import SlotMap, key_slot
from makod.kv import dbs
from makod.kv.records import OP_DEL, OP_FLUSH, Record
from makod.kv.requests import TxnRequest, WatchRequest, request_from_wire
from makod.storage.base import encode_record
from makod.storage.lmdb_store import LmdbStore
from resp.replies import NULL_ARRAY, ErrorReply, SimpleString
from resp.session import Session
from tests.unit.harness import Harness

KEYS = st.one_of(
    st.binary(max_size=12),
    st.builds(lambda tail: dbs.MARK + tail, st.binary(max_size=12)),  # keys that look internal
    st.sampled_from([b"\xff", b"\xff0:", b"\xff1:a", b"\xff:", b"{t}x", b"\xff1:{t}x"]),
)
DBS = st.integers(min_value=0, max_value=20)


# -- the mapping -----------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(DBS, KEYS, DBS, KEYS)
def test_the_mapping_is_injective_and_decodable(db1, key1, db2, key2):
    i1, i2 = dbs.encode(db1, key1), dbs.encode(db2, key2)
    assert dbs.decode(i1) == (db1, key1) and dbs.decode(i2) == (db2, key2)
    assert dbs.user_key(i1) == key1 and dbs.db_of(i1) == db1
    assert dbs.is_internal(i1)
    assert (i1 == i2) == ((db1, key1) == (db2, key2))


@settings(max_examples=200, deadline=None)
@given(DBS, KEYS)
def test_a_key_lives_on_its_user_keys_shard_in_every_database(db, key):
    slots = SlotMap([[(0, 4095)], [(4096, 8191)], [(8192, 16383)]])
    owner = slots.shard_of_slot(key_slot(key))
    assert slots.shard_of(dbs.encode(db, key)) == owner
    assert slots.shard_of_user(db, key) == owner


@settings(max_examples=200, deadline=None)
@given(DBS, KEYS)
def test_spans_hold_exactly_the_databases_keys(db, key):
    ikey = dbs.encode(db, key)
    for other in (db, db + 1, db + 10, 0, 1):
        inside = any(start <= ikey and (end is None or ikey < end) for start, end in dbs.spans(other))
        assert inside == (other == db), (other, ikey)


def test_databases_setting_is_validated():
    data = default_config_dict(1, 1, 20000)
    assert parse_config(data, "c.yaml").databases == 16
    data["databases"] = 64
    assert parse_config(data, "c.yaml").databases == 64
    for bad in (0, -1, "16", True):
        data["databases"] = bad
        with pytest.raises(ConfigError, match="c.yaml.*databases"):
            parse_config(data, "c.yaml")


def test_requests_carry_the_database_on_the_wire():
    req = TxnRequest([[b"GET", b"k"], [b"GET", b"k"]], multi=True, watches=[(b"k", 3, 2)], db=4, dbs=[4, 5])
    back = request_from_wire(req.to_wire())
    assert (back.db, back.dbs, back.db_of(1), back.watch_items()) == (4, [4, 5], 5, [(2, b"k", 3)])
    assert request_from_wire(WatchRequest([b"k"], 9).to_wire()).db == 9
    # A pair (what the simulator sends) is a WATCH in the request's database.
    assert TxnRequest([], watches=[(b"k", 1)], db=3).watch_items() == [(3, b"k", 1)]


def test_a_600_byte_key_of_db5_is_stored_and_loaded(tmp_path):
    ikey = dbs.encode(5, b"L" * 600)
    store = LmdbStore(str(tmp_path), identity={"t": 1})
    final = Checkpoint(applied_slot=1, clock=1, keys=[], value_of=lambda k: None, flush=False)
    store.checkpoint_chunk_job([(ikey, encode_record(Record(0, b"long", None, 1, None)))], False, final)()
    store.close()
    store = LmdbStore(str(tmp_path), identity={"t": 1})
    ks = store.load().keyspace
    store.close()
    assert ks.get(ikey).value == b"long"
    assert ks.db_size(5) == 1 and ks.db_size(0) == 0 and ks.db_keys(5) == [ikey]


# -- the commands, through their handlers ------------------------------------------------------


def ok(reply: Any) -> bool:
    return reply == SimpleString("OK")


def in_db(h: Harness, db: int, *argv: Any) -> Any:
    saved, h.db = h.db, db
    try:
        return h.run(*argv)
    finally:
        h.db = saved


def test_same_names_in_databases_stay_apart():
    h = Harness()
    for db in (0, 1, 2, 10):
        assert ok(in_db(h, db, "SET", "k", f"v{db}"))
    assert ok(in_db(h, 0, "SET", b"\xff1:k", "looks internal"))
    assert [in_db(h, db, "GET", "k") for db in (0, 1, 2, 10)] == [b"v0", b"v1", b"v2", b"v10"]
    assert in_db(h, 1, "GET", b"\xff1:k") is None and in_db(h, 0, "GET", b"\xff1:k") == b"looks internal"
    assert [in_db(h, db, "DBSIZE") for db in (0, 1, 2, 3)] == [2, 1, 1, 0]
    assert sorted(in_db(h, 0, "KEYS", "*")) == [b"k", b"\xff1:k"]
    assert in_db(h, 1, "KEYS", "*") == [b"k"] and in_db(h, 3, "KEYS", "*") == []
    assert in_db(h, 10, "SCAN", 0) == [b"0", [b"k"]]
    assert in_db(h, 2, "SCAN", 0, "MATCH", "x*") == [b"0", []]
    assert in_db(h, 2, "RANDOMKEY") == b"k" and in_db(h, 3, "RANDOMKEY") is None
    assert in_db(h, 1, "EXISTS", "k", "k") == 2 and in_db(h, 3, "EXISTS", "k") == 0


def test_select_errors_match_redis():
    h = Harness()
    assert h.run("SELECT", 16) == ErrorReply("ERR DB index is out of range")
    assert h.run("SELECT", -1) == ErrorReply("ERR DB index is out of range")
    assert h.run("SELECT", "x") == ErrorReply("ERR value is not an integer or out of range")
    assert h.run("SELECT", "01") == ErrorReply("ERR value is not an integer or out of range")
    assert h.run("SELECT", 1 << 31) == ErrorReply(
        "ERR value is out of range, value must between -2147483648 and 2147483647")
    assert ok(h.run("SELECT", 15)) and h.db == 15


def test_move_keeps_the_value_and_ttl():
    h = Harness()
    assert h.run("RPUSH", "l", "a", "b") == 2
    assert ok(h.run("SET", "s", "v", "EX", 100))
    assert h.run("MOVE", "s", 3) == 1 and h.run("GET", "s") is None
    assert in_db(h, 3, "TTL", "s") == 100 and in_db(h, 3, "GET", "s") == b"v"
    assert h.run("MOVE", "l", 3) == 1 and in_db(h, 3, "LRANGE", "l", 0, -1) == [b"a", b"b"]
    assert h.run("MOVE", "nope", 3) == 0
    assert ok(h.run("SET", "s", "again"))
    assert h.run("MOVE", "s", 3) == 0 and h.run("GET", "s") == b"again"  # the target exists: nothing moves
    assert h.run("MOVE", "s", 0) == ErrorReply("ERR source and destination objects are the same")
    assert h.run("MOVE", "s", 16) == ErrorReply("ERR DB index is out of range")
    assert h.run("MOVE", "s", "x") == ErrorReply("ERR value is not an integer or out of range")


def test_copy_to_another_database():
    h = Harness()
    h.run("HSET", "h", "f", "v")
    assert h.run("COPY", "h", "h", "DB", 2) == 1
    assert in_db(h, 2, "HGET", "h", "f") == b"v"
    assert h.run("COPY", "h", "h", "DB", 2) == 0
    h.run("HSET", "h", "f", "w")
    assert h.run("COPY", "h", "h", "DB", 2, "REPLACE") == 1 and in_db(h, 2, "HGET", "h", "f") == b"w"
    assert h.run("COPY", "h", "h", "DB", 0) == ErrorReply("ERR source and destination objects are the same")
    assert h.run("COPY", "h", "h2", "DB", 16) == ErrorReply("ERR DB index is out of range")


def test_swapdb_swaps_every_key_and_ttl():
    h = Harness()
    in_db(h, 1, "SET", "a", "one", "EX", 50)
    in_db(h, 1, "SET", "both", "one")
    in_db(h, 2, "SADD", "b", "x")
    in_db(h, 2, "SET", "both", "two")
    assert ok(h.run("SWAPDB", 1, 2))
    assert in_db(h, 2, "GET", "a") == b"one" and in_db(h, 2, "TTL", "a") == 50
    assert in_db(h, 1, "SISMEMBER", "b", "x") == 1
    assert in_db(h, 1, "GET", "both") == b"two" and in_db(h, 2, "GET", "both") == b"one"
    assert (in_db(h, 1, "DBSIZE"), in_db(h, 2, "DBSIZE")) == (2, 2)
    assert ok(h.run("SWAPDB", 0, 2)) and sorted(in_db(h, 0, "KEYS", "*")) == [b"a", b"both"]
    assert ok(h.run("SWAPDB", 3, 3))
    assert h.run("SWAPDB", "x", 1) == ErrorReply("ERR invalid first DB index")
    assert h.run("SWAPDB", 16, "y") == ErrorReply("ERR invalid second DB index")
    assert h.run("SWAPDB", 0, 16) == ErrorReply("ERR DB index is out of range")


def test_flushdb_flushes_one_database_flushall_every_one():
    h = Harness()
    h.run("SET", "a", "0")
    assert ok(in_db(h, 0, "FLUSHDB", "ASYNC"))
    assert h.last_ctx.ops == [(OP_FLUSH,)]  # db 0 held every key: one FLUSH op
    for db in (0, 1, 2):
        in_db(h, db, "SET", "k", db)
    assert ok(in_db(h, 1, "FLUSHDB"))
    assert h.last_ctx.ops == [(OP_DEL, dbs.encode(1, b"k"))]  # others hold keys: a DEL per key
    assert [in_db(h, db, "DBSIZE") for db in (0, 1, 2)] == [1, 0, 1]
    assert in_db(h, 1, "FLUSHDB", "x") == ErrorReply("ERR syntax error")
    assert ok(in_db(h, 2, "FLUSHALL"))
    assert [in_db(h, db, "DBSIZE") for db in (0, 1, 2)] == [0, 0, 0]


def test_a_rolled_back_flush_restores_every_database():
    h = Harness()
    for db in (0, 4):
        in_db(h, db, "SET", "k", db)
    ctx = h.context()
    ctx.flush()
    assert h.ks.db_size(4) == 0
    h.ks.rollback(ctx.undo)
    assert h.ks.db_size(4) == 1 and h.ks.db_size(0) == 1 and h.ks.db_stats() == {0: (1, 0), 4: (1, 0)}


# -- through a session: SELECT in MULTI, WATCH per database ------------------------------------


class _BlockingHarness(Harness):
    may_block = False

    def context(self):
        ctx = Harness.context(self)
        ctx.may_block = self.may_block
        return ctx


class _Host:
    """Runs a session's requests on one Harness, per command database, as a replica would."""

    requirepass = None
    databases = 16

    def __init__(self) -> None:
        self.h = _BlockingHarness()
        self.seen: list = []
        self.later: list = []

    def now_ms(self) -> int:
        return self.h.now_ms

    def submit(self, session: Any, token: int, request: Any) -> tuple[Any, bool]:
        self.seen.append(request)
        h = self.h
        if type(request) is WatchRequest:
            ctx = h.context()
            ctx.db = request.db
            return [ctx.version_of(k) for k in request.keys], True
        for db, key, version in request.watch_items():
            ctx = h.context()
            ctx.db = db
            if ctx.version_of(key) != version:
                return NULL_ARRAY, True
        replies = []
        for i, argv in enumerate(request.commands):
            h.may_block = not request.multi
            replies.append(in_db(h, request.db_of(i), *argv))
        return (replies if request.multi else replies[0]), True

    def call_later(self, delay_ms: int, session: Any, fn: Any) -> None:
        self.later.append(fn)


def _send(session: Session, *argv: bytes) -> bytes:
    session.feed(b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv))
    return session.take_output()


def test_select_queued_in_multi_takes_effect_at_exec():
    host = _Host()
    s = Session(host, 1)
    assert _send(s, b"SELECT", b"2") == b"+OK\r\n"
    assert _send(s, b"SET", b"k", b"two") == b"+OK\r\n"
    assert host.seen[-1].db == 2
    for argv in ([b"MULTI"], [b"SET", b"k", b"before"], [b"SELECT", b"5"], [b"SET", b"k", b"after"],
                 [b"SELECT", b"99"], [b"GET", b"k"]):
        _send(s, *argv)
    out = _send(s, b"EXEC")
    assert out == b"*5\r\n+OK\r\n+OK\r\n+OK\r\n-ERR DB index is out of range\r\n$5\r\nafter\r\n"
    assert host.seen[-1].dbs == [2, 5, 5] and s.db == 5
    assert in_db(host.h, 2, "GET", "k") == b"before"
    assert _send(s, b"RESET") == b"+RESET\r\n" and s.db == 0


def test_watch_is_per_database():
    host = _Host()
    s = Session(host, 1)
    _send(s, b"SELECT", b"3")
    _send(s, b"WATCH", b"k")
    in_db(host.h, 0, "SET", "k", "another database")
    _send(s, b"MULTI")
    _send(s, b"SET", b"x", b"1")
    assert _send(s, b"EXEC") == b"*1\r\n+OK\r\n"
    _send(s, b"WATCH", b"k")
    in_db(host.h, 3, "SET", "k", "this database")
    _send(s, b"SELECT", b"0")  # the watch stays on db 3's key
    _send(s, b"MULTI")
    _send(s, b"SET", b"x", b"1")
    assert _send(s, b"EXEC") == b"*-1\r\n"


def test_a_follower_replaying_the_logged_ops_reaches_the_same_databases():
    # Ops carry internal keys: a replica applying them knows nothing of databases
    # and still ends with the same keys and per-database bookkeeping.
    h = Harness()
    follower = type(h.ks)()
    script = [
        (0, "SET", "k", "a"), (1, "SET", "k", "b", "EX", 100), (2, "RPUSH", "l", "x", "y"),
        (0, "SET", b"\xff2:l", "escaped"), (1, "MOVE", "k", 3), (2, "COPY", "l", "l", "DB", 4),
        (0, "SWAPDB", 2, 3), (4, "FLUSHDB"), (3, "LPOP", "l"), (5, "SET", "z", "1"), (5, "MOVE", "z", 0),
    ]
    for db, *argv in script:
        in_db(h, db, *argv)
        for op in h.last_ctx.ops:
            follower.apply(op, h.version, None)
    assert follower.data.keys() == h.ks.data.keys()
    assert follower.db_stats() == h.ks.db_stats() == {0: (3, 0), 2: (1, 1), 3: (1, 0)}
    assert all(follower.db_size(db) == h.ks.db_size(db) for db in range(6))


def test_a_blocked_read_is_retried_in_its_database():
    host = _Host()
    s = Session(host, 1)
    _send(s, b"SELECT", b"3")
    in_db(host.h, 3, "XADD", "s", "1-1", "f", "v")
    assert _send(s, b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$") == b""  # waits
    _send(s, b"SELECT", b"0")  # pipelined behind the blocked read: not run yet
    in_db(host.h, 0, "XADD", "s", "1-2", "f", "db0")
    in_db(host.h, 3, "XADD", "s", "1-3", "f", "db3")
    host.later.pop(0)()
    assert host.seen[-1].db == 3 and host.seen[-1].commands[0][-1] == b"1-1"  # the concrete form, in db 3
    out = s.take_output()
    assert b"db3" in out and b"db0" not in out and out.endswith(b"+OK\r\n")
