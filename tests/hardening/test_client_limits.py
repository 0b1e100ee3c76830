"""Per-client memory bounds and the idle timeout, against a real makod."""

from __future__ import annotations

import socket
import time

import pytest

from tests.integration.cluster_util import wait_for


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    from tests.integration.cluster_util import Cluster

    c = Cluster(tmp_path_factory.mktemp("limits") / "data", config={
        "client_output_buffer_limit": {"normal": [8 << 20, 1 << 20, 2]},
        "client_query_buffer_limit": 1 << 20,
        "timeout": 2,
    })
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _stats(cluster) -> dict:
    return cluster.client().info("stats")


def _closed(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(1 << 20):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def _reluctant_reader(cluster) -> socket.socket:
    """A connection with a tiny receive buffer, so replies pile up on the server."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", cluster.port()))
    return s


def test_a_client_that_never_reads_is_closed_at_the_hard_limit(limited):
    c = limited.client()
    c.set(b"big", b"x" * (1 << 20))
    before = _stats(limited)["client_output_buffer_limit_disconnections"]
    s = _reluctant_reader(limited)
    try:
        s.sendall(b"GET big\r\n" * 2000)  # 2 GB of replies asked for; never read
    except (ConnectionResetError, BrokenPipeError):
        pass
    wait_for(lambda: _stats(limited)["client_output_buffer_limit_disconnections"] > before, timeout=20,
             what="the non-reading client closed")
    s.close()
    assert c.ping() is True
    assert c.get(b"big") == b"x" * (1 << 20)
    rss_mb = int(next(l.split()[1] for l in open(f"/proc/{_pid(limited)}/status") if l.startswith("VmRSS"))) / 1024
    assert rss_mb < 400, f"makod holds {rss_mb:.0f} MB after a never-reading client"


def test_a_slow_reader_over_the_soft_limit_is_closed_after_soft_seconds(limited):
    c = limited.client()
    c.set(b"mid", b"y" * (256 << 10))
    before = _stats(limited)["client_output_buffer_limit_disconnections"]
    s = _reluctant_reader(limited)
    s.sendall(b"GET mid\r\n" * 28)  # 7 MB: the kernel takes some; over the 1 MB soft limit, under the 8 MB hard one
    started = time.monotonic()
    s.sendall(b"PING\r\n")  # more output later re-checks the soft limit's clock
    time.sleep(2.5)
    try:
        s.sendall(b"PING\r\n")
    except OSError:
        pass
    wait_for(lambda: _stats(limited)["client_output_buffer_limit_disconnections"] > before, timeout=10,
             what="the slow client closed after soft-seconds")
    assert time.monotonic() - started >= 2
    s.close()


def test_query_buffer_limit_closes_the_client(limited):
    before = _stats(limited)["client_query_buffer_limit_disconnections"]
    with socket.create_connection(("127.0.0.1", limited.port()), timeout=5) as s:
        s.sendall(b"*2\r\n$3\r\nSET\r\n$100000000\r\n")
        try:
            for _ in range(40):
                s.sendall(b"z" * 65536)  # 2.5 MB of one incomplete argument
        except (ConnectionResetError, BrokenPipeError):
            pass
        assert _closed(s, 10)
    assert _stats(limited)["client_query_buffer_limit_disconnections"] == before + 1
    assert limited.client().ping() is True


def test_idle_clients_are_closed_after_timeout(limited):
    with socket.create_connection(("127.0.0.1", limited.port()), timeout=5) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
        started = time.monotonic()
        assert _closed(s, 10)
        assert 1.5 <= time.monotonic() - started <= 6


def _pid(cluster) -> int:
    import os

    return int(open(os.path.join(cluster.data_dir, cluster.names[0], "makod.pid")).read())
