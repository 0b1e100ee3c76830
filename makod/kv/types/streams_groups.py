"""Stream consumer groups (Redis 7.0): their ops, XGROUP, XACK, XPENDING, and lag.

XREADGROUP, XCLAIM and XAUTOCLAIM, which deliver entries, are in streams_read.py.

Every change to a group is one of the ops below, holding what the handler
decided (delivery times and counts, the new last-delivered ID and read
counter), so replicas replay them without a clock. Each returns an exact
undo token; an op naming a group that is not there does nothing.
"""

from __future__ import annotations

from makod.kv import errors
from makod.kv.args import int_arg, is_opt
from makod.kv.errors import CommandError
from makod.kv.records import KIND_STREAM, OpSpec, register_op
from makod.kv.replies import NULL_ARRAY, OK, SimpleString
from makod.kv.table import command, container, subcommand
from makod.kv.types.streams import (
    ZERO, Consumer, Group, Stream, fmt_id, get_stream, interval_end, interval_start, parse_id, strict_id,
)

OP_XGROUP_CREATE = 53  # (op, key, group, [ms, seq], entries_read)  creates the stream (MKSTREAM)
OP_XGROUP_DESTROY = 54  # (op, key, group)
OP_XGROUP_SETID = 55  # (op, key, group, [ms, seq], entries_read)
OP_XDELCONSUMER = 56  # (op, key, group, consumer)  its pending entries go too
# (op, key, group, consumer, seen_ms | None, [[ms, seq, delivery_ms, count], ...], [ms, seq] | None,
#  entries_read | None): create or refresh the consumer, make it own those PEL entries, move the
#  group's last-delivered ID (and read counter, unless None).
OP_XDELIVER = 57
OP_XACK = 58  # (op, key, group, [[ms, seq], ...])  drop those PEL entries

# src/t_stream.c: SCG_INVALID_ENTRIES_READ.
INVALID_READ = -1


# -- ops ---------------------------------------------------------------------------------------


def _create(s: Stream, op: tuple):
    if op[2] in s.groups:
        return None
    s.groups[op[2]] = Group(tuple(op[3]), op[4])
    return op[2]


def _undo_create(s: Stream, name) -> None:
    if name is not None:
        del s.groups[name]


def _destroy(s: Stream, op: tuple):
    group = s.groups.pop(op[2], None)
    return None if group is None else (op[2], group)


def _undo_destroy(s: Stream, token) -> None:
    if token is not None:
        s.groups[token[0]] = token[1]


def _setid(s: Stream, op: tuple):
    g = s.groups.get(op[2])
    if g is None:
        return None
    token = (g, g.last_id, g.entries_read)
    g.last_id, g.entries_read = tuple(op[3]), op[4]
    return token


def _undo_setid(s: Stream, token) -> None:
    if token is not None:
        g, g.last_id, g.entries_read = token


def _delconsumer(s: Stream, op: tuple):
    g = s.groups.get(op[2])
    consumer = None if g is None else g.consumers.pop(op[3], None)
    if consumer is None:
        return None
    pending = [(sid, g.pel.pop(sid)) for sid in consumer.pel]
    return (g, op[3], consumer, pending)


def _undo_delconsumer(s: Stream, token) -> None:
    if token is not None:
        g, name, consumer, pending = token
        g.consumers[name] = consumer
        g.pel.update(pending)


def _drop_pel(g: Group, sid: tuple):
    nack = g.pel.pop(sid, None)
    if nack is not None:
        g.consumers[nack[0]].pel.discard(sid)
    return nack


def _put_pel(g: Group, sid: tuple, nack: list) -> None:
    g.pel[sid] = nack
    g.consumers[nack[0]].pel.add(sid)


def _deliver(s: Stream, op: tuple):
    g = s.groups.get(op[2])
    if g is None:
        return None
    name, seen = op[3], op[4]
    created, prev_seen = False, None
    if name is not None:
        consumer = g.consumers.get(name)
        if consumer is None:
            g.consumers[name] = Consumer(seen or 0)
            created = True
        else:
            prev_seen = consumer.seen_ms
            if seen is not None:
                consumer.seen_ms = seen
        replaced = []
        for ms, seq, when, count in op[5]:
            sid = (ms, seq)
            replaced.append((sid, _drop_pel(g, sid)))
            _put_pel(g, sid, [name, when, count])
    token = (g, name, created, prev_seen, replaced if name is not None else [], g.last_id, g.entries_read)
    if op[6] is not None:
        g.last_id = tuple(op[6])
    if op[7] is not None:
        g.entries_read = op[7]
    return token


