"""COMMAND's key facts: key specs (COMMAND INFO) and the keys of one invocation
with their flags (COMMAND GETKEYS, GETKEYSANDFLAGS), as Redis 7.0 answers.

The key specs are Redis's own (resp/commands/key_specs_data.py, generated from
its command JSON). A command Redis does not have (MAKO ...) gets one spec
guessed from the command table's (first, last, step): read-only commands
``RO access``, the others ``RW update``.

Finding keys follows Redis 7.0's order of means: the key specs, unless one is
marked ``variable_flags`` or a spec cannot be applied to the arguments (an
``unknown`` or ``incomplete`` spec, a bad "numkeys", a key past the end);
then the command's own key finder (its ``get_keys_function``, re-done here
by behaviour); else no keys. Routing does not use this: it uses
``spec.keys(argv)`` (tests/unit/test_key_specs.py checks the two agree).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from makod.kv.errors import CommandError
from makod.kv.table import TABLE, CommandSpec, resolve
from resp.commands.key_specs_data import GETKEYS_FUNCTIONS, KEY_SPECS
from resp.replies import Map, Set, SimpleString

Flags = tuple[str, ...]
KeyRefs = list[tuple[int, Flags]]  # (argument index, key-spec flags)


def key_specs(spec: CommandSpec) -> tuple[dict, ...]:
    """Redis's key specs for the command, or one guessed from the table."""
    data = KEY_SPECS.get(spec.name)
    if data is not None:
        return data
    if not spec.first_key:
        return ()
    flags = ("RO", "access") if "readonly" in spec.flags else ("RW", "update")
    last = spec.last_key - spec.first_key if spec.last_key >= 0 else spec.last_key
    return ({"flags": flags, "begin_search": ("index", spec.first_key), "find_keys": ("range", last, spec.key_step, 0)},)


def _flags_reply(flags: Flags) -> Set:
    return Set([SimpleString(f) for f in flags])


def _begin_search_reply(bs: tuple) -> Map:
    if bs[0] == "index":
        return Map([("type", "index"), ("spec", Map([("index", bs[1])]))])
    if bs[0] == "keyword":
        return Map([("type", "keyword"), ("spec", Map([("keyword", bs[1]), ("startfrom", bs[2])]))])
    return Map([("type", "unknown"), ("spec", Map([]))])


def _find_keys_reply(fk: tuple) -> Map:
    if fk[0] == "range":
        return Map([("type", "range"), ("spec", Map([("lastkey", fk[1]), ("keystep", fk[2]), ("limit", fk[3])]))])
    if fk[0] == "keynum":
        return Map([("type", "keynum"), ("spec", Map([("keynumidx", fk[1]), ("firstkey", fk[2]), ("keystep", fk[3])]))])
    return Map([("type", "unknown"), ("spec", Map([]))])


def key_specs_reply(spec: CommandSpec) -> Set:
    """COMMAND INFO's 9th element: fields in Redis's order, notes first."""
    out = []
    for ks in key_specs(spec):
        fields = [("notes", ks["notes"])] if "notes" in ks else []
        fields += [
            ("flags", _flags_reply(ks["flags"])),
            ("begin_search", _begin_search_reply(ks["begin_search"])),
            ("find_keys", _find_keys_reply(ks["find_keys"])),
        ]
        out.append(Map(fields))
    return Set(out)


