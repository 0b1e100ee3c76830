"""COMMAND's key facts against redis-server 7.0: the key specs of COMMAND INFO
for every command both servers have, COMMAND GETKEYSANDFLAGS (and GETKEYS)
for invocations of every kind of key spec and its errors, COMMAND HELP; in
RESP2 and RESP3, compared by reply type and value, in order (as the bytes).

Nothing is normalised: commands one side lacks (MAKO, MIGRATE, ...) are
left out. The rest of COMMAND INFO, and COMMAND DOCS, are compared whole in
tests/compat/test_diff_command_docs.py.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Iterator

import pytest

from tests.compat import test_differential
from tests.integration.cluster_util import Cluster

real = test_differential.real  # the redis-server fixture


@pytest.fixture(scope="module")
def mako(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("command-keys-diff") / "data")
    try:
        c.start()
        yield c.port()
    finally:
        c.stop()


class Conn:
    """One raw connection; ``call`` returns a reply as a typed tree:
    (type byte, value), aggregates with a list of typed children."""

    def __init__(self, port: int, proto: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        if proto == 3:
            assert self.call("HELLO", "3")[0] == "%"

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def call(self, *args: str | bytes) -> tuple:
        argv = [a.encode() if isinstance(a, str) else a for a in args]
        self.sock.sendall(b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv))
        return self._read()

    def _read(self) -> tuple:
        line = self.file.readline()
        assert line.endswith(b"\r\n"), line
        kind, rest = chr(line[0]), line[1:-2]
        if kind in "$=":
            n = int(rest)
            if n < 0:
                return (kind, None)
            data = self.file.read(n + 2)
            return (kind, data[:-2])
        if kind in "*~>%":
            n = int(rest)
            if n < 0:
                return (kind, None)
            return (kind, [self._read() for _ in range(n * 2 if kind == "%" else n)])
        return (kind, rest)  # + - : _ , # (


@contextlib.contextmanager
def _pair(real, mako: int, proto: int) -> Iterator[tuple[Conn, Conn]]:
    """A connection to makod and one to redis-server, closed after the block."""
    ours, theirs = Conn(mako, proto), Conn(real.connection_pool.connection_kwargs["port"], proto)
    try:
        yield ours, theirs
    finally:
        ours.close()
        theirs.close()


def _by_name(command_reply: tuple) -> dict[bytes, tuple]:
    """COMMAND's entries, subcommands too, by name."""
    out = {}
    for entry in command_reply[1]:
        fields = entry[1]
        out[fields[0][1]] = fields
        out.update(_by_name(fields[9]))
    return out


@pytest.mark.parametrize("proto", [2, 3])
def test_key_specs_of_every_shared_command(real, mako, proto):
    with _pair(real, mako, proto) as (ours, theirs):
        a, b = _by_name(ours.call("COMMAND")), _by_name(theirs.call("COMMAND"))
        shared = sorted(set(a) & set(b))
        assert len(shared) > 300, "most of Redis's commands"
        assert {b"get", b"set", b"zunionstore", b"xread", b"sort", b"object|encoding", b"eval"} <= set(shared)
        differ = [name for name in shared if a[name][8] != b[name][8]]
        assert not differ, [(n, a[n][8], b[n][8]) for n in differ[:3]]
        # COMMAND INFO answers the same, a subcommand by its "container|sub" name too.
        names = ["set", "migrate", "xreadgroup", "georadius", "SORT", "object|encoding", "XINFO|STREAM", "bitfield"]
        names = [n for n in names if n.lower().encode() in a]
        got = [ours.call("COMMAND", "INFO", *names), theirs.call("COMMAND", "INFO", *names)]
        assert [e[1][8] for e in got[0][1]] == [e[1][8] for e in got[1][1]]


