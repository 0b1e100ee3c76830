"""Keyspace notifications: which events a command's writes raise.

Redis publishes, for every change of a key, ``__keyspace@<db>__:<key>`` with
the event's name and ``__keyevent@<db>__:<event>`` with the key
(https://redis.io/docs/manual/keyspace-notifications/), filtered by the
classes in ``notify-keyspace-events``. Here the events come from the ops a
command logged (so a command that changed nothing raises nothing, a command
inside MULTI or a script raises its own, and a key a container command
emptied raises ``del`` after it, as in Redis); the node publishes them only
once the transaction's reply is released, i.e. once it is durable and can no
longer be rolled back (makod/core/node.py).

An event is ``(db, class, name, user key)``; class is one of Redis's flag
letters (``g $ l s h z t x``).
"""

from __future__ import annotations

from typing import Any

from makod.kv import dbs
from makod.kv.records import OP_DEL, OP_EXPIRE, OP_FLUSH, OP_NAMES, OP_SET

# Redis's flag letters, and what "A" stands for (src/notify.c).
CLASSES = "g$lshzxetmdn"
ALL = "g$lshzxet"

_GROUP_CLASS = {
    "string": "$", "bitmap": "$", "hyperloglog": "$", "list": "l", "set": "s", "hash": "h",
    "sorted-set": "z", "geo": "z", "stream": "t", "generic": "g",
}

# Where Redis names the event differently from the command (src/t_*.c).
_EVENT = {
    "setex": "set", "psetex": "set", "setnx": "set", "getset": "set", "mset": "set", "msetnx": "set",
    "getex": "expire", "getdel": "del", "incr": "incrby", "decr": "incrby", "decrby": "incrby",
    "hmset": "hset", "hsetnx": "hset", "lpushx": "lpush", "rpushx": "rpush", "blpop": "lpop", "brpop": "rpop",
    "zincrby": "zincr", "bzpopmin": "zpopmin", "bzpopmax": "zpopmax", "geoadd": "zadd",
    "pfmerge": "pfadd", "pexpire": "expire", "expireat": "expire", "pexpireat": "expire", "unlink": "del",
    "bitfield": "setbit", "bitop": "set", "sort": "sortstore", "georadius": "georadiusstore",
    "georadiusbymember": "georadiusstore",
}
# Commands whose event, per key, is the name of the op that key got
# (LMOVE: rpop on the source, lpush on the destination; SMOVE: srem, sadd).
_BY_OP = frozenset({"lmove", "blmove", "rpoplpush", "brpoplpush", "smove", "lmpop", "blmpop", "zmpop", "bzmpop"})
_GENERIC = frozenset({"del", "expire", "persist", "rename_from", "rename_to", "copy_to", "move_from", "move_to",
                      "restore", "expired"})
# Commands that delete on purpose: no extra "del" for the key they empty.
_DELETES = frozenset({"del", "unlink", "getdel", "rename", "renamenx", "move"})


def parse_flags(text: str) -> str:
    """``notify-keyspace-events`` as Redis parses it: the classes it enables
    plus K and/or E ("" when none). Raises ValueError on an unknown letter."""
    out = set()
    for ch in text:
        if ch == "A":
            out.update(ALL)
        elif ch in CLASSES or ch in "KE":
            out.add(ch)
        else:
            raise ValueError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
    if not (out & set("KE")) or not (out - set("KE")):
        return ""
    return "".join(sorted(out))


def flags_text(flags: str) -> str:
    """CONFIG GET's form (src/notify.c keyspaceEventsFlagsToString)."""
    if not flags:
        return ""
    out = "A" if set(ALL) <= set(flags) else "".join(c for c in ALL if c in flags)
    out += "".join(c for c in "mdn" if c in flags)
    return out + "".join(c for c in "KE" if c in flags)


def _pop_event(name: str, argv: list[bytes]) -> str:
    """What a moving or multi-key pop raised on a source it emptied (the
    context logged a DEL there, not the pop)."""
    if name == "smove":
        return "srem"
    if name in ("rpoplpush", "brpoplpush"):
        return "rpop"
    words = {a.upper() for a in argv[1:]}
    if name in ("zmpop", "bzmpop"):
        return "zpopmax" if b"MAX" in words else "zpopmin"
    if name in ("lmove", "blmove"):
        return "rpop" if argv[3].upper() == b"RIGHT" else "lpop"
    return "rpop" if b"RIGHT" in words else "lpop"


