"""XREAD, XREADGROUP (blocking forms included), XCLAIM and XAUTOCLAIM (Redis 7.0): delivering entries.

With nothing to serve and BLOCK given (outside MULTI), the handlers answer
``Blocked`` and the client's session runs them again until one is served or
the timeout passes (resp/session.py). XREAD ... ``$`` hands the session the
command to retry with ``$`` replaced by the stream's last ID at the first
attempt (Blocked.argv): a retry must wait for entries after that ID, not
after whatever is newest by then. Retries of a read without COUNT carry
COUNT 1000, what Redis serves a blocked read.

Both answer stream -> entries as a map in RESP3 and as an array of
[key, entries] pairs in RESP2 (Map(nested=True)), as Redis does.
"""

from __future__ import annotations

from itertools import islice

from makod.kv import errors
from makod.kv.args import INT64_MAX, int_arg, is_opt, parse_int
from makod.kv.errors import CommandError
from makod.kv.replies import NULL_ARRAY, Blocked, Map
from makod.kv.table import command
from makod.kv.types.streams import (
    MAX_ID, ZERO, Group, Stream, entry_reply, fmt_id, get_stream, incr_id, interval_start, range_reply, strict_id,
)
from makod.kv.types.streams_groups import INVALID_READ, OP_XACK, OP_XDELIVER, estimate_read, group_of, has_tombstones_from


# -- XREAD / XREADGROUP parsing and the blocking form ------------------------------------------


class ReadArgs:
    __slots__ = ("block_ms", "count", "group", "consumer", "noack", "keys", "ids", "ids_at")

    def __init__(self) -> None:
        self.block_ms: int | None = None
        self.count = 0
        self.group: bytes | None = None
        self.consumer: bytes | None = None
        self.noack = False
        self.keys: list[bytes] = []
        self.ids: list[bytes] = []
        self.ids_at = 0


