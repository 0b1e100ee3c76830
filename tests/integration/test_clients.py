"""A real makod driven by redis-py (RESP2 and RESP3) and redis-cli."""

from __future__ import annotations

import subprocess

import pytest
import redis

from tests.integration.cluster_util import wait_for


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def r(single, request):
    client = single.client(protocol=request.param, decode_responses=True)
    client.flushall()
    yield client
    client.close()


def test_strings_hashes_and_expiry(r):
    assert r.set("greeting", "hello") is True
    assert r.get("greeting") == "hello"
    assert r.append("greeting", " world") == 11
    assert r.incr("counter") == 1
    assert r.incrby("counter", 41) == 42
    assert r.incrbyfloat("f", 1.5) == 1.5
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "b", "missing") == ["1", "2", None]
    assert r.hset("user:1", mapping={"name": "ada", "lang": "en"}) == 2
    assert r.hgetall("user:1") == {"name": "ada", "lang": "en"}
    assert r.hincrby("user:1", "visits", 3) == 3
    assert sorted(r.hkeys("user:1")) == ["lang", "name", "visits"]
    assert r.type("user:1") == "hash"
    assert r.set("temp", "x", px=150) is True
    assert 0 < r.pttl("temp") <= 150
    wait_for(lambda: r.get("temp") is None, timeout=3, what="lazy expiry of temp")
    assert r.exists("greeting", "greeting", "nope") == 2
    assert r.dbsize() == 6  # greeting counter f a b user:1


def test_errors_are_redis_errors(r):
    r.set("s", "text")
    with pytest.raises(redis.ResponseError, match="^WRONGTYPE Operation against a key holding the wrong kind of value$"):
        r.hget("s", "f")
    with pytest.raises(redis.ResponseError, match="^value is not an integer or out of range$"):
        r.incr("s")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get' command"):
        r.execute_command("GET")
    with pytest.raises(redis.ResponseError, match="unknown command 'NOPE', with args beginning with: 'x' "):
        r.execute_command("NOPE", "x")
    # The connection still works after every error.
    assert r.get("s") == "text"


def test_pipeline_keeps_order(r):
    pipe = r.pipeline(transaction=False)
    for i in range(500):
        pipe.set(f"k{i}", i)
        pipe.incr(f"k{i}")
    results = pipe.execute()
    assert results == [True, *[None]] * 0 + [x for i in range(500) for x in (True, i + 1)]
    assert r.get("k499") == "500"


def test_multi_exec_and_watch(single):
    a = single.client(decode_responses=True)
    b = single.client(decode_responses=True)
    a.flushall()
    a.set("balance", 100)
    with a.pipeline() as pipe:  # WATCH without interference: EXEC runs
        pipe.watch("balance")
        value = int(pipe.get("balance"))
        pipe.multi()
        pipe.set("balance", value - 30)
        pipe.incr("audit")
        assert pipe.execute() == [True, 1]
    assert a.get("balance") == "70"
    with a.pipeline() as pipe:  # another client writes the key: EXEC answers null
        pipe.watch("balance")
        pipe.get("balance")
        b.set("balance", 0)
        pipe.multi()
        pipe.set("balance", 999)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert a.get("balance") == "0"
    # Runtime errors inside EXEC do not stop the other commands.
    with a.pipeline() as pipe:
        pipe.set("str", "x")
        pipe.hset("str", "f", "v")
        pipe.set("after", "yes")
        out = pipe.execute(raise_on_error=False)
    assert out[0] is True and isinstance(out[1], redis.ResponseError) and out[2] is True
    assert a.get("after") == "yes"


def _conn(single):
    conn = redis.Connection(host="127.0.0.1", port=single.port(), protocol=2, socket_timeout=15)
    conn.connect()

    def call(*args):
        conn.send_command(*args)
        try:
            return conn.read_response()
        except redis.ResponseError as exc:
            return exc

    return call