def collect(ctx: Any, spec: Any, start: int, argv: list[bytes]) -> None:
    """Append to ``ctx.events`` what the ops the command ``spec`` (run as
    ``argv``) logged from ``ctx.ops[start]`` on raise."""
    ops = ctx.ops
    if len(ops) <= start or spec.group == "scripting":
        return  # a script's commands raised their own events as they ran
    name = spec.name.replace("|", "-")
    per_key: dict[bytes, list[tuple]] = {}
    for op in ops[start:]:
        if op[0] == OP_FLUSH:
            continue  # FLUSHALL/FLUSHDB raise no key events in Redis
        per_key.setdefault(op[1], []).append(op)
    event = _EVENT.get(name, name)
    cls = _GROUP_CLASS.get(spec.group, "g")
    out = ctx.events
    expired = ctx.expired
    items = list(per_key.items())
    if name in ("lmove", "blmove", "rpoplpush", "brpoplpush"):
        items.reverse()  # Redis notifies the push on the destination first
    elif name in ("rename", "renamenx"):
        items.sort(key=lambda item: item[1][0][0] != OP_DEL)  # rename_from, then rename_to
    for ikey, key_ops in items:
        db, key = dbs.decode(ikey)
        if db >= dbs.FUNCTIONS_DB:  # the shard's own bookkeeping, not user data
            continue
        if ikey in expired and key_ops[0][0] == OP_DEL:
            out.append((db, "x", "expired", key))
            key_ops = key_ops[1:]
            if not key_ops:
                continue
        if name in ("rename", "renamenx", "move"):
            first = key_ops[0][0]
            suffix = "from" if first == OP_DEL else "to"
            out.append((db, "g", f"{'move' if name == 'move' else 'rename'}_{suffix}", key))
            continue
        if name == "copy":
            out.append((db, "g", "copy_to", key))
            continue
        if name in _BY_OP:
            code = key_ops[0][0]
            op_event = _pop_event(name, argv) if code == OP_DEL else OP_NAMES[code]
            out.append((db, "g" if op_event in _GENERIC else cls, op_event, key))
        elif event == "expire" and key_ops[0][0] == OP_DEL:
            out.append((db, "g", "del", key))  # an expiry in the past deletes
            continue
        elif name == "persist" or (name == "getex" and key_ops[-1][0] == OP_EXPIRE and key_ops[-1][2] is None):
            out.append((db, "g", "persist", key))
        else:
            out.append((db, "g" if event in _GENERIC else cls, event, key))
        if event not in ("expire", "persist") and any(
            (op[0] == OP_EXPIRE and op[2] is not None) or (op[0] == OP_SET and op[4] is not None) for op in key_ops
        ) and name not in ("restore", "copy"):
            out.append((db, "g", "expire", key))  # SET ... EX, SETEX: "set" then "expire"
        if key_ops[-1][0] == OP_DEL and name not in _DELETES and event != "del" and (
                name not in _BY_OP or op_event != "del"):
            out.append((db, "g", "del", key))  # the command emptied a container


# Events that only tell client-side caching which keys changed (resp/tracking.py):
# never published, since no notify-keyspace-events flag is "!".
TRACKING_CLASS = "!"
FLUSH_EVENT = (0, TRACKING_CLASS, "flush", b"")


def tracking_events(ops: list) -> list[tuple]:
    """The keys a transaction's ops change, as events of TRACKING_CLASS (a
    flush as FLUSH_EVENT): what CLIENT TRACKING invalidates."""
    out = []
    seen = set()
    for op in ops:
        if op[0] == OP_FLUSH:
            out.append(FLUSH_EVENT)
            continue
        ikey = op[1]
        if ikey in seen:
            continue
        seen.add(ikey)
        db, key = dbs.decode(ikey)
        if db < dbs.FUNCTIONS_DB:
            out.append((db, TRACKING_CLASS, "", key))
    return out