# -- argument parsing as Redis's C helpers do it ----------------------------------------------
_STRICT_INT = re.compile(rb"-?[1-9][0-9]*|0")
_ATOI = re.compile(rb"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def _cstr(arg: bytes) -> bytes:
    """What a C string comparison sees of an argument: up to its first NUL."""
    return arg.split(b"\0", 1)[0]


def _is(arg: bytes, word: bytes) -> bool:
    """strcasecmp(arg, word) == 0."""
    return _cstr(arg).lower() == word


def _strict_int(arg: bytes) -> int | None:
    """string2ll: no sign but '-', no leading zeros, no spaces, 64-bit."""
    if len(arg) >= 21 or not _STRICT_INT.fullmatch(arg):
        return None
    n = int(arg)
    return n if -(2**63) <= n < 2**63 else None


def _c_int(n: int) -> int:
    """A C (int) cast: the low 32 bits, signed."""
    return (n + 2**31) % 2**32 - 2**31


def _atoi(arg: bytes) -> int:
    """atoi as glibc does it: strtol's clamped long, cast to int."""
    m = _ATOI.match(arg)
    if not m:
        return 0
    return _c_int(max(-(2**63), min(2**63 - 1, int(m.group(1)))))


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


# -- keys from the key specs --------------------------------------------------------------------
class _Invalid(Exception):
    """A spec that cannot be applied to these arguments: Redis gives up on the specs."""


def _first_key(bs: tuple, argv: list[bytes]) -> int:
    """The index the keys start at, 0 when a keyword is absent (the spec is skipped)."""
    argc = len(argv)
    if bs[0] == "index":
        return bs[1]
    if bs[0] != "keyword":
        raise _Invalid
    keyword, startfrom = bs[1].encode().lower(), bs[2]
    # Forward from startfrom up to (not including) the last argument, or
    # backward from argc+startfrom down to (not including) argv[1].
    start = startfrom if startfrom > 0 else argc + startfrom
    end = argc - 1 if startfrom > 0 else 1
    i = start
    while i != end:
        if i >= argc or i < 1:
            break
        if _is(argv[i], keyword):
            return i + 1
        i = i + 1 if start <= end else i - 1
    return 0


def _spec_range(fk: tuple, first: int, argv: list[bytes]) -> tuple[int, int, int]:
    """(first, last, step): the indexes of the keys that start at ``first``."""
    argc = len(argv)
    if fk[0] == "range":
        lastkey, step, limit = fk[1], fk[2], fk[3]
        if lastkey >= 0:
            return first, first + lastkey, step
        if not limit:
            return first, argc + lastkey, step
        return first, first + (_cdiv(argc - first, limit) + lastkey), step
    if fk[0] == "keynum":
        keynumidx, firstkey, step = fk[1], fk[2], fk[3]
        if keynumidx >= argc or first + keynumidx >= argc:  # (Redis checks only the first: no
            raise _Invalid  # command of 7.0 can get past it with numkeys beyond the end)
        numkeys = _strict_int(argv[first + keynumidx])
        if numkeys is None or numkeys < 0:
            raise _Invalid
        return first + firstkey, first + firstkey + _c_int(numkeys) - 1, step
    raise _Invalid


def keys_from_specs(specs: tuple[dict, ...], argv: list[bytes]) -> KeyRefs | None:
    """Each spec's keys in turn; None when a spec cannot be applied."""
    argc = len(argv)
    out: KeyRefs = []
    try:
        for ks in specs:
            if "not_key" in ks["flags"]:
                continue
            first = _first_key(ks["begin_search"], argv)
            if not first:
                continue
            first, last, step = _spec_range(ks["find_keys"], first, argv)
            if last >= argc or last < first or first >= argc:
                raise _Invalid
            out += [(i, ks["flags"]) for i in range(first, last + 1, step)]
            if "incomplete" in ks["flags"]:
                raise _Invalid
    except _Invalid:
        return None
    return out


# -- keys from the commands' own key finders (Redis's get_keys_function) -------------------------
_NONE: Flags = ()
_RO = ("RO", "access")
_RW = ("RW", "access", "update")
_OW = ("OW", "update")


def _numkeys(store: int, count: int, first: int, step: int = 1) -> Callable[[list[bytes]], KeyRefs]:
    """Keys after a numkeys argument at ``count`` (and a destination at ``store``,
    listed last), with no flags: commands whose specs say it all."""

    def find(argv: list[bytes]) -> KeyRefs:
        n = _atoi(argv[count]) if count < len(argv) else 0
        if n < 1 or n > _cdiv(len(argv) - first, step):
            return []
        refs = [(first + i * step, _NONE) for i in range(n)]
        return refs + [(store, _NONE)] if store else refs

    return find


def _sort_keys(argv: list[bytes]) -> KeyRefs:
    """The sorted key, and the last STORE's destination (LIMIT, GET and BY take arguments)."""
    refs, store = [(1, _RO)], None
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    i = 2
    while i < len(argv):
        word = _cstr(argv[i]).lower()
        if word in skip:
            i += skip[word]
        elif word == b"store" and i + 1 < len(argv):
            store = (i + 1, _OW)
        i += 1
    return refs + [store] if store else refs


def _migrate_keys(argv: list[bytes]) -> KeyRefs:
    first, num = 3, 1
    skip = {b"copy": 0, b"replace": 0, b"auth": 1, b"auth2": 2}
    i = 6
    while i < len(argv):
        word = _cstr(argv[i]).lower()
        if word == b"keys":
            if argv[3]:
                num = 0  # a key and KEYS both: a syntax error, left to MIGRATE
            else:
                first, num = i + 1, len(argv) - i - 1
            break
        i += skip.get(word, 0) + 1
    return [(first + i, ("RW", "access", "delete")) for i in range(num)]


def _georadius_keys(argv: list[bytes]) -> KeyRefs:
    store, i = None, 5
    while i < len(argv):
        if (_is(argv[i], b"store") or _is(argv[i], b"storedist")) and i + 1 < len(argv):
            store = i + 1  # the last one wins, as GEORADIUS does
            i += 1
        i += 1
    return [(1, _NONE)] + ([(store, _NONE)] if store else [])


def _xread_keys(argv: list[bytes]) -> KeyRefs:
    streams, i = None, 1
    skip = {b"block": 1, b"count": 1, b"group": 2, b"noack": 0}
    while i < len(argv):
        word = _cstr(argv[i]).lower()
        if word == b"streams":
            streams = i
            break
        if word not in skip:
            break
        i += skip[word] + 1
    num = len(argv) - streams - 1 if streams is not None else 0
    if not num or num % 2:
        return []
    return [(i, _NONE) for i in range(streams + 1, streams + 1 + num // 2)]


def _set_keys(argv: list[bytes]) -> KeyRefs:
    get = any(_is(a, b"get") for a in argv[3:])
    return [(1, _RW if get else _OW)]


def _bitfield_keys(argv: list[bytes]) -> KeyRefs:
    readonly, i = True, 2
    while i < len(argv):
        left = len(argv) - i - 1
        if _is(argv[i], b"get") and left >= 2:
            i += 3
        elif (_is(argv[i], b"set") or _is(argv[i], b"incrby")) and left >= 3:
            readonly = False
            break
        elif _is(argv[i], b"overflow") and left >= 1:
            i += 2
        else:
            readonly = False  # a syntax error: not known to be read-only
            break
    return [(1, _RO if readonly else _RW)]


GETKEYS_FINDERS: dict[str, Callable[[list[bytes]], KeyRefs]] = {
    "sintercardGetKeys": _numkeys(0, 1, 2),
    "zunionInterDiffGetKeys": _numkeys(0, 1, 2),
    "zunionInterDiffStoreGetKeys": _numkeys(1, 2, 3),
    "evalGetKeys": _numkeys(0, 2, 3),
    "functionGetKeys": _numkeys(0, 2, 3),
    "lmpopGetKeys": _numkeys(0, 1, 2),
    "blmpopGetKeys": _numkeys(0, 2, 3),
    "zmpopGetKeys": _numkeys(0, 1, 2),
    "bzmpopGetKeys": _numkeys(0, 2, 3),
    "sortROGetKeys": lambda argv: [(1, _RO)],
    "sortGetKeys": _sort_keys,
    "migrateGetKeys": _migrate_keys,
    "georadiusGetKeys": _georadius_keys,
    "xreadGetKeys": _xread_keys,
    "setGetKeys": _set_keys,
    "bitfieldGetKeys": _bitfield_keys,
}
assert set(GETKEYS_FUNCTIONS.values()) <= set(GETKEYS_FINDERS), "a Redis key finder not re-done here"


def has_keys(spec: CommandSpec) -> bool:
    """Can the command have key arguments at all (Redis's doesCommandHaveKeys)?"""
    if spec.name not in KEY_SPECS:
        return bool(spec.first_key or spec.key_finder)
    return spec.name in GETKEYS_FUNCTIONS or any("not_key" not in ks["flags"] for ks in KEY_SPECS[spec.name])


def key_refs(spec: CommandSpec, argv: list[bytes]) -> KeyRefs:
    """The keys of one invocation as Redis finds them: (index, flags) pairs.
    Not for a command Redis lacks (see ``getkeys``)."""
    specs = KEY_SPECS[spec.name]
    usable = any("not_key" not in ks["flags"] for ks in specs)
    variable = any("variable_flags" in ks["flags"] for ks in specs)
    if usable and not variable:
        refs = keys_from_specs(specs, argv)
        if refs is not None:
            return refs
    finder = GETKEYS_FUNCTIONS.get(spec.name)
    return GETKEYS_FINDERS[finder](argv) if finder else []


def getkeys(argv: list[bytes]) -> list[tuple[bytes, Flags]]:
    """COMMAND GETKEYS / GETKEYSANDFLAGS: argv is the full command asked about."""
    spec = resolve(TABLE, argv)
    if spec is None:
        raise CommandError("ERR Invalid command specified")
    if not has_keys(spec):
        raise CommandError("ERR The command has no key arguments")
    if not spec.arity_ok(len(argv)):
        raise CommandError("ERR Invalid number of arguments specified for command")
    if spec.name in KEY_SPECS:
        found = [(argv[i], flags) for i, flags in key_refs(spec, argv)]
    else:  # our own command: the table's keys, the guessed flags
        flags = key_specs(spec)[0]["flags"] if spec.first_key else ("RW", "update")
        found = [(key, flags) for key in spec.keys(argv)]
    if not found and "no_mandatory_keys" not in spec.flags:
        raise CommandError("ERR Invalid arguments specified for command")
    return found


def getkeys_reply(argv: list[bytes], with_flags: bool) -> list:
    found = getkeys(argv)
    if not with_flags:
        return [key for key, _ in found]
    return [[key, _flags_reply(flags)] for key, flags in found]
