"""Values, mutation ops, and the context command handlers run against.

A write is never applied by poking at a dict: a handler asks its context for
an *op* (set, del, hset, hdel, expire, flush), and the one function
``Keyspace.apply`` carries it out. The leader applies ops as it executes; the
same ops, in the same order, go into the replication log; followers and a
restarting node apply them with the same function. That is what makes every
replica converge to the same state, version numbers included.
"""

from __future__ import annotations

from typing import Any, Protocol

from makod.codec import pack

# Kinds of value. NATIVE holds a stored procedure's own row values (any
# msgpack-able object); Redis commands see it as a string they cannot parse.
KIND_STRING = 0
KIND_HASH = 1
KIND_NATIVE = 2

KIND_NAMES = {KIND_STRING: "string", KIND_HASH: "hash", KIND_NATIVE: "string"}

# Op codes. An op is a tuple whose first element is its code.
OP_SET = 0  # (OP_SET, key, kind, value, expire_ms | None)
OP_DEL = 1  # (OP_DEL, key)
OP_HSET = 2  # (OP_HSET, key, {field: value})  creates the hash if absent
OP_HDEL = 3  # (OP_HDEL, key, [field, ...])     removes the key when it empties
OP_EXPIRE = 4  # (OP_EXPIRE, key, expire_ms | None)
OP_FLUSH = 5  # (OP_FLUSH,)

OP_NAMES = {
    OP_SET: "set",
    OP_DEL: "del",
    OP_HSET: "hset",
    OP_HDEL: "hdel",
    OP_EXPIRE: "expire",
    OP_FLUSH: "flush",
}


class Record:
    """One key's value.

    ``version`` is the shard clock of the transaction that last wrote it (what
    WATCH and OCC validation compare). ``deps`` is that transaction's version
    vector (one clock per shard), or None once it is known to be replicated;
    a reply that read this record may not be released before ``deps`` is
    covered by the replication watermark.
    """

    __slots__ = ("kind", "value", "expire_ms", "version", "deps")

    def __init__(
        self,
        kind: int,
        value: Any,
        expire_ms: int | None,
        version: int,
        deps: tuple[int, ...] | None,
    ) -> None:
        self.kind = kind
        self.value = value
        self.expire_ms = expire_ms
        self.version = version
        self.deps = deps

    def __repr__(self) -> str:
        return (
            f"Record({KIND_NAMES.get(self.kind, self.kind)}, {self.value!r}, "
            f"expire_ms={self.expire_ms}, v={self.version})"
        )


def string_value(rec: Record) -> bytes:
    """The bytes a Redis string command sees for a string-like record.

    KIND_NATIVE values (stored procedures' rows) read as their msgpack encoding.
    """
    if rec.kind == KIND_NATIVE:
        return pack(rec.value)
    return rec.value


class KeyContext(Protocol):
    """What a data command handler may do. Handlers never touch a Keyspace directly.

    ``get`` applies lazy expiry: an expired key reads as absent (and the
    context deletes it through an op, so the deletion is replicated).
    Values returned by ``get`` are read-only: mutate only through the ops.
    """

    now_ms: int
    proto_max_bulk_len: int  # the longest string a command may build (SETRANGE, APPEND)

    def get(self, key: bytes) -> Record | None: ...

    def set(self, key: bytes, kind: int, value: Any, expire_ms: int | None = None) -> None: ...

    def delete(self, key: bytes) -> bool: ...

    def hset(self, key: bytes, mapping: dict[bytes, bytes]) -> int: ...

    def hdel(self, key: bytes, fields: list[bytes]) -> int: ...

    def set_expire(self, key: bytes, expire_ms: int | None) -> bool: ...

    def flush(self) -> None: ...

    def dbsize(self) -> int: ...

    def keys(self, pattern: bytes) -> list[bytes]: ...

    def scan(
        self, cursor: int, count: int, pattern: bytes | None, kind: int | None
    ) -> tuple[int, list[bytes]]: ...

    def random_key(self) -> bytes | None: ...

    def randrange(self, n: int) -> int: ...
