"""Redis 7.0's key specs (resp/commands/key_specs_data.py) against the command
table: for every command that has both, on argvs generated from its arity
and specs, the keys the specs find (COMMAND GETKEYS's way) are the keys
``spec.keys(argv)`` routes by. Where they differ on purpose the case is
listed in EXCEPTIONS with its reason, and checked to still differ that way.
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

import makod.commands  # noqa: F401  (fills the command table)
from makod.kv.errors import CommandError
from makod.kv.table import TABLE, CommandSpec, resolve
from resp.commands import command_keys
from resp.commands.key_specs_data import GETKEYS_FUNCTIONS, KEY_SPECS

ROOT = Path(__file__).resolve().parents[2]


def _all_specs() -> list[CommandSpec]:
    return [s for top in TABLE for s in (top, *top.subcommands.values())]


def _spec_keys(argv: list[bytes]) -> list[bytes]:
    """The keys COMMAND GETKEYS answers, [] where it refuses the arguments."""
    try:
        return [key for key, _ in command_keys.getkeys(argv)]
    except CommandError as exc:
        assert "Invalid arguments specified" in str(exc), exc
        return []


# Commands whose keys hang on keywords in a fixed grammar, or on the key
# finder alone (SORT's specs are "unknown"): their argvs are written out.
WRITTEN = {
    "sort": ["SORT s", "SORT s BY w_* GET o_* STORE d", "SORT s LIMIT 0 1 STORE a STORE b", "SORT s STORE d ALPHA"],
    "sort_ro": ["SORT_RO s", "SORT_RO s BY w GET o"],
    "xread": ["XREAD STREAMS a 0", "XREAD COUNT 2 BLOCK 0 STREAMS a b 0 0", "XREAD STREAMS a STREAMS 0 0"],
    "xreadgroup": ["XREADGROUP GROUP g c STREAMS a >", "XREADGROUP GROUP g c COUNT 1 NOACK STREAMS a b > 0"],
    "set": ["SET k v", "SET k v GET", "SET k v EX 1 get"],
    "bitfield": ["BITFIELD k", "BITFIELD k GET u8 0", "BITFIELD k SET u8 0 1", "BITFIELD k OVERFLOW SAT INCRBY u8 0 1"],
    "georadius": ["GEORADIUS k 1 2 3 km", "GEORADIUS k 1 2 3 km STORE d", "GEORADIUS k 1 2 3 km STORE d STOREDIST e"],
}

# argv -> (Redis's keys, the table's keys, why they differ). Routing takes
# the table's keys: a superset is safe there, a missing key would not be.
EXCEPTIONS = {
    "PFMERGE k1": (
        [], [b"k1"],
        ("Redis's second spec (sources from argv[2]) runs past the end, so GETKEYS refuses "
         "the whole invocation; PFMERGE k1 is valid and touches k1"),
    ),
    "GEORADIUS k 1 2 3 km STORE d STORE e": (
        [b"k", b"d"], [b"k", b"d", b"e"],
        "a keyword spec stops at the first STORE; GEORADIUS writes to the last one",
    ),
    "ZUNIONSTORE d x a": (
        [], [b"d"],
        "a numkeys that is not a number: Redis finds no keys, the table still names the destination",
    ),
    "GEORADIUS k 1 2 3 STORE d": (
        [b"k"], [b"k", b"d"],
        "STORE in the unit's place: the specs look from argv[6], the table from argv[5]",
    ),
}


def _generated(spec: CommandSpec) -> list[list[bytes]]:
    """Argvs of every allowed length up to three past the minimum, filled with
    distinct names; each "numkeys" set to one and to as many keys as fit; each
    search keyword placed where its spec looks for it."""
    name = [part.upper().encode() for part in spec.name.split("|")]
    lo = abs(spec.arity)
    out = []
    for n in [lo] if spec.arity > 0 else range(lo, lo + 4):
        base = name + [b"k%d" % i for i in range(len(name), n)]
        variants = [base]
        for ks in KEY_SPECS[spec.name]:
            (bs, *bs_args), (fk, *fk_args) = ks["begin_search"], ks["find_keys"]
            if fk == "keynum" and bs == "index":
                at, first = bs_args[0] + fk_args[0], bs_args[0] + fk_args[1]
                for count in {1, n - first}:
                    if count >= 1 and at < n:
                        variants += [v[:at] + [b"%d" % count] + v[at + 1:] for v in variants[:1]]
            if bs == "keyword":
                word, startfrom = bs_args[0].encode(), bs_args[1]
                variants += [v[:p] + [word] + v[p + 1:] for v in variants[:1] for p in range(startfrom, n - 1)]
        if any(ks["find_keys"][0] == "keynum" for ks in KEY_SPECS[spec.name]):
            variants = variants[1:]  # a name where numkeys goes: see EXCEPTIONS
        out += variants
    return out


def _keyed_commands() -> list[CommandSpec]:
    return [s for s in _all_specs() if s.name in KEY_SPECS and command_keys.has_keys(s)]


@pytest.mark.parametrize("spec", _keyed_commands(), ids=lambda s: s.name)
def test_key_specs_find_the_tables_keys(spec: CommandSpec) -> None:
    if spec.name in WRITTEN:
        argvs = [text.encode().split() for text in WRITTEN[spec.name]]
    else:
        argvs = _generated(spec)
    assert argvs
    for argv in argvs:
        if b" ".join(argv).decode() in EXCEPTIONS:
            continue
        assert _spec_keys(argv) == spec.keys(argv), argv


@pytest.mark.parametrize("text", sorted(EXCEPTIONS))
def test_documented_exceptions_still_hold(text: str) -> None:
    argv = text.encode().split()
    redis_keys, table_keys, _why = EXCEPTIONS[text]
    assert _spec_keys(argv) == redis_keys
    assert resolve(TABLE, argv).keys(argv) == table_keys
    assert set(redis_keys) <= set(table_keys), "routing must never miss a key Redis names"


def test_every_redis_command_has_its_specs_here() -> None:
    ours = {s.name for s in _all_specs()}
    # makodb's own commands and the few newer than Redis 7.0 get guessed specs.
    guessed = sorted(ours - set(KEY_SPECS))
    assert all(name.split("|")[0] in ("mako", "client", "cluster") for name in guessed), guessed
    for spec in _all_specs():
        if spec.name in GETKEYS_FUNCTIONS:
            assert "movablekeys" in spec.flags or spec.name in ("set", "bitfield"), spec.name
    for name in guessed:
        spec = next(s for s in _all_specs() if s.name == name)
        assert command_keys.key_specs(spec) == () or spec.first_key


def test_flags_come_from_the_spec_or_the_key_finder() -> None:
    def flags(text: str) -> list:
        return [f for _, f in command_keys.getkeys(text.encode().split())]

    assert flags("ZUNIONSTORE d 2 a b") == [("OW", "update"), ("RO", "access"), ("RO", "access")]
    assert flags("ZUNIONSTORE d 2x a b") == [(), (), ()], "Redis's fallback: keys without flags, destination last"
    assert flags("SET k v") == [("OW", "update")] and flags("SET k v get") == [("RW", "access", "update")]
    assert flags("SORT s STORE d") == [("RO", "access"), ("OW", "update")]
    assert flags("EVAL s 0") == [], "EVAL may name no keys (no_mandatory_keys)"
    with pytest.raises(CommandError, match="ERR The command has no key arguments"):
        command_keys.getkeys([b"PING", b"x"])
    with pytest.raises(CommandError, match="ERR Invalid number of arguments"):
        command_keys.getkeys([b"GET"])
    with pytest.raises(CommandError, match="ERR Invalid command specified"):
        command_keys.getkeys([b"OBJECT", b"NOPE", b"k"])


def test_generator_writes_what_it_reads(tmp_path: Path) -> None:
    commands = tmp_path / "src" / "commands"
    commands.mkdir(parents=True)
    (tmp_path / "src" / "version.h").write_text('#define REDIS_VERSION "9.9.9"\n')
    spec = {"notes": "n", "flags": ["UPDATE", "RW", "ACCESS"], "begin_search": {"keyword": {"keyword": "K", "startfrom": 2}},
            "find_keys": {"keynum": {"keynumidx": 0, "firstkey": 1, "step": 1}}}
    (commands / "x.json").write_text(json.dumps({"X": {"arity": -2, "get_keys_function": "xGetKeys", "key_specs": [spec]}}))
    (commands / "x-y.json").write_text(json.dumps({"Y": {"arity": 2, "container": "X"}}))
    generated = tmp_path / "key_specs_data.py"
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_key_specs.py"), str(commands), "-o", str(generated)], check=True)
    data = runpy.run_path(str(generated))
    assert data["REDIS_VERSION"] == "9.9.9" and data["GETKEYS_FUNCTIONS"] == {"x": "xGetKeys"}
    assert data["KEY_SPECS"] == {
        "x": ({"notes": "n", "flags": ("RW", "access", "update"), "begin_search": ("keyword", "K", 2),
               "find_keys": ("keynum", 0, 1, 1)},),
        "x|y": (),
    }


# -- the rest of COMMAND INFO / DOCS (resp/commands/command_docs_data.py) -------------------------
# Where COMMAND INFO reports the table's arity rather than Redis's: makod
# accepts COMMAND GETKEYS <command> with no argument (Redis: -4).
ARITY_KEPT = {"command|getkeys": -3, "command|getkeysandflags": -3}


def test_reported_arity_and_key_range_differences_are_the_documented_ones() -> None:
    from resp.commands.command_docs_data import INFO
    from resp.commands.command_meta import REDIS_RANGE_KEPT, key_range

    shared = [s for s in _all_specs() if s.name in INFO]
    assert len(shared) > 300
    assert {s.name: s.arity for s in shared if s.arity != INFO[s.name][0]} == ARITY_KEPT
    differ = {s.name for s in shared if (s.first_key, s.last_key, s.key_step) != INFO[s.name][2]}
    assert differ == REDIS_RANGE_KEPT
    for name in REDIS_RANGE_KEPT:
        # Redis's range is reported because makod takes a key there too (the destination).
        spec = TABLE.lookup(name.encode())
        first, last, step = key_range(spec)
        argv = [name.encode(), b"dst", b"2", b"a", b"b"]
        assert (first, last, step) == (1, 1, 1) and argv[first] in spec.keys(argv)


def test_acl_uses_the_reported_categories() -> None:
    from resp.acl import categories_of
    from resp.commands.command_docs_data import INFO

    for spec in _all_specs():
        if spec.name in INFO:
            assert categories_of(spec) == {c[1:] for c in INFO[spec.name][3]}, spec.name
    assert "read" not in categories_of(TABLE.lookup(b"eval_ro")), "Redis leaves scripting out of @read"


def test_docs_generator_follows_redis_rules(tmp_path: Path) -> None:
    commands = tmp_path / "src" / "commands"
    commands.mkdir(parents=True)
    (tmp_path / "src" / "version.h").write_text('#define REDIS_VERSION "9.9.9"\n')

    def rng(pos: int, last: int, step: int = 1, flags: tuple = ("RW",)) -> dict:
        return {"flags": list(flags), "begin_search": {"index": {"pos": pos}},
                "find_keys": {"range": {"lastkey": last, "step": step, "limit": 0}}}

    x = {"summary": "X it", "since": "1.0.0", "group": "sorted_set", "complexity": "", "arity": -3,
         "command_flags": ["FAST", "DENYOOM", "WRITE", "MAY_REPLICATE"], "acl_categories": ["SORTEDSET"],
         "command_tips": ["NONDETERMINISTIC_OUTPUT"], "doc_flags": ["SYSCMD", "DEPRECATED"],
         "history": [["2.0.0", "More."]], "key_specs": [rng(1, 0), rng(2, -1)],
         "arguments": [{"name": "Key", "type": "key", "key_spec_index": 0},
                       {"name": "opt", "type": "oneof", "optional": True, "since": "",
                        "arguments": [{"name": "a", "type": "pure-token", "token": "a"}]}]}
    (commands / "x.json").write_text(json.dumps({"X": x}))
    s = {"summary": "S", "since": "2.0.0", "group": "scripting", "arity": 2, "command_flags": ["READONLY", "NOSCRIPT"],
         "acl_categories": ["SCRIPTING"], "key_specs": [rng(1, 0, 2), rng(2, 0)], "container": "X"}
    (commands / "x-s.json").write_text(json.dumps({"S": s}))
    (commands / "only.json").write_text(json.dumps({"ONLY": {"summary": "o", "since": "1", "group": "sentinel",
                                                             "arity": 1, "command_flags": ["ONLY_SENTINEL"]}}))
    generated = tmp_path / "command_docs_data.py"
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_command_docs.py"), str(commands), "-o", str(generated)],
                   check=True)
    data = runpy.run_path(str(generated))
    assert data["REDIS_VERSION"] == "9.9.9"
    assert data["INFO"] == {
        # Flags in Redis's order, may_replicate hidden; two consecutive ranges merge (1, -1, 1).
        "x": (-3, ("write", "denyoom", "fast"), (1, -1, 1), ("@write", "@sortedset", "@fast"), ("nondeterministic_output",)),
        # Of several specs, one with step 2 is left out (movablekeys); scripting is never @read.
        "x|s": (2, ("readonly", "noscript", "movablekeys"), (2, 2, 1), ("@slow", "@scripting"), ()),
    }
    assert data["DOCS"] == {
        "x": {"summary": "X it", "since": "1.0.0", "group": "sorted-set", "doc_flags": ("deprecated", "syscmd"),
              "history": (("2.0.0", "More."),),
              "arguments": (("key", "key", {"key_spec_index": 0}),
                            ("opt", "oneof", {"flags": ("optional",), "arguments": (("a", "pure-token", {"token": "A"}),)}))},
        "x|s": {"summary": "S", "since": "2.0.0", "group": "sorted-set"},
    }
