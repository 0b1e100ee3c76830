"""GET's fast path (makod/core/fast_path.py, asked straight from the session
when no reply is pending ahead): every answer it gives is the one the full
path would give, in order, counted like any other command, and it steps
aside for whatever it cannot answer (wrong type, expired key, a reply still
pending ahead of it in a pipeline)."""

from __future__ import annotations

import socket
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


@pytest.fixture
def c(single):
    client = single.client(retry=Retry(NoBackoff(), 0))
    yield client
    client.close()


def _info(c: redis.Redis, section: str) -> dict:
    return c.info(section)


def test_pipelined_gets_see_the_sets_before_them_in_order(c):
    pipe = c.pipeline(transaction=False)
    for i in range(150):
        pipe.get(f"fr:{i % 7}")
        pipe.set(f"fr:{i % 7}", i)
        pipe.get(f"fr:{i % 7}")
    replies = pipe.execute()
    last: dict[int, int] = {}
    for i in range(150):
        before, ok, after = replies[3 * i : 3 * i + 3]
        k = i % 7
        assert before == (None if k not in last else str(last[k]).encode()), i
        assert ok is True
        assert after == str(i).encode()
        last[k] = i


def test_fast_reads_are_counted_like_any_command(c):
    c.set("fr:hit", "v")
    calls = _info(c, "commandstats").get("cmdstat_get", {}).get("calls", 0)
    stats = _info(c, "stats")
    for _ in range(25):
        assert c.get("fr:hit") == b"v"
    for _ in range(5):
        assert c.get("fr:absent") is None
    after = _info(c, "stats")
    assert _info(c, "commandstats")["cmdstat_get"]["calls"] - calls == 25 + 5
    assert after["keyspace_hits"] - stats["keyspace_hits"] == 25
    assert after["keyspace_misses"] - stats["keyspace_misses"] == 5


def test_what_the_fast_path_cannot_answer_takes_the_full_path(c, single):
    c.rpush("fr:list", "a")
    with pytest.raises(redis.ResponseError) as exc:
        c.get("fr:list")
    assert str(exc.value) == "WRONGTYPE Operation against a key holding the wrong kind of value"
    c.set("fr:soon", "x", px=30)
    time.sleep(0.1)
    assert c.get("fr:soon") is None
    assert c.exists("fr:soon") == 0
    # Numbered databases: the key is db 3's, not db 0's.
    db3 = single.client(db=3, retry=Retry(NoBackoff(), 0))
    db3.set("fr:db", "three")
    c.set("fr:db", "zero")
    assert db3.get("fr:db") == b"three" and c.get("fr:db") == b"zero"
    db3.close()


def test_client_reply_skip_silences_a_fast_get(single):
    with socket.create_connection(("127.0.0.1", single.port()), timeout=5) as s:
        s.sendall(b"SET fr:skip v\r\nCLIENT REPLY SKIP\r\nGET fr:skip\r\nPING\r\n")
        want = b"+OK\r\n+PONG\r\n"
        got = b""
        while len(got) < len(want):
            chunk = s.recv(100)
            assert chunk, got
            got += chunk
        assert got == want
