"""COMMAND, COMMAND INFO and COMMAND DOCS against redis-server 7.0: the whole
entry of every command and subcommand both servers have, in RESP2 and RESP3,
compared by reply type and value, in order (as the bytes), with the
deliberate exceptions below and nothing else normalised.

Exceptions, each because the reply must say what makod does:
- ``ARITY_KEPT``: makod accepts other argument counts than Redis.
- A container lists makod's own subcommands (``MAKOD_ONLY_SUBCOMMANDS``,
  ``REDIS_ONLY_SUBCOMMANDS``); each shared subcommand is compared whole.
- Redis lists a container's subcommands in the order of a hash table seeded
  at random when it starts, so that order is compared as a set of names.
Commands only one side has (MAKO, DEBUG, ...) are left out, except that
COMMAND COUNT and COMMAND LIST must list makod's own table.
"""

from __future__ import annotations

import pytest

import makod.commands  # noqa: F401  (fills the command table)
from makod.kv.table import TABLE
from tests.compat import test_differential
from tests.compat.test_diff_command_keys import _pair, mako  # noqa: F401  (mako: the cluster fixture)

real = test_differential.real  # the redis-server fixture

# COMMAND GETKEYS/GETKEYSANDFLAGS: Redis's arity is -4 (a command and at least
# one argument); makod's handler accepts a bare command name (-3) and answers
# with its own error ("has no key arguments", "Invalid arguments").
ARITY_KEPT = {b"command|getkeys": -3, b"command|getkeysandflags": -3}

# Subcommands of Redis 7.2 that makod has (Redis 7.0 lacks them).
MAKOD_ONLY_SUBCOMMANDS = {b"client|setinfo", b"client|no-touch", b"cluster|myshardid"}
# Subcommands makod does not have: cluster administration is makoctl's
# (slots, nodes and failover are Paxos-managed), no allocator or memory doctor
# reports, no Lua debugger, and the containers' HELP for these three.
REDIS_ONLY_SUBCOMMANDS = {
    b"acl|help", b"function|help", b"script|help", b"script|debug",
    b"memory|doctor", b"memory|malloc-stats", b"memory|purge", b"memory|stats",
    b"cluster|addslots", b"cluster|addslotsrange", b"cluster|bumpepoch", b"cluster|count-failure-reports",
    b"cluster|delslots", b"cluster|delslotsrange", b"cluster|failover", b"cluster|flushslots", b"cluster|forget",
    b"cluster|links", b"cluster|meet", b"cluster|replicas", b"cluster|replicate", b"cluster|reset",
    b"cluster|saveconfig", b"cluster|set-config-epoch", b"cluster|setslot", b"cluster|slaves",
}


def _info_entries(reply: tuple, out: dict) -> dict:
    """COMMAND (INFO)'s entries, subcommands too, by name; an entry's list of
    subcommands becomes (its reply type, its names sorted)."""
    for kind, fields in reply[1]:
        subs = fields[9]
        out[fields[0][1]] = (kind, fields[:9] + [(subs[0], sorted(sub[1][0][1] for sub in subs[1]))])
        _info_entries(subs, out)
    return out


def _docs_entries(reply: tuple, out: dict) -> dict:
    """COMMAND DOCS's entries, subcommands too, by name, the same way."""
    pairs = reply[1]
    for i in range(0, len(pairs), 2):
        kind, fields = pairs[i + 1]
        fields = list(fields)
        for j in range(0, len(fields), 2):
            if fields[j] == ("$", b"subcommands"):
                subs = fields[j + 1]
                _docs_entries(subs, out)
                fields[j + 1] = (subs[0], sorted(subs[1][k][1] for k in range(0, len(subs[1]), 2)))
        out[pairs[i][1]] = (kind, fields)
    return out


def _table_subcommands(name: bytes) -> list[bytes]:
    spec = TABLE.lookup(name)
    return sorted(sub.name.encode() for sub in spec.subcommands.values()) if spec else []


def _check_subcommand_lists(mine: tuple, theirs: tuple, name: bytes) -> None:
    """A container's list: makod's own subcommands; what differs from Redis is an exception above."""
    assert mine[0] == theirs[0], name  # the reply type: an array, an empty set when none
    assert mine[1] == _table_subcommands(name.split(b"|")[0]) or b"|" in name, name
    assert set(mine[1]) - set(theirs[1]) <= MAKOD_ONLY_SUBCOMMANDS, name
    assert set(theirs[1]) - set(mine[1]) <= REDIS_ONLY_SUBCOMMANDS, name