def test_queueing_error_aborts_exec(single):
    call = _conn(single)
    call("DEL", "x")
    assert call("MULTI") == b"OK"
    assert call("SET", "x", "1") == b"QUEUED"
    assert str(call("GET")) == "wrong number of arguments for 'get' command"
    assert str(call("EXEC")) == "Transaction discarded because of previous errors."
    assert call("GET", "x") is None


def test_transaction_errors(single):
    call = _conn(single)
    assert str(call("EXEC")) == "EXEC without MULTI"
    assert str(call("DISCARD")) == "DISCARD without MULTI"
    assert call("MULTI") == b"OK"
    assert str(call("MULTI")) == "MULTI calls can not be nested"
    assert str(call("WATCH", "k")) == "WATCH inside MULTI is not allowed"
    assert call("PING") == b"QUEUED"
    assert call("INCR", "tx-counter") == b"QUEUED"
    reply = call("EXEC")
    assert reply[0] == b"PONG" and isinstance(reply[1], int)
    assert call("MULTI") == b"OK"
    assert call("SET", "d", "1") == b"QUEUED"
    assert call("DISCARD") == b"OK"
    assert call("GET", "d") is None


def test_hello_and_client_commands(single):
    c = single.client(protocol=3)
    hello = c.execute_command("HELLO", "3")
    assert hello[b"proto"] == 3 and hello[b"mode"] == b"standalone" and hello[b"modules"] == []
    assert hello[b"version"].count(b".") == 2
    with pytest.raises(redis.ResponseError, match="unsupported protocol version"):
        c.execute_command("HELLO", "4")
    c.client_setname("worker-1")
    assert c.client_getname() == b"worker-1"
    assert any(cl["name"] == "worker-1" for cl in c.client_list())
    info = c.info()
    assert info["redis_version"].count(".") == 2 and info["cluster_enabled"] == 1
    assert {"arch_bits", "process_id", "tcp_port", "connected_clients", "used_memory", "role"} <= set(info)
    assert c.command_count() > 60
    get_info = c.command_info()["get"] if False else c.command()["get"]
    assert get_info["arity"] == 2 and "readonly" in get_info["flags"]
    call = _conn(single)
    docs = call("COMMAND", "DOCS", "get")
    assert docs[0] == b"get" and b"summary" in docs[1]
    info = call("COMMAND", "INFO", "mset")
    assert info[0][:6] == [b"mset", -3, [b"write", b"denyoom"], 1, -1, 2]


def test_redis_cli(single):
    port = str(single.port())
    def cli(*args: str, stdin: str | None = None) -> str:
        return subprocess.run(
            ["redis-cli", "-p", port, *args], input=stdin, capture_output=True, text=True, timeout=20
        ).stdout
    assert cli("SET", "cli-key", "cli value").strip() == "OK"
    assert cli("GET", "cli-key").strip() == "cli value"
    # Commands typed interactively (redis-cli reads them from stdin, one per line).
    out = cli(stdin="SET piped 1\nINCR piped\nGET piped\n")
    assert out.split() == ["OK", "2", "2"]
    assert "ERR unknown command 'FROB'" in cli("FROB", "x")
    assert "redis_version" in cli("INFO", "server")
    assert cli("--no-raw", "HGETALL", "missing").strip() == "(empty array)"


def test_active_expiry_without_access(single):
    c = single.client()
    c.flushall()
    for i in range(50):
        c.set(f"vol:{i}", "x", px=100)
    c.set("keeper", "y")
    wait_for(lambda: c.dbsize() == 1, timeout=5, what="active expiry")
    assert c.get("keeper") == b"y"


def test_scan_visits_every_key(single):
    c = single.client()
    c.flushall()
    keys = {f"scan:{i}".encode() for i in range(300)}
    for k in keys:
        c.set(k, 1)
    assert set(c.scan_iter(count=17)) == keys
    assert set(c.scan_iter(match="scan:1*", count=50)) == {k for k in keys if k.startswith(b"scan:1")}
    assert sorted(c.keys("scan:29?")) == sorted(k for k in keys if k.startswith(b"scan:29") and len(k) == 8)
