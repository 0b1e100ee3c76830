"""The differential tests again, on real clusters: every hand-written script of
every type and every random-sequence test runs against redis-server and,
command by command, against a 2 shards x 3 replicas makod cluster over a
real RESP2 connection (every other script also against a 1x1: each write
waits for its fsync, and CI's time is bounded); replies must match exactly
as in the in-process tests. On 2x3 a script's keys land on both shards, so multi-key
commands (SUNIONSTORE, ZINTERSTORE, LMOVE, SORT ... STORE, COPY, RESTORE,
XREAD ...) run as distributed transactions.

Each module's own test functions run unchanged: only their ``Harness`` is
replaced by ``ClusterHarness``, which sends each command to the cluster and
hands back what it answered in the form the comparisons expect.
"""

from __future__ import annotations

import importlib
import socket
from typing import Any

import hiredis
import pytest

from makod.kv.args import parse_cursor
from makod.kv.errors import CommandError
from resp.replies import ErrorReply
from tests.compat.test_differential import real  # noqa: F401  (the redis-server fixture)
from tests.integration.cluster_util import Cluster
from tests.unit.harness import as_bytes

# module -> (scripts attribute, random-sequence test or None)
MODULES = {
    "test_differential": ("SCRIPTS", "test_generated_sequences"),
    "test_diff_lists": ("SCRIPTS", "test_random_list_sequences"),
    "test_diff_sets": ("SCRIPTS", "test_generated_sequences"),
    "test_diff_zsets": ("SCRIPTS", "test_generated_sequences"),
    "test_diff_bitmaps": ("BITMAP_SCRIPTS", "test_generated_bitmap_sequences"),
    "test_diff_geo": ("SCRIPTS", "test_generated_sequences"),
    "test_diff_sort": ("SCRIPTS", "test_generated_sequences"),
    "test_diff_streams": ("SCRIPTS", "test_random_stream_sequences"),
    "test_diff_keys_more": ("SCRIPTS", None),
    "test_diff_dump": ("SCRIPTS", None),
    "test_diff_db": ("SCRIPTS", None),
}


# Scripts whose checks are about the in-process harness itself, not replies.
HARNESS_ONLY = {
    # Its tail asserts that the harness's context may not block (a real node blocks 5 s).
    ("test_diff_lists", "blocking_with_elements"),
}


def _module(name: str):
    return importlib.import_module(f"tests.compat.{name}")


def _cases() -> list[tuple[str, str]]:
    out = []
    for name, (attr, _) in MODULES.items():
        out.extend((name, script) for script in sorted(getattr(_module(name), attr))
                   if (name, script) not in HARNESS_ONLY)
    return out


def _pack(argv: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


def _cursor(arg: bytes) -> int | None:
    try:
        return parse_cursor(arg)
    except CommandError:
        return None


def _as_ours(reply: Any) -> Any:
    """A reply parsed by hiredis, as a reply value our encoder gives back unchanged."""
    if isinstance(reply, hiredis.ReplyError):
        return ErrorReply(str(reply))
    if isinstance(reply, list):
        return [_as_ours(r) for r in reply]
    return reply


class ClusterHarness:
    """What the differential tests use of tests.unit.harness.Harness (``run`` and
    ``now_ms``), on one connection to a real node. Starts from an empty cluster."""

    def __init__(self, port: int) -> None:
        self.now_ms = 0
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.reader = hiredis.Reader()
        assert self.run(b"FLUSHALL") == b"OK"

    def run(self, *args: Any) -> Any:
        argv = [as_bytes(a) for a in args]
        if argv[0].upper() == b"SCAN" and len(argv) > 1 and _cursor(argv[1]) == 0:
            return self._full_scan(argv)
        return self._call(argv)

    def _full_scan(self, argv: list[bytes]) -> Any:
        """A SCAN from 0 on several shards walks them one after another, so its
        first page holds one shard's keys (SCAN may always answer fewer than
        COUNT). What the tests compare is the whole scan: walk it to the end."""
        reply = self._call(argv)
        if not isinstance(reply, list):
            return reply
        keys = list(reply[1])
        while reply[0] != b"0":
            reply = self._call([argv[0], reply[0], *argv[2:]])
            keys.extend(reply[1])
        return [b"0", keys]

    def _call(self, argv: list[bytes]) -> Any:
        self.sock.sendall(_pack(argv))
        while (reply := self.reader.gets()) is False:
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("the node closed the connection")
            self.reader.feed(data)
        return _as_ours(reply)


def _cluster(tmp_path_factory, shards: int, replicas: int):
    c = Cluster(tmp_path_factory.mktemp(f"diff{shards}x{replicas}") / "data", shards=shards, replicas=replicas)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def cluster_1x1(tmp_path_factory):
    yield from _cluster(tmp_path_factory, 1, 1)


@pytest.fixture(scope="module")
def cluster_2x3(tmp_path_factory):
    yield from _cluster(tmp_path_factory, 2, 3)


def _on_cluster(monkeypatch, cluster: Cluster, module) -> None:
    port = cluster.port(cluster.leader())
    monkeypatch.setattr(module, "Harness", lambda *a, **kw: ClusterHarness(port))


CASES = _cases()


@pytest.mark.parametrize("module_name,script", CASES)
def test_script_on_2x3(real: Any, cluster_2x3: Cluster, monkeypatch, module_name: str, script: str) -> None:  # noqa: F811
    module = _module(module_name)
    _on_cluster(monkeypatch, cluster_2x3, module)
    module.test_script(real, script)


@pytest.mark.parametrize("module_name,script", CASES[::2])
def test_script_on_1x1(real: Any, cluster_1x1: Cluster, monkeypatch, module_name: str, script: str) -> None:  # noqa: F811
    module = _module(module_name)
    _on_cluster(monkeypatch, cluster_1x1, module)
    module.test_script(real, script)


@pytest.mark.parametrize("module_name", [m for m, (_, gen) in MODULES.items() if gen])
def test_random_sequences_on_2x3(real: Any, cluster_2x3: Cluster, monkeypatch, module_name: str) -> None:  # noqa: F811
    module = _module(module_name)
    _on_cluster(monkeypatch, cluster_2x3, module)
    getattr(module, MODULES[module_name][1])(real)
