"""Differential tests (against redis-server) for COPY, OBJECT and LCS."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.test_differential import B, check, real  # noqa: F401  (the module's redis-server)
from tests.unit.harness import Harness

SCRIPTS = {
    "copy": [
        B("SET", "a", "1"), B("COPY", "a", "b"), B("GET", "b"), B("COPY", "a", "b"), B("SET", "a", "2"),
        B("COPY", "a", "b", "REPLACE"), B("GET", "b"), B("COPY", "a", "a"), B("COPY", "nope", "c"), B("EXISTS", "c"),
        B("COPY", "a", "b", "FOO"), B("COPY", "a", "b", "DB"), B("COPY", "a", "b", "DB", "x"),
        B("COPY", "a", "b", "DB", "0", "REPLACE"), B("COPY", "a"),
        B("HSET", "h", "f", "v", "g", "w"), B("COPY", "h", "h2"), B("HGETALL", "h2"), B("HSET", "h", "f", "z"),
        B("HGET", "h2", "f"), B("SET", "t", "v", "EX", "100"), B("COPY", "t", "t2"), B("TTL", "t2"),
    ],
    "object": [
        B("SET", "i", "12345"), B("OBJECT", "ENCODING", "i"), B("SET", "e", "hello"), B("OBJECT", "ENCODING", "e"),
        B("SET", "r", "x" * 45), B("OBJECT", "ENCODING", "r"), B("SET", "z", "012"), B("OBJECT", "ENCODING", "z"),
        B("OBJECT", "ENCODING", "missing"), B("OBJECT", "REFCOUNT", "missing"), B("OBJECT", "FREQ", "i"),
        B("OBJECT", "ENCODING"), B("HSET", "h", "f", "v"), B("OBJECT", "ENCODING", "h"),
        B("HSET", "big", "f", "x" * 65), B("OBJECT", "ENCODING", "big"),
    ],
    "lcs": [
        B("MSET", "key1", "ohmytext", "key2", "mynewtext"), B("LCS", "key1", "key2"), B("LCS", "key1", "key2", "LEN"),
        B("LCS", "key1", "key2", "IDX"), B("LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4"),
        B("LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"), B("LCS", "key1", "key2", "IDX", "WITHMATCHLEN"),
        B("LCS", "key1", "key2", "LEN", "IDX"), B("LCS", "key1", "nope"), B("LCS", "nope", "nope2", "IDX"),
        B("LCS", "key1", "key2", "MINMATCHLEN"), B("LCS", "key1", "key2", "MINMATCHLEN", "x"),
        B("LCS", "key1", "key2", "FOO"), B("HSET", "h", "f", "v"), B("LCS", "key1", "h"), B("LCS", "key1"),
        B("SET", "s1", "abcabcabc"), B("SET", "s2", "cbacbacba"), B("LCS", "s1", "s2", "IDX", "WITHMATCHLEN"),
        B("SET", "s3", ""), B("LCS", "s1", "s3"), B("LCS", "s1", "s3", "IDX"),
        B("LCS", "s1", "s2", "IDX", "MINMATCHLEN", "-3"),
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script(real: Any, name: str) -> None:  # noqa: F811
    check(real, Harness(), SCRIPTS[name])