@pytest.mark.parametrize("proto", [2, 3])
def test_command_info_of_every_shared_command(real, mako, proto):  # noqa: F811
    with _pair(real, mako, proto) as (ours, theirs):
        a, b = _info_entries(ours.call("COMMAND"), {}), _info_entries(theirs.call("COMMAND"), {})
        shared = sorted(set(a) & set(b))
        assert len(shared) > 300 and {b"set", b"zunionstore", b"client|kill", b"xinfo|stream"} <= set(shared)
        for name in shared:
            (kind, mine), (kind2, redis_) = a[name], b[name]
            assert kind == kind2, name
            if name in ARITY_KEPT:
                assert mine[1] == (":", b"%d" % ARITY_KEPT[name]) != redis_[1], name
                mine = [mine[0], redis_[1], *mine[2:]]
            _check_subcommand_lists(mine[9], redis_[9], name)
            assert mine[:9] == redis_[:9], (name, [(i, m, r) for i, (m, r) in enumerate(zip(mine, redis_)) if m != r])
        # Named lookups: in the order asked, a null for an unknown name, "container|sub" names too.
        names = ["set", "nosuch", "ZUNIONSTORE", "swapdb", "eval", "xinfo|stream", "Object|Encoding", "object|nosuch"]
        assert ours.call("COMMAND", "INFO", *names) == theirs.call("COMMAND", "INFO", *names)


@pytest.mark.parametrize("proto", [2, 3])
def test_command_docs_of_every_shared_command(real, mako, proto):  # noqa: F811
    with _pair(real, mako, proto) as (ours, theirs):
        a, b = _docs_entries(ours.call("COMMAND", "DOCS"), {}), _docs_entries(theirs.call("COMMAND", "DOCS"), {})
        shared = sorted(set(a) & set(b))
        assert len(shared) > 300
        for name in shared:
            (kind, mine), (kind2, redis_) = a[name], b[name]
            assert kind == kind2, name
            keys = [mine[i] for i in range(0, len(mine), 2)]
            assert keys == [redis_[i] for i in range(0, len(redis_), 2)], name
            if ("$", b"subcommands") in keys:
                at = keys.index(("$", b"subcommands")) * 2 + 1
                _check_subcommand_lists(mine[at], redis_[at], name)
                mine, redis_ = mine[: at - 1] + mine[at + 1 :], redis_[: at - 1] + redis_[at + 1 :]
            assert mine == redis_, name
        names = ["set", "nosuch", "georadius", "client|kill", "XADD", "bitfield", "sort", "restore", "xinfo|stream"]
        assert ours.call("COMMAND", "DOCS", *names) == theirs.call("COMMAND", "DOCS", *names)


@pytest.mark.parametrize("proto", [2, 3])
def test_count_and_list_are_makods_own(real, mako, proto):  # noqa: F811
    with _pair(real, mako, proto) as (ours, theirs):
        everything = {entry[1][0][1] for entry in ours.call("COMMAND")[1]}
        assert everything == {spec.name.encode() for spec in TABLE}
        assert ours.call("COMMAND", "COUNT") == (":", b"%d" % len(TABLE))
        listed = ours.call("COMMAND", "LIST")
        assert listed[0] == "*" and {v for _, v in listed[1]} == everything
        assert b"mako" in everything and b"mako" not in {v for _, v in theirs.call("COMMAND", "LIST")[1]}
        # A command Redis lacks keeps its entry synthesized from the table.
        mine = ours.call("COMMAND", "INFO", "mako")[1][0][1]
        assert mine[0] == ("$", b"mako") and {n for _, n in mine[6][1]} == {b"@admin", b"@slow"}
        assert ours.call("COMMAND", "DOCS", "mako|status")[1][0] == ("$", b"mako|status")


def test_acl_cat_lists_what_redis_lists(real, mako):  # noqa: F811
    """ACL's categories are the reported ones, so ACL CAT <category> names the
    same commands as Redis, of those both have (Redis's order is a hash
    table's: compared as sets)."""
    with _pair(real, mako, 2) as (ours, theirs):
        names = [set(_info_entries(side.call("COMMAND"), {})) for side in (ours, theirs)]
        shared = names[0] & names[1]
        categories = ours.call("ACL", "CAT")
        assert categories == theirs.call("ACL", "CAT")
        for _, cat in categories[1]:
            listed = [{v for _, v in side.call("ACL", "CAT", cat)[1]} & shared for side in (ours, theirs)]
            assert listed[0] == listed[1], (cat, listed[0] ^ listed[1])
