"""XINFO STREAM [FULL [COUNT n]], XINFO GROUPS, XINFO CONSUMERS, XINFO HELP (Redis 7.0 fields).

``radix-tree-keys`` and ``radix-tree-nodes`` describe Redis's own storage (a
radix tree of listpack nodes of up to 100 entries); makodb has none, so it
answers what Redis would for a stream whose entries were added in order and
never deleted: one key per 100 entries (0 for an empty stream), and one
tree node per key plus one (1 for an empty stream). Real Redis can differ
(deleted entries keep their node; the tree's inner nodes depend on the IDs).
"""

from __future__ import annotations

from makod.kv import errors
from makod.kv.args import int_arg, is_opt
from makod.kv.errors import CommandError
from makod.kv.replies import Map
from makod.kv.table import container, subcommand
from makod.kv.types.streams import MAX_ID, ZERO, Stream, entry_reply, fmt_id, get_stream, range_reply
from makod.kv.types.streams_groups import INVALID_READ, help_reply, lag

# Redis's stream-node-max-entries default: entries per listpack node.
NODE_MAX_ENTRIES = 100
# XINFO STREAM FULL lists this many entries (and PEL entries) unless COUNT says otherwise.
FULL_DEFAULT_COUNT = 10


def _stream(ctx, key: bytes) -> Stream:
    rec = get_stream(ctx, key)
    if rec is None:
        raise CommandError(errors.NO_SUCH_KEY)
    return rec.value


def _edge(s: Stream, last: bool):
    if not s.entries:
        return None
    sid, fields = s.entries.peekitem(-1 if last else 0)
    return entry_reply(sid, fields)


def _head(s: Stream) -> list:
    keys = -(-len(s.entries) // NODE_MAX_ENTRIES)
    return [
        (b"length", len(s.entries)),
        (b"radix-tree-keys", keys),
        (b"radix-tree-nodes", keys + 1),
        (b"last-generated-id", fmt_id(s.last_id)),
        (b"max-deleted-entry-id", fmt_id(s.max_deleted)),
        (b"entries-added", s.entries_added),
        (b"recorded-first-entry-id", fmt_id(s.first_id)),
    ]


def _read_counter(g) -> int | None:
    return None if g.entries_read == INVALID_READ else g.entries_read


def _full_groups(s: Stream, count: int) -> list:
    out = []
    for name, g in sorted(s.groups.items()):
        pel = list(g.pel.items())
        if count:
            pel = pel[:count]
        consumers = []
        for cname, c in sorted(g.consumers.items()):
            mine = sorted(c.pel)
            if count:
                mine = mine[:count]
            consumers.append(Map([
                (b"name", cname),
                (b"seen-time", c.seen_ms),
                (b"pel-count", len(c.pel)),
                (b"pending", [[fmt_id(sid), g.pel[sid][1], g.pel[sid][2]] for sid in mine]),
            ]))
        out.append(Map([
            (b"name", name),
            (b"last-delivered-id", fmt_id(g.last_id)),
            (b"entries-read", _read_counter(g)),
            (b"lag", lag(s, g)),
            (b"pel-count", len(g.pel)),
            (b"pending", [[fmt_id(sid), n[0], n[1], n[2]] for sid, n in pel]),
            (b"consumers", consumers),
        ]))
    return out


def _xinfo_stream(ctx, args):
    s = _stream(ctx, args[2])
    opts = args[3:]
    if not opts:
        return Map(_head(s) + [
            (b"groups", len(s.groups)),
            (b"first-entry", _edge(s, False)),
            (b"last-entry", _edge(s, True)),
        ])
    if len(opts) not in (1, 3) or not is_opt(opts[0], b"FULL"):
        raise CommandError(errors.subcommand_syntax(args[1], "xinfo"))
    count = FULL_DEFAULT_COUNT
    if len(opts) == 3:
        if not is_opt(opts[1], b"COUNT"):
            raise CommandError(errors.subcommand_syntax(args[1], "xinfo"))
        count = int_arg(opts[2])
        if count < 0:
            count = FULL_DEFAULT_COUNT
    return Map(_head(s) + [
        (b"entries", range_reply(s, ZERO, MAX_ID, count)),
        (b"groups", _full_groups(s, count)),
    ])


def _xinfo_groups(ctx, args):
    s = _stream(ctx, args[2])
    return [
        Map([
            (b"name", name),
            (b"consumers", len(g.consumers)),
            (b"pending", len(g.pel)),
            (b"last-delivered-id", fmt_id(g.last_id)),
            (b"entries-read", _read_counter(g)),
            (b"lag", lag(s, g)),
        ])
        for name, g in sorted(s.groups.items())
    ]


def _xinfo_consumers(ctx, args):
    s = _stream(ctx, args[2])
    g = s.groups.get(args[3])
    if g is None:
        raise CommandError(errors.nogroup(errors.STREAM_NOGROUP_FOR_KEY, args[3], args[2]))
    return [
        Map([(b"name", name), (b"pending", len(c.pel)), (b"idle", max(ctx.now_ms - c.seen_ms, 0))])
        for name, c in sorted(g.consumers.items())
    ]


XINFO_HELP = [
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
]


container(
    "xinfo",
    scope="data",
    group="stream",
    summary="A container for stream introspection commands",
    since="5.0.0",
    subcommands=[
        subcommand("xinfo", "stream", -3, _xinfo_stream, "readonly", scope="data", group="stream", summary="Get information about a stream", since="5.0.0", keys=(2, 2, 1)),
        subcommand("xinfo", "groups", 3, _xinfo_groups, "readonly", scope="data", group="stream", summary="List the consumer groups of a stream", since="5.0.0", keys=(2, 2, 1)),
        subcommand("xinfo", "consumers", 4, _xinfo_consumers, "readonly", scope="data", group="stream", summary="List the consumers in a consumer group", since="5.0.0", keys=(2, 2, 1)),
        subcommand("xinfo", "help", 2, lambda ctx, args: help_reply(XINFO_HELP), "loading stale", scope="data", group="stream", summary="Show helpful text about the different subcommands", since="5.0.0"),
    ],
)
