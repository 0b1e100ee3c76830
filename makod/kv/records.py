"""Values, mutation ops, and the context command handlers run against.

A write is never applied by poking at a dict: a handler asks its context for
an *op* (set, del, expire, flush, or a typed op of its data type such as
hset or lpush), and the one function ``Keyspace.apply`` carries it out. The leader applies ops as it executes; the
same ops, in the same order, go into the replication log; followers and a
restarting node apply them with the same function. That is what makes every
replica converge to the same state, version numbers included.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from makod.codec import pack

# Kinds of value. NATIVE holds a stored procedure's own row values (any
# msgpack-able object); Redis commands see it as a string they cannot parse.
KIND_STRING = 0
KIND_HASH = 1
KIND_NATIVE = 2
KIND_LIST = 3
KIND_SET = 4
KIND_ZSET = 5
KIND_STREAM = 6

# Generic op codes (this module and the keyspace carry them out). An op is a
# tuple whose first element is its code and, but for FLUSH, second its key.
OP_SET = 0  # (OP_SET, key, kind, value, expire_ms | None)
OP_DEL = 1  # (OP_DEL, key)
OP_EXPIRE = 4  # (OP_EXPIRE, key, expire_ms | None)
OP_FLUSH = 5  # (OP_FLUSH,)
# Typed ops (2, 3 and 10 up) belong to the data type that registers them
# (register_op): hashes 2-3, lists 10-19, sets 20-29, sorted sets 30-39,
# strings 40-49, streams 50-59 (50-58 used). Codes are stored in the log: never reuse one.
OP_HSET = 2  # (OP_HSET, key, {field: value})  creates the hash if absent
OP_HDEL = 3  # (OP_HDEL, key, [field, ...])     removes the key when it empties

OP_NAMES = {OP_SET: "set", OP_DEL: "del", OP_EXPIRE: "expire", OP_FLUSH: "flush"}


class ValueType:
    """One kind of value: its name and how its values are copied and stored.

    A data type module subclasses this once and registers it
    (``register_type``). Values of container types are mutated in place by
    their ops; ``clone`` gives an independent copy (checkpoint shadows),
    ``to_wire``/``from_wire`` a msgpack-able form (checkpoints, snapshots,
    records read by another shard's coordinator), and ``size`` 0 means the
    value is empty, which Redis never keeps: the key goes.
    """

    kind: int = -1
    name: str = ""  # what TYPE answers

    def empty(self) -> Any:
        raise NotImplementedError

    def clone(self, value: Any) -> Any:
        return value  # immutable values (bytes) need no copy

    def to_wire(self, value: Any) -> Any:
        return value

    def from_wire(self, data: Any) -> Any:
        return data

    def size(self, value: Any) -> int:
        return 1

    def encoding(self, value: Any) -> str:
        return "raw"


class OpSpec:
    """A typed op: changes one key's value in place, exactly reversibly.

    ``apply(value, op)`` mutates ``value`` (of kind ``kind``) and returns an
    undo token; ``undo(value, token)`` puts it back exactly. An op on an
    absent key creates an empty value first when ``creates`` is true, and is
    a no-op otherwise. Ops must be deterministic and tolerate any value of
    their kind (out-of-range positions do nothing): a replica replaying its
    log over a checkpoint may apply them to a value that is not the one the
    leader saw (see Keyspace.apply and ReplicaCore._apply_ops).
    """

    __slots__ = ("code", "kind", "name", "apply", "undo", "creates")

    def __init__(
        self,
        code: int,
        kind: int,
        name: str,
        apply: Callable[[Any, tuple], Any],
        undo: Callable[[Any, Any], None],
        creates: bool = True,
    ) -> None:
        self.code = code
        self.kind = kind
        self.name = name
        self.apply = apply
        self.undo = undo
        self.creates = creates


VALUE_TYPES: dict[int, ValueType] = {}
OPS: dict[int, OpSpec] = {}


def register_type(vtype: ValueType) -> ValueType:
    assert vtype.kind not in VALUE_TYPES, f"kind {vtype.kind} registered twice"
    VALUE_TYPES[vtype.kind] = vtype
    return vtype


def register_op(spec: OpSpec) -> OpSpec:
    assert spec.code not in OPS and spec.code not in OP_NAMES, f"op code {spec.code} registered twice"
    assert spec.kind in VALUE_TYPES, f"op {spec.name}: register its type first"
    OPS[spec.code] = spec
    OP_NAMES[spec.code] = spec.name
    return spec


class _Bytes(ValueType):
    kind = KIND_STRING
    name = "string"

    def empty(self) -> bytes:
        return b""

    def size(self, value: bytes) -> int:
        return 1  # an empty string is a value; only DEL removes it

    def encoding(self, value: bytes) -> str:
        if len(value) <= 20 and _is_int(value):
            return "int"
        return "embstr" if len(value) <= 44 else "raw"


class _Native(ValueType):
    kind = KIND_NATIVE
    name = "string"

    def encoding(self, value: Any) -> str:
        return "raw"


def _is_int(value: bytes) -> bool:
    if not value or (value[0] == 48 and len(value) > 1):
        return False
    body = value[1:] if value[0] == 45 else value
    return body.isdigit() and not (value[0] == 45 and body[:1] == b"0")


register_type(_Bytes())
register_type(_Native())


def kind_name(kind: int) -> str:
    vtype = VALUE_TYPES.get(kind)
    return vtype.name if vtype is not None else f"kind{kind}"


def clone_value(kind: int, value: Any) -> Any:
    return VALUE_TYPES[kind].clone(value)


def value_to_wire(kind: int, value: Any) -> Any:
    vtype = VALUE_TYPES.get(kind)
    return value if vtype is None else vtype.to_wire(value)


def value_from_wire(kind: int, data: Any) -> Any:
    vtype = VALUE_TYPES.get(kind)
    return data if vtype is None else vtype.from_wire(data)


class Record:
    """One key's value.

    ``version`` is the shard clock of the transaction that last wrote it (what
    WATCH and OCC validation compare). ``deps`` is that transaction's version
    vector (one clock per shard), or None once it is known to be replicated;
    a reply that read this record may not be released before ``deps`` is
    covered by the replication watermark.
    """

    __slots__ = ("kind", "value", "expire_ms", "version", "deps", "packed")

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
        # The msgpack bytes of ``value`` when its writer already had them (a
        # stored procedure's row, packed by ProcTxn.put to check it): the
        # checkpoint's encode_record reuses them instead of packing the row
        # again. Only for values never changed in place (KIND_NATIVE).
        self.packed: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"Record({kind_name(self.kind)}, {self.value!r}, "
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
    may_block: bool  # a blocking command may answer replies.Blocked (not inside MULTI)
    db: int  # the numbered database keys are in (kv/dbs.py); MOVE and COPY switch it and back
    databases: int  # how many there are (the `databases` setting)

    def get(self, key: bytes) -> Record | None: ...

    def prefetch(self, keys: list[bytes]) -> None:
        """A hint that the run will read ``keys`` next (keys named by data, such
        as SORT's BY/GET patterns): a context that fetches other shards' keys
        fetches them all in one round."""

    def set(self, key: bytes, kind: int, value: Any, expire_ms: int | None = None) -> None:
        """Replace the key's value (any kind; a container value is copied)."""

    def delete(self, key: bytes) -> bool: ...

    def write(self, op: tuple) -> None:
        """Apply a data type's op to the key ``op[1]`` (after checking its type)."""

    def set_expire(self, key: bytes, expire_ms: int | None) -> bool: ...

    def flush(self) -> None:
        """FLUSHALL: every database."""

    def flush_db(self) -> None:
        """FLUSHDB: the selected database."""

    def db_items(self, db: int) -> list[tuple[bytes, Record]]:
        """Every (key, record) of database ``db`` (SWAPDB)."""

    def dbsize(self) -> int: ...

    def keys(self, pattern: bytes) -> list[bytes]: ...

    def scan(
        self, cursor: int, count: int, pattern: bytes | None, kind: int | None
    ) -> tuple[int, list[bytes]]: ...

    def random_key(self) -> bytes | None: ...

    def randrange(self, n: int) -> int: ...