def _undo_deliver(s: Stream, token) -> None:
    if token is None:
        return
    g, name, created, prev_seen, replaced, g.last_id, g.entries_read = token
    for sid, old in reversed(replaced):
        _drop_pel(g, sid)
        if old is not None:
            _put_pel(g, sid, old)
    if created:
        del g.consumers[name]
    elif name is not None:
        g.consumers[name].seen_ms = prev_seen


def _ack(s: Stream, op: tuple):
    g = s.groups.get(op[2])
    if g is None:
        return None
    dropped = []
    for ms, seq in op[3]:
        nack = _drop_pel(g, (ms, seq))
        if nack is not None:
            dropped.append(((ms, seq), nack))
    return (g, dropped)


def _undo_ack(s: Stream, token) -> None:
    if token is not None:
        g, dropped = token
        for sid, nack in dropped:
            _put_pel(g, sid, nack)


for _code, _name, _apply, _undo in (
    (OP_XGROUP_CREATE, "xgroup-create", _create, _undo_create),
    (OP_XGROUP_DESTROY, "xgroup-destroy", _destroy, _undo_destroy),
    (OP_XGROUP_SETID, "xgroup-setid", _setid, _undo_setid),
    (OP_XDELCONSUMER, "xdelconsumer", _delconsumer, _undo_delconsumer),
    (OP_XDELIVER, "xdeliver", _deliver, _undo_deliver),
    (OP_XACK, "xack", _ack, _undo_ack),
):
    # Only XGROUP CREATE (MKSTREAM) makes a stream; the others need one.
    register_op(OpSpec(_code, KIND_STREAM, _name, _apply, _undo, creates=_code == OP_XGROUP_CREATE))


# -- read counters (streamEstimateDistanceFromFirstEverEntry, streamRangeHasTombstones) ---------


def has_tombstones_from(s: Stream, start: tuple) -> bool:
    """Is there a deleted entry at or after ``start`` (among the current entries' span)?"""
    if not s.entries or s.max_deleted == ZERO or s.first_id > s.max_deleted:
        return False
    return start <= s.max_deleted


def estimate_read(s: Stream, sid: tuple) -> int:
    """How many entries were ever added up to ``sid``, or -1 when unknowable."""
    if not s.entries_added:
        return 0
    if not s.entries and sid <= s.last_id:
        return s.entries_added
    if sid == s.last_id:
        return s.entries_added
    if sid > s.last_id:
        return INVALID_READ
    first = s.first_id
    if s.max_deleted == ZERO or s.max_deleted < first:
        if sid < first:
            return s.entries_added - len(s.entries)
        if sid == first:
            return s.entries_added - len(s.entries) + 1
    return INVALID_READ


def lag(s: Stream, g: Group) -> int | None:
    if not s.entries_added:
        return 0
    if g.entries_read != INVALID_READ and not has_tombstones_from(s, g.last_id):
        return s.entries_added - g.entries_read
    read = estimate_read(s, g.last_id)
    return None if read == INVALID_READ else s.entries_added - read


def group_of(ctx, key: bytes, name: bytes, template: str) -> tuple:
    rec = get_stream(ctx, key)
    g = None if rec is None else rec.value.groups.get(name)
    if g is None:
        raise CommandError(errors.nogroup(template, key, name))
    return rec.value, g


# -- XGROUP -------------------------------------------------------------------------------------


def _xgroup(ctx, args):
    sub = args[1].lower()
    mkstream, entries_read = False, INVALID_READ
    i = 5
    while i < len(args):
        if sub == b"create" and is_opt(args[i], b"MKSTREAM"):
            mkstream = True
            i += 1
        elif sub in (b"create", b"setid") and is_opt(args[i], b"ENTRIESREAD") and i + 1 < len(args):
            entries_read = int_arg(args[i + 1])
            if entries_read < 0 and entries_read != INVALID_READ:
                raise CommandError(errors.STREAM_ENTRIESREAD_NEGATIVE)
            i += 2
        else:
            raise CommandError(errors.subcommand_syntax(args[1], "xgroup"))
    key, name = args[2], args[3]
    rec = get_stream(ctx, key)
    s = rec.value if rec is not None else None
    if not mkstream:
        if s is None:
            raise CommandError(errors.STREAM_XGROUP_NEEDS_KEY)
        if name not in s.groups and sub in (b"setid", b"createconsumer", b"delconsumer"):
            raise CommandError(errors.nogroup(errors.STREAM_NOGROUP_FOR_KEY, name, key))
    argc = len(args)
    if sub == b"create" and 5 <= argc <= 8:
        if args[4] == b"$":
            sid = s.last_id if s is not None else ZERO
        else:
            sid = strict_id(args[4])
        if s is not None and name in s.groups:
            raise CommandError(errors.STREAM_BUSYGROUP)
        ctx.write((OP_XGROUP_CREATE, key, name, list(sid), entries_read))
        return OK
    if sub == b"setid" and argc in (5, 7):
        if args[4] == b"$":
            sid = s.last_id
        else:
            ms, seq, _ = parse_id(args[4])
            sid = (ms, seq)
        ctx.write((OP_XGROUP_SETID, key, name, list(sid), entries_read))
        return OK
    if sub == b"destroy" and argc == 4:
        if name not in s.groups:
            return 0
        ctx.write((OP_XGROUP_DESTROY, key, name))
        return 1
    if sub == b"createconsumer" and argc == 5:
        if args[4] in s.groups[name].consumers:
            return 0
        ctx.write((OP_XDELIVER, key, name, args[4], ctx.now_ms, [], None, None))
        return 1
    if sub == b"delconsumer" and argc == 5:
        consumer = s.groups[name].consumers.get(args[4])
        if consumer is None:
            return 0
        ctx.write((OP_XDELCONSUMER, key, name, args[4]))
        return len(consumer.pel)
    raise CommandError(errors.subcommand_syntax(args[1], "xgroup"))


