"""CLIENT connection control against redis-server: REPLY ON/OFF/SKIP byte
for byte, KILL filters and their errors, tracking queries, HELP; and
CLIENT PAUSE holding this node's clients (writes only, or all) until it
ends or UNPAUSE."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

from tests.compat import test_differential
from tests.integration.cluster_util import Cluster

real = test_differential.real  # the redis-server fixture


@pytest.fixture(scope="module")
def mako(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("client-diff") / "data")
    try:
        c.start()
        yield c.port()
    finally:
        c.stop()


def _port(client) -> int:
    return client.connection_pool.connection_kwargs["port"]


def read_all(s: socket.socket, wait_s: float, quiet_s: float = 0.5) -> bytes:
    """What arrives in ``wait_s``, then until the socket is quiet for ``quiet_s``."""
    time.sleep(wait_s)
    s.settimeout(quiet_s)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    return out


def _exchange(port: int, data: bytes, wait_s: float = 0.3) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        return read_all(s, wait_s)


SCRIPTS = [
    b"CLIENT REPLY OFF\r\nSET a 1\r\nGET a\r\nCLIENT REPLY ON\r\nGET a\r\nCLIENT REPLY SKIP\r\nGET a\r\nPING\r\n"
    b"CLIENT REPLY SKIP\r\nCLIENT REPLY SKIP\r\nPING\r\nPING\r\nCLIENT REPLY BAD\r\n",
    b"CLIENT REPLY OFF\r\nNOSUCH\r\nGET\r\nCLIENT REPLY ON\r\nPING\r\n",
    b"CLIENT KILL TYPE foo\r\nCLIENT KILL USER nobody\r\nCLIENT KILL ID 0\r\nCLIENT KILL ID abc\r\n"
    b"CLIENT KILL 1.2.3.4:5\r\nCLIENT KILL ADDR 1.2.3.4:5\r\nCLIENT KILL SKIPME maybe\r\nCLIENT KILL ADDR\r\n",
    b"CLIENT TRACKINGINFO\r\nCLIENT GETREDIR\r\nCLIENT CACHING yes\r\nCLIENT TRACKING maybe\r\nCLIENT NO-EVICT on\r\n"
    b"CLIENT NO-EVICT maybe\r\nCLIENT NO-EVICT off\r\n",
    b"CLIENT PAUSE abc\r\nCLIENT PAUSE -1\r\nCLIENT PAUSE 10 SOME\r\nCLIENT UNPAUSE\r\nCLIENT HELP\r\n",
    b"HELLO 3\r\nCLIENT TRACKINGINFO\r\n",
]


@pytest.mark.parametrize("script", SCRIPTS, ids=range(len(SCRIPTS)))
def test_same_bytes_as_redis(real, mako, script):
    ours, theirs = _exchange(mako, script), _exchange(_port(real), script)
    if script.startswith(b"HELLO"):
        # HELLO names the server and its version: compare what follows it.
        ours, theirs = ours[ours.index(b"%3\r\n$5\r\nflags"):], theirs[theirs.index(b"%3\r\n$5\r\nflags"):]
    assert ours == theirs


def test_kill_by_type_and_maxage_spares_the_caller(mako):
    me = redis.Redis(port=mako)
    sub = socket.create_connection(("127.0.0.1", mako), timeout=5)
    sub.sendall(b"SUBSCRIBE ch\r\n")
    assert sub.recv(100).startswith(b"*3")
    assert me.execute_command("CLIENT", "KILL", "TYPE", "pubsub") == 1
    assert sub.recv(100) == b"", "the subscriber's connection is closed"
    sub.close()
    others = [redis.Redis(port=mako) for _ in range(3)]
    for o in others:
        o.ping()
    killed = me.execute_command("CLIENT", "KILL", "MAXAGE", "0", "USER", "default")
    assert killed >= 3 and me.ping()


def test_pause_write_holds_writes_not_reads_and_unpause_releases(mako):
    admin, writer = redis.Redis(port=mako), redis.Redis(port=mako)
    admin.execute_command("CLIENT", "PAUSE", "1000", "WRITE")
    start = time.monotonic()
    assert writer.get("nope") is None
    assert time.monotonic() - start < 0.5, "reads pass a WRITE pause"
    start = time.monotonic()
    assert writer.set("p", 1)
    assert time.monotonic() - start >= 0.9, "writes wait for the pause to end"
    admin.execute_command("CLIENT", "PAUSE", "10000", "WRITE")
    done = []
    t = threading.Thread(target=lambda: done.append(writer.set("p", 2)))
    start = time.monotonic()
    t.start()
    time.sleep(0.3)
    assert not done
    redis.Redis(port=mako).execute_command("CLIENT", "UNPAUSE")  # a read-free admin command passes WRITE
    t.join(5)
    assert done == [True] and time.monotonic() - start < 3
