"""DUMP and RESTORE (Redis 7.0 src/cluster.c semantics, Redis's RDB payloads).

The payload format lives in ``makod.kv.rdb``; this module turns records into
the codec's neutral values and back, and implements the commands. RESTORE
writes one whole value with ``ctx.set``, so replication, undo and
checkpoints treat it like any other write.

makodb keeps no access times or frequencies: IDLETIME and FREQ are
validated as Redis does and then ignored.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from makod.kv import errors, rdb
from makod.kv.args import INT64_MAX, int_arg, is_opt
from makod.kv.errors import CommandError
from makod.kv.records import (
    KIND_HASH,
    KIND_LIST,
    KIND_NATIVE,
    KIND_SET,
    KIND_STRING,
    KIND_ZSET,
    Record,
    kind_name,
    string_value,
)
from makod.kv.replies import OK
from makod.kv.table import command
from makod.kv.types.zsets import ZSet

# LFU counters are 8 bits (src/evict.c).
_FREQ_MAX = 255


def to_neutral(rec: Record) -> tuple[int, Any]:
    """The (kind, value) the codec encodes for a record; CommandError if it has none."""
    kind = rec.kind
    if kind == KIND_STRING or kind == KIND_NATIVE:
        return KIND_STRING, string_value(rec)
    if kind == KIND_LIST:
        return KIND_LIST, list(rec.value)
    if kind == KIND_SET:
        return KIND_SET, list(rec.value)
    if kind == KIND_ZSET:
        return KIND_ZSET, [(member, score) for score, member in rec.value.order]
    if kind == KIND_HASH:
        return KIND_HASH, rec.value
    raise CommandError(errors.DUMP_UNSUPPORTED.format(kind_name(kind)))


def from_neutral(kind: int, value: Any) -> Any:
    """A decoded neutral value as the value of a makodb record of ``kind``."""
    if kind == KIND_LIST:
        return deque(value)
    if kind == KIND_SET:
        return dict.fromkeys(value)
    if kind == KIND_ZSET:
        zset = ZSet()
        for member, score in value:
            zset.add(member, score)
        return zset
    return value  # strings are bytes, hashes dicts already


@command("dump", 2, "readonly", keys=(1, 1, 1), group="generic", summary="Return a serialized version of the value stored at the specified key.", since="2.6.0", complexity="O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).")
def dump(ctx, args):
    rec = ctx.get(args[1])
    if rec is None:
        return None
    kind, value = to_neutral(rec)
    return rdb.encode_payload(kind, value)


def _restore_options(args: list[bytes]) -> tuple[bool, bool]:
    """restoreCommand's option loop: (REPLACE, ABSTTL); IDLETIME and FREQ are checked only."""
    replace = absttl = False
    idle_given = freq_given = False
    j = 4
    while j < len(args):
        opt = args[j]
        has_value = j + 1 < len(args)
        if is_opt(opt, b"REPLACE"):
            replace = True
        elif is_opt(opt, b"ABSTTL"):
            absttl = True
        elif is_opt(opt, b"IDLETIME") and has_value and not freq_given:
            if int_arg(args[j + 1]) < 0:
                raise CommandError(errors.INVALID_IDLETIME)
            idle_given = True
            j += 1
        elif is_opt(opt, b"FREQ") and has_value and not idle_given:
            freq = int_arg(args[j + 1])
            if freq < 0 or freq > _FREQ_MAX:
                raise CommandError(errors.INVALID_FREQ)
            freq_given = True
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    return replace, absttl


@command("restore", -4, "write denyoom", keys=(1, 1, 1), group="generic", summary="Create a key using the provided serialized value, previously obtained using DUMP.", since="2.6.0", complexity="O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).")
def restore(ctx, args):
    key = args[1]
    replace, absttl = _restore_options(args)
    if not replace and ctx.get(key) is not None:
        raise CommandError(errors.BUSYKEY)
    ttl = int_arg(args[2])
    if ttl < 0:
        raise CommandError(errors.INVALID_TTL)
    try:
        kind, value = rdb.decode_payload(args[3], ctx.proto_max_bulk_len)
    except rdb.BadChecksum:
        raise CommandError(errors.DUMP_PAYLOAD_WRONG) from None
    except rdb.BadFormat:
        raise CommandError(errors.BAD_DATA_FORMAT) from None
    if replace:
        ctx.delete(key)
    expire_ms = None
    if ttl:
        expire_ms = ttl if absttl else ttl + ctx.now_ms
        # Redis adds in a C long long: past INT64_MAX it wraps negative, which
        # reads as already expired.
        if expire_ms <= ctx.now_ms or expire_ms > INT64_MAX:
            return OK  # an expired value is not created (the old one is gone if REPLACE)
    ctx.set(key, kind, from_neutral(kind, value), expire_ms)
    return OK
