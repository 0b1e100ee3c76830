"""What COMMAND, COMMAND INFO and COMMAND DOCS report about one command.

For a command Redis has, the report is Redis 7.0's own (generated from its
command JSON: resp/commands/command_docs_data.py and key_specs_data.py), in
its order and reply types, except where the report must say what makod
does: the arity is always the command table's, and the subcommands listed
are the table's (see ``REDIS_RANGE_KEPT`` for first/last/step). The command
table's own flags (routing, MULTI queueing, ACL) are not what is reported:
a reported flag or category changes nothing here.

A command Redis does not have (MAKO ...) is described from the command table:
its flags (sorted), categories guessed from flags and group, tips from how
its replies merge across shards, and the table's documentation fields.
"""

from __future__ import annotations

from typing import Any

from makod.kv.table import CommandSpec
from resp.commands.command_docs_data import DOCS, INFO
from resp.commands.command_keys import key_specs_reply
from resp.replies import Map, Set, SimpleString

# Commands whose (first, last, step) in the command table differ from what
# Redis reports, and Redis's values are reported anyway because makod takes
# keys at those positions too. ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: the
# table has 0 0 0 and a key finder (numkeys), which also returns the
# destination at index 1; Redis reports that destination as 1 1 1.
REDIS_RANGE_KEPT = frozenset({"zunionstore", "zinterstore", "zdiffstore"})


# -- commands Redis does not have ---------------------------------------------------------------
_GROUP_CATEGORY = {
    "string": "@string",
    "hash": "@hash",
    "generic": "@keyspace",
    "connection": "@connection",
    "transactions": "@transaction",
    "server": "@admin",
    "mako": "@admin",
}


def synthesized_categories(spec: CommandSpec) -> list[str]:
    """ACL categories reported for a command Redis lacks (a guess from its flags)."""
    cats = []
    if "write" in spec.flags:
        cats.append("@write")
    if "readonly" in spec.flags:
        cats.append("@read")
    group = _GROUP_CATEGORY.get(spec.group)
    if group and group not in cats:
        cats.append(group)
    if "admin" in spec.flags and "@admin" not in cats:
        cats += ["@admin", "@dangerous"]
    cats.append("@fast" if "fast" in spec.flags else "@slow")
    return cats


def synthesized_tips(spec: CommandSpec) -> list[str]:
    """Tips reported for a command Redis lacks: how its per-shard replies merge."""
    if spec.scope != "keyspace":
        return []
    policy = {
        "sum": ["request_policy:all_shards", "response_policy:agg_sum"],
        "concat": ["request_policy:all_shards", "nondeterministic_output_order"],
        "all_ok": ["request_policy:all_shards", "response_policy:all_succeeded"],
        "scan": ["nondeterministic_output", "request_policy:special", "response_policy:special"],
        "any": ["request_policy:all_shards", "response_policy:special", "nondeterministic_output"],
    }
    return policy.get(spec.merge, [])


# -- COMMAND INFO -----------------------------------------------------------------------------
def _statuses(names: tuple[str, ...] | list[str]) -> Set:
    return Set([SimpleString(n) for n in names])


def _subcommands(spec: CommandSpec, reply: Any, as_map: bool) -> Any:
    """Redis answers an empty set for a command with no subcommands, else an
    array (COMMAND INFO) or a map by full name (COMMAND DOCS)."""
    if not spec.subcommands:
        return Set([])
    subs = spec.subcommands.values()
    if as_map:
        return Map([(sub.name, reply(sub)) for sub in subs])
    return [reply(sub) for sub in subs]


def key_range(spec: CommandSpec) -> tuple[int, int, int]:
    """(first, last, step) as reported: the table's, or Redis's where ``REDIS_RANGE_KEPT``."""
    data = INFO.get(spec.name)
    if data is not None and spec.name in REDIS_RANGE_KEPT:
        return data[2]
    return (spec.first_key, spec.last_key, spec.key_step)


def command_info(spec: CommandSpec) -> list:
    """One COMMAND INFO entry, in the 10-element form of Redis 7."""
    data = INFO.get(spec.name)
    if data is None:
        flags, cats, tips = sorted(spec.flags), synthesized_categories(spec), synthesized_tips(spec)
    else:
        _arity, flags, _range, cats, tips = data
    return [
        spec.name,
        spec.arity,
        _statuses(flags),
        *key_range(spec),
        _statuses(cats),
        Set(list(tips)),
        key_specs_reply(spec),
        _subcommands(spec, command_info, as_map=False),
    ]


# -- COMMAND DOCS -------------------------------------------------------------------------------
def _argument(arg: tuple) -> Map:
    items: list[tuple[str, Any]] = [("name", arg[0]), ("type", arg[1])]
    for field, value in (arg[2] if len(arg) > 2 else {}).items():
        if field == "flags":
            value = _statuses(value)
        elif field == "arguments":
            value = [_argument(sub) for sub in value]
        items.append((field, value))
    return Map(items)


def _redis_docs(data: dict) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for field, value in data.items():
        if field == "doc_flags":
            value = _statuses(value)
        elif field == "history":
            value = Set([list(entry) for entry in value])
        elif field == "arguments":
            value = [_argument(arg) for arg in value]
        items.append((field, value))
    return items


def command_docs(spec: CommandSpec) -> Map:
    data = DOCS.get(spec.name)
    if data is not None:
        items = _redis_docs(data)
    else:
        items = [("summary", spec.summary), ("since", spec.since), ("group", spec.group), ("complexity", spec.complexity)]
    if spec.subcommands:
        items.append(("subcommands", _subcommands(spec, command_docs, as_map=True)))
    return Map(items)