def read_keys(args: list[bytes]) -> list[bytes]:
    """XREAD/XREADGROUP key finder: the first half of what follows STREAMS."""
    i = 1
    while i < len(args):
        opt = args[i]
        if is_opt(opt, b"STREAMS"):
            rest = args[i + 1 :]
            return rest[: len(rest) // 2]
        i += 3 if is_opt(opt, b"GROUP") else 2 if (is_opt(opt, b"BLOCK") or is_opt(opt, b"COUNT")) else 1
    return []


def parse_read(args: list[bytes], group_cmd: bool) -> ReadArgs:
    r = ReadArgs()
    streams_at = 0
    i = 1
    while i < len(args):
        more = len(args) - 1 - i
        opt = args[i]
        if is_opt(opt, b"BLOCK") and more:
            i += 1
            r.block_ms = int_arg(args[i], errors.STREAM_TIMEOUT_NOT_INTEGER)
            if r.block_ms < 0:
                raise CommandError(errors.TIMEOUT_NEGATIVE)
        elif is_opt(opt, b"COUNT") and more:
            i += 1
            r.count = max(int_arg(args[i]), 0)
        elif is_opt(opt, b"STREAMS") and more:
            streams_at = i + 1
            if (len(args) - streams_at) % 2:
                raise CommandError(errors.STREAM_XREAD_UNBALANCED)
            break
        elif is_opt(opt, b"GROUP") and more >= 2:
            if not group_cmd:
                raise CommandError(errors.STREAM_GROUP_ONLY_XREADGROUP)
            r.group, r.consumer = args[i + 1], args[i + 2]
            i += 2
        elif is_opt(opt, b"NOACK"):
            if not group_cmd:
                raise CommandError(errors.STREAM_NOACK_ONLY_XREADGROUP)
            r.noack = True
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if not streams_at:
        raise CommandError(errors.SYNTAX)
    if group_cmd and r.group is None:
        raise CommandError(errors.STREAM_MISSING_GROUP)
    n = (len(args) - streams_at) // 2
    r.keys = args[streams_at : streams_at + n]
    r.ids = args[streams_at + n :]
    r.ids_at = streams_at + n
    return r


# A blocked read served later answers at most this many entries per stream
# unless COUNT says otherwise (src/t_stream.c XREAD_BLOCKED_DEFAULT_COUNT).
BLOCKED_DEFAULT_COUNT = b"1000"


def block_or_null(ctx, r: ReadArgs, argv: list[bytes]):
    """Nothing to serve: wait (BLOCK, outside MULTI) or answer the null array.

    The retries run ``argv``, with Redis's COUNT for a blocked read added.
    """
    if r.block_ms is None or not ctx.may_block:
        return NULL_ARRAY
    if not r.count:
        argv = argv[:1] + [b"COUNT", BLOCKED_DEFAULT_COUNT] + argv[1:]
    return Blocked(r.block_ms, NULL_ARRAY, argv)


@command("xread", -4, "readonly blocking movablekeys", key_finder=read_keys, group="stream", summary="Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.", since="5.0.0", complexity="For each stream mentioned: O(N) with N being the number of elements being returned, it means that XREAD-ing with a fixed COUNT is O(1). Note that when the BLOCK option is used, XADD will pay O(M) time in order to serve the M clients blocked on the stream getting new data.")
def xread(ctx, args):
    r = parse_read(args, False)
    after = []
    for key, arg in zip(r.keys, r.ids):
        rec = get_stream(ctx, key)
        if arg == b"$":
            after.append(rec.value.last_id if rec is not None else ZERO)
        elif arg == b">":
            raise CommandError(errors.STREAM_GT_ONLY_XREADGROUP)
        else:
            after.append(strict_id(arg))
    out = []
    for key, gt in zip(r.keys, after):
        rec = ctx.get(key)
        if rec is None or not rec.value.entries or rec.value.entries.peekitem(-1)[0] <= gt:
            continue
        out.append((key, range_reply(rec.value, incr_id(gt), MAX_ID, r.count)))
    if out:
        return Map(out, nested=True)
    # Waiting again must mean "after the last ID seen now", not a fresh ``$``.
    argv = args[: r.ids_at] + [fmt_id(gt) for gt in after]
    return block_or_null(ctx, r, argv)


# -- XREADGROUP ---------------------------------------------------------------------------------


def _serve_new(ctx, key: bytes, r, s: Stream, g: Group, name: bytes) -> list:
    """``>``: entries after the group's last delivered ID, now owned by ``name``."""
    out, delivered = [], []
    last_id, read = g.last_id, g.entries_read
    for sid in s.entries.irange(incr_id(g.last_id), MAX_ID):
        if sid > last_id:
            if read != INVALID_READ and not has_tombstones_from(s, sid):
                read += 1
            elif s.entries_added:
                read = estimate_read(s, sid)
            last_id = sid
        out.append(entry_reply(sid, s.entries[sid]))
        if not r.noack:
            delivered.append([sid[0], sid[1], ctx.now_ms, 1])
        if r.count and len(out) >= r.count:
            break
    ctx.write((OP_XDELIVER, key, r.group, name, ctx.now_ms, delivered, list(last_id), read))
    return out


def _serve_history(ctx, key: bytes, r, s: Stream, g: Group, name: bytes, start: tuple) -> list:
    """A consumer's own pending entries from ``start`` (a deleted entry's fields are nil)."""
    out, redelivered = [], []
    consumer = g.consumers.get(name)
    mine = sorted(sid for sid in consumer.pel if sid >= start) if consumer is not None else []
    for sid in mine:
        if r.count and len(out) >= r.count:
            break
        fields = s.entries.get(sid)
        if fields is None:
            out.append([fmt_id(sid), NULL_ARRAY])
        else:
            out.append(entry_reply(sid, fields))
            redelivered.append([sid[0], sid[1], ctx.now_ms, g.pel[sid][2] + 1])
    ctx.write((OP_XDELIVER, key, r.group, name, ctx.now_ms, redelivered, None, None))
    return out


@command("xreadgroup", -7, "write blocking movablekeys", key_finder=read_keys, group="stream", summary="Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.", since="5.0.0", complexity="For each stream mentioned: O(M) with M being the number of elements returned. If M is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked on the stream getting new data.")
def xreadgroup(ctx, args):
    r = parse_read(args, True)
    starts = []
    for key, arg in zip(r.keys, r.ids):
        group_of(ctx, key, r.group, errors.STREAM_NOGROUP_XREADGROUP)
        if arg == b"$":
            raise CommandError(errors.STREAM_DOLLAR_IN_XREADGROUP)
        starts.append(None if arg == b">" else strict_id(arg))
    out = []
    for key, start in zip(r.keys, starts):
        s = ctx.get(key).value
        g = s.groups[r.group]
        if start is not None:
            out.append((key, _serve_history(ctx, key, r, s, g, r.consumer, incr_id(start) or start)))
        elif s.entries and s.entries.peekitem(-1)[0] > g.last_id:
            out.append((key, _serve_new(ctx, key, r, s, g, r.consumer)))
    return Map(out, nested=True) if out else block_or_null(ctx, r, args)


# -- XCLAIM, XAUTOCLAIM -------------------------------------------------------------------------


def _claim_option_int(arg: bytes, name: str) -> int:
    return int_arg(arg, errors.STREAM_XCLAIM_OPTION.format(name))


@command("xclaim", -6, "write fast", keys=(1, 1, 1), group="stream", summary="Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.", since="5.0.0", complexity="O(log N) with N being the number of messages in the PEL of the consumer group.")
def xclaim(ctx, args):
    key, gname, name = args[1], args[2], args[3]
    s, g = group_of(ctx, key, gname, errors.STREAM_NOGROUP)
    min_idle = max(int_arg(args[4], errors.STREAM_XCLAIM_MIN_IDLE), 0)
    ids, j = [], 5
    while j < len(args):
        try:
            ids.append(strict_id(args[j]))
        except CommandError:
            break
        j += 1
    now = ctx.now_ms
    force = justid = False
    retrycount, delivery, last_id = -1, None, ZERO
    while j < len(args):
        opt, more = args[j], j + 1 < len(args)
        if is_opt(opt, b"FORCE"):
            force = True
        elif is_opt(opt, b"JUSTID"):
            justid = True
        elif is_opt(opt, b"IDLE") and more:
            j += 1
            delivery = now - _claim_option_int(args[j], "IDLE")
        elif is_opt(opt, b"TIME") and more:
            j += 1
            delivery = _claim_option_int(args[j], "TIME")
        elif is_opt(opt, b"RETRYCOUNT") and more:
            j += 1
            retrycount = _claim_option_int(args[j], "RETRYCOUNT")
        elif is_opt(opt, b"LASTID") and more:
            j += 1
            last_id = strict_id(args[j])
        else:
            raise CommandError(errors.STREAM_XCLAIM_UNKNOWN_OPTION.format(errors._printable(opt)))
        j += 1
    if delivery is None or delivery < 0 or delivery > now:
        delivery = now
    pel = {sid: list(g.pel[sid]) for sid in ids if sid in g.pel}  # what the claims see, as they go
    gone, claimed, out = [], {}, []
    for sid in ids:
        nack = pel.get(sid)
        if sid not in s.entries:
            if nack is not None:
                del pel[sid]
                gone.append(list(sid))
            continue
        if nack is None:
            if not force:
                continue
            nack = pel[sid] = [None, now, 1]
        elif min_idle and now - nack[1] < min_idle:
            continue
        nack[0], nack[1] = name, delivery
        if retrycount >= 0:
            nack[2] = retrycount
        elif not justid:
            nack[2] += 1
        claimed[sid] = [sid[0], sid[1], delivery, nack[2]]
        out.append(fmt_id(sid) if justid else entry_reply(sid, s.entries[sid]))
    if gone:
        ctx.write((OP_XACK, key, gname, gone))
    new_last = list(last_id) if last_id > g.last_id else None
    if claimed or new_last is not None:
        # The consumer is created (or seen) only when it claims something.
        who = name if claimed else None
        ctx.write((OP_XDELIVER, key, gname, who, now, list(claimed.values()), new_last, None))
    return out


@command("xautoclaim", -6, "write fast", keys=(1, 1, 1), group="stream", summary="Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.", since="6.2.0", complexity="O(1) if COUNT is small.")
def xautoclaim(ctx, args):
    key, gname, name = args[1], args[2], args[3]
    min_idle = max(int_arg(args[4], errors.STREAM_XAUTOCLAIM_MIN_IDLE), 0)
    start = interval_start(args[5])
    count, justid = 100, False
    j = 6
    while j < len(args):
        if is_opt(args[j], b"COUNT") and j + 1 < len(args):
            count = parse_int(args[j + 1])
            if count is None or not 1 <= count <= INT64_MAX // 16:
                raise CommandError(errors.STREAM_XAUTOCLAIM_COUNT)
            j += 1
        elif is_opt(args[j], b"JUSTID"):
            justid = True
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    s, g = group_of(ctx, key, gname, errors.STREAM_NOGROUP)
    now = ctx.now_ms
    attempts = count * 10
    ids = list(islice(g.pel.irange(start, MAX_ID), attempts + 1))  # what the loop can visit, and the cursor
    pos = 0
    gone, claimed, out = [], [], []
    while attempts > 0 and count > 0 and pos < len(ids):
        attempts -= 1
        sid = ids[pos]
        pos += 1
        nack = g.pel[sid]
        if sid not in s.entries:
            gone.append(sid)
            count -= 1
            continue
        if min_idle and now - nack[1] < min_idle:
            continue
        deliveries = nack[2] if justid else nack[2] + 1
        claimed.append([sid[0], sid[1], now, deliveries])
        out.append(fmt_id(sid) if justid else entry_reply(sid, s.entries[sid]))
        count -= 1
    if gone:
        ctx.write((OP_XACK, key, gname, [list(sid) for sid in gone]))
    if claimed:
        ctx.write((OP_XDELIVER, key, gname, name, now, claimed, None, None))
    cursor = ids[pos] if pos < len(ids) else ZERO
    return [fmt_id(cursor), out, [fmt_id(sid) for sid in gone]]