INVOCATIONS = [
    "SET k v", "SET k v GET", "SET k v EX 10 get", "GET k", "GETEX k PERSIST", "GETDEL k", "APPEND k v",
    "MSET a 1 b 2 c 3", "MSETNX a 1 b 2", "MGET a b c", "DEL a b c", "EXISTS a b", "UNLINK a",
    "COPY src dst", "COPY src dst DB 1 REPLACE", "RENAME a b", "RENAMENX a b", "MOVE k 1",
    "LMOVE src dst LEFT RIGHT", "BLMOVE src dst LEFT RIGHT 0", "RPOPLPUSH src dst", "BLPOP a b 0", "LPUSH l x y",
    "LMPOP 2 a b LEFT COUNT 3", "BLMPOP 0 2 a b RIGHT", "LMPOP 1 a LEFT",
    "ZUNIONSTORE dst 2 a b WEIGHTS 1 2", "ZINTERSTORE dst 3 a b c", "ZDIFFSTORE dst 1 a", "ZUNION 2 a b WITHSCORES",
    "ZINTERCARD 2 a b LIMIT 5", "ZMPOP 2 a b MIN", "BZMPOP 0 1 a MAX", "ZRANGESTORE dst src 0 -1", "BZPOPMIN a b 0",
    "SINTERCARD 2 a b", "SUNIONSTORE dst a b", "SMOVE src dst m", "SINTER a b c",
    "EVAL return 2 a b x y", "EVAL_RO s 1 a", "EVALSHA abc 3 a b c", "EVAL s 0", "FCALL f 1 k arg", "FCALL_RO f 0 x",
    "XREAD COUNT 2 STREAMS a b 0 0", "XREAD BLOCK 0 STREAMS s $", "XREADGROUP GROUP g c COUNT 1 STREAMS s1 s2 > >",
    "XREAD STREAMS a STREAMS 0 0", "XADD s * f v", "XGROUP CREATE s g $", "XINFO STREAM s", "XINFO GROUPS s",
    "SORT src", "SORT src BY w_* GET o_* STORE dst", "SORT src STORE a STORE b", "SORT src LIMIT 0 1 STORE dst ALPHA",
    "SORT_RO src BY x GET y",
    "GEORADIUS src 1 2 3 km STORE d1", "GEORADIUS src 1 2 3 km STORE d1 STOREDIST d2", "GEORADIUS src 1 2 3 km STORE d1 STORE d2",
    "GEORADIUSBYMEMBER src m 3 km STOREDIST d", "GEORADIUS_RO src 1 2 3 km", "GEOSEARCHSTORE dst src FROMMEMBER m BYRADIUS 1 km",
    "BITOP AND dst a b c", "BITOP NOT dst a", "BITFIELD k GET u8 0", "BITFIELD k SET u8 0 1", "BITFIELD k INCRBY u8 0 1 GET u8 0",
    "BITFIELD k OVERFLOW SAT GET u8 0", "BITFIELD k FOO", "BITFIELD_RO k GET u8 0", "BITCOUNT k",
    "OBJECT ENCODING k", "OBJECT FREQ k", "MEMORY USAGE k", "PFMERGE dst a b", "PFCOUNT a b", "HSET h f v", "WATCH a b",
    "RESTORE k 0 payload", "DUMP k", "TOUCH a b", "EXPIRE k 10", "LCS a b", "SRANDMEMBER s 2", "PUBLISH ch m",
    # Where the key specs cannot be applied, Redis falls back to each command's own key finder.
    "ZUNIONSTORE dst 2x a b", "ZUNIONSTORE dst 0 a", "ZUNIONSTORE dst -1 a", "ZUNION 5 a b", "LMPOP 0 a LEFT",
    "EVAL s 5 a", "EVAL s x a", "SINTERCARD 1x a", "PFMERGE dst", "XREAD COUNT 1 a b", "XREAD STREAMS a b c",
    "GEORADIUS src 1 2 3 km STORE", "SORT src STORE",
]

ERRORS = [
    "NOSUCH a", "OBJECT NOSUCH k", "PING x", "OBJECT HELP", "SPUBLISH ch m", "GET a b", "SET k", "ZUNIONSTORE dst",
    "XINFO STREAM",
]


@pytest.mark.parametrize("proto", [2, 3])
def test_getkeysandflags_like_redis(real, mako, proto):
    with _pair(real, mako, proto) as (ours, theirs):
        for text in INVOCATIONS + ERRORS:
            argv = text.split()
            for sub in ("GETKEYSANDFLAGS", "GETKEYS"):
                mine, redis_ = ours.call("COMMAND", sub, *argv), theirs.call("COMMAND", sub, *argv)
                assert mine == redis_, (sub, text)
        for text in ERRORS[:3]:
            assert ours.call("COMMAND", "GETKEYSANDFLAGS", *text.split())[0] == "-"
        assert theirs.call("COMMAND", "GETKEYSANDFLAGS", "SET", "k", "v", "GET") == ("*", [
            ("*", [("$", b"k"), ("~" if proto == 3 else "*", [("+", b"RW"), ("+", b"access"), ("+", b"update")])]),
        ])


@pytest.mark.parametrize("proto", [2, 3])
def test_command_help_like_redis(real, mako, proto):
    with _pair(real, mako, proto) as (ours, theirs):
        assert ours.call("COMMAND", "HELP") == theirs.call("COMMAND", "HELP")
        docs = [c.call("COMMAND", "DOCS", "command|getkeysandflags") for c in (ours, theirs)]
        assert docs[0][1][0] == docs[1][1][0] == ("$", b"command|getkeysandflags")