XGROUP_HELP = [
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
]


def help_reply(lines: list[str]):
    return [SimpleString(line) for line in lines]


def _sub(name: str, arity: int, flags: str, summary: str, keys=(2, 2, 1)):
    return subcommand("xgroup", name, arity, _xgroup, flags, scope="data", group="stream", summary=summary, since="5.0.0", keys=keys)


container(
    "xgroup",
    scope="data",
    group="stream",
    summary="A container for consumer groups commands",
    since="5.0.0",
    subcommands=[
        _sub("create", -5, "write denyoom", "Create a consumer group."),
        _sub("setid", -5, "write", "Set a consumer group to an arbitrary last delivered ID value."),
        _sub("destroy", 4, "write", "Destroy a consumer group."),
        _sub("createconsumer", 5, "write denyoom", "Create a consumer in a consumer group."),
        _sub("delconsumer", 5, "write", "Delete a consumer from a consumer group."),
        subcommand("xgroup", "help", 2, lambda ctx, args: help_reply(XGROUP_HELP), "loading stale", scope="data", group="stream", summary="Show helpful text about the different subcommands", since="5.0.0"),
    ],
)


# -- XACK, XPENDING -----------------------------------------------------------------------------


@command("xack", -4, "write fast", keys=(1, 1, 1), group="stream", summary="Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.", since="5.0.0", complexity="O(1) for each message ID processed.")
def xack(ctx, args):
    rec = get_stream(ctx, args[1])
    g = None if rec is None else rec.value.groups.get(args[2])
    if g is None:
        return 0
    ids = [strict_id(a) for a in args[3:]]
    found = [list(sid) for sid in dict.fromkeys(ids) if sid in g.pel]
    if found:
        ctx.write((OP_XACK, args[1], args[2], found))
    return len(found)


@command("xpending", -3, "readonly", keys=(1, 1, 1), group="stream", summary="Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.", since="5.0.0", complexity="O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer.")
def xpending(ctx, args):
    argc = len(args)
    if argc != 3 and not 6 <= argc <= 9:
        raise CommandError(errors.SYNTAX)
    min_idle, consumer_name = 0, None
    if argc >= 6:
        at = 3
        if is_opt(args[3], b"IDLE"):
            min_idle = int_arg(args[4])
            if argc < 8:
                raise CommandError(errors.SYNTAX)
            at = 5
        count = max(int_arg(args[at + 2]), 0)
        start, end = interval_start(args[at]), interval_end(args[at + 1])
        if at + 3 < argc:
            consumer_name = args[at + 3]
    s, g = group_of(ctx, args[1], args[2], errors.STREAM_NOGROUP)
    if argc == 3:
        if not g.pel:
            return [0, None, None, NULL_ARRAY]
        owners = [[name, b"%d" % len(c.pel)] for name, c in sorted(g.consumers.items()) if c.pel]
        return [len(g.pel), fmt_id(g.pel.peekitem(0)[0]), fmt_id(g.pel.peekitem(-1)[0]), owners]
    if consumer_name is not None:
        consumer = g.consumers.get(consumer_name)
        if consumer is None:
            return []
        ids = [sid for sid in sorted(consumer.pel) if start <= sid <= end]
    else:
        ids = g.pel.irange(start, end) if start <= end else []
    out = []
    for sid in ids:
        if len(out) >= count:
            break
        owner, when, deliveries = g.pel[sid]
        idle = ctx.now_ms - when
        if min_idle and idle < min_idle:
            continue
        out.append([fmt_id(sid), owner, max(idle, 0), deliveries])
    return out
