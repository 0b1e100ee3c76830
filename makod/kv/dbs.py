"""Numbered databases (SELECT n): how a key of database n is stored.

Every database lives in the one keyspace of each shard, under an internal
key that no key of another database can have:

* database 0: the key itself, unless it begins with ``MARK``;
* otherwise: ``MARK + decimal(n) + b":" + key`` (database 0's keys that begin
  with ``MARK`` take this form with n = 0, so they are escaped).

The mapping is injective and decodable (``decode(encode(n, k)) == (n, k)``):
an internal key that does not begin with MARK is database 0's, one that does
names its database in the digits up to the first ``:``. Database 0's keys are
stored as they always were, so data written before numbered databases
existed, stored procedures and the simulator need no change.

Only the context handed to command handlers maps keys (core/context.py);
replication ops, checkpoints and the log carry internal keys, so followers
and log replay know nothing of databases. The shard of an internal key is
the shard of its user key (core/slots.py decodes), so ``foo`` lives on one
shard in every database: MOVE and COPY ... DB stay single-shard, and hash
tags keep working.
"""

from __future__ import annotations

from makod.kv import errors
from makod.kv.args import parse_int
from makod.kv.errors import CommandError

MARK = b"\xff"
# A database no SELECT can reach (config caps ``databases`` at 1,000,000):
# where each shard keeps its copy of the FUNCTION libraries
# (kv/scripting/library_store.py). Hidden from INFO keyspace.
FUNCTIONS_DB = 1_000_001
# Another: where each shard keeps its slot table (core/slot_table.py).
SLOTS_DB = 1_000_002
_SEP = b":"
_DIGITS = frozenset(b"0123456789")


def encode(db: int, key: bytes) -> bytes:
    if db == 0 and not key.startswith(MARK):
        return key
    return b"%s%d:%s" % (MARK, db, key)


def decode(ikey: bytes) -> tuple[int, bytes]:
    """(database, user key) of an internal key."""
    if not ikey.startswith(MARK):
        return 0, ikey
    sep = ikey.index(_SEP, 1)
    return int(ikey[1:sep]), ikey[sep + 1:]


def user_key(ikey: bytes) -> bytes:
    if not ikey.startswith(MARK):
        return ikey
    return ikey[ikey.index(_SEP, 1) + 1:]


def db_of(ikey: bytes) -> int:
    if not ikey.startswith(MARK):
        return 0
    return int(ikey[1:ikey.index(_SEP, 1)])


def is_hidden(ikey: bytes) -> bool:
    """Is this a key of a database no SELECT reaches (FUNCTIONS_DB, SLOTS_DB)?
    Such keys are each shard's own: never routed by slot, never moved."""
    return ikey[:1] == MARK and ikey[1:2] != b"0" and db_of(ikey) >= FUNCTIONS_DB


def prefix(db: int) -> bytes:
    """What every internal key of ``db`` that carries a prefix begins with."""
    return b"%s%d:" % (MARK, db)


def spans(db: int) -> list[tuple[bytes, bytes | None]]:
    """The internal key ranges [start, end) holding exactly database ``db``'s keys."""
    marked = prefix(db)
    end = marked[:-1] + b";"  # ';' follows ':': just past every key with that prefix
    if db == 0:
        return [(b"", MARK), (marked, end)]
    return [(marked, end)]


def is_internal(ikey: bytes) -> bool:
    """Is this a well-formed internal key (what decode accepts)?"""
    if not ikey.startswith(MARK):
        return True
    sep = ikey.find(_SEP, 1)
    digits = ikey[1:sep]
    return sep > 1 and all(b in _DIGITS for b in digits) and (digits == b"0" or digits[:1] != b"0")


_INT_MIN = -(1 << 31)
_INT_MAX = (1 << 31) - 1


def db_index(arg: bytes, databases: int, not_int: str | None = None) -> int:
    """A database index argument, checked as Redis 7.0 does (getIntFromObject,
    then selectDb): not an int64 (or, with ``not_int``, not an int at all:
    SWAPDB's own texts), outside C's int, outside 0..databases-1."""
    value = parse_int(arg)
    if value is None:
        raise CommandError(not_int or errors.NOT_INTEGER)
    if not _INT_MIN <= value <= _INT_MAX:
        raise CommandError(not_int or errors.value_out_of_range_between(_INT_MIN, _INT_MAX))
    if not 0 <= value < databases:
        raise CommandError(errors.DB_INDEX_OUT_OF_RANGE)
    return value
