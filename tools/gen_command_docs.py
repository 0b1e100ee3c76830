"""Generate resp/commands/command_docs_data.py from Redis's command JSON files.

Usage (from the repository root; the Redis tree as for tools/gen_key_specs.py)::

    git --git-dir=REDIS.git archive 7.0.15 src | tar -x -C /tmp/redis-7.0.15
    python tools/gen_command_docs.py /tmp/redis-7.0.15/src/commands -o resp/commands/command_docs_data.py

What COMMAND INFO and COMMAND DOCS report besides the key specs, as
redis-server derives it from the JSON when it starts (facts of Redis 7.0's
src/server.c and src/acl.c, re-stated here, no code taken):

- command flags are reported in one fixed order (``FLAG_ORDER``), some never
  (may_replicate, sentinel, only_sentinel, protected, touches_arbitrary_keys);
  ``movablekeys`` is added when the key specs are not one plain range
  (populateCommandLegacyRangeSpec), which also gives (first, last, step);
- ACL categories are the JSON's plus implicit ones from the flags (write ->
  write, readonly -> read unless scripting, admin -> admin and dangerous,
  pubsub, fast, blocking, not fast -> slow), reported in acl.c's category
  order (``CATEGORY_ORDER``);
- tips are lower-cased; argument names lower-cased, tokens upper-cased; an
  empty string field counts as absent; a subcommand takes its container's
  group; "sorted_set" is reported "sorted-set";
- commands flagged ONLY_SENTINEL do not exist outside sentinel mode.
"""

from __future__ import annotations

import json
import pathlib
import sys

# Reply order of command flags (addReplyFlagsForCommand), by JSON name ->
# reported name. Flags of the JSON that are absent here are never reported.
FLAG_ORDER = (
    ("WRITE", "write"), ("READONLY", "readonly"), ("DENYOOM", "denyoom"), ("MODULE", "module"),
    ("ADMIN", "admin"), ("PUBSUB", "pubsub"), ("NOSCRIPT", "noscript"), ("BLOCKING", "blocking"),
    ("LOADING", "loading"), ("STALE", "stale"), ("SKIP_MONITOR", "skip_monitor"),
    ("SKIP_SLOWLOG", "skip_slowlog"), ("ASKING", "asking"), ("FAST", "fast"), ("NO_AUTH", "no_auth"),
    ("NO_MANDATORY_KEYS", "no_mandatory_keys"), ("NO_ASYNC_LOADING", "no_async_loading"),
    ("NO_MULTI", "no_multi"), ("MOVABLE_KEYS", "movablekeys"), ("ALLOW_BUSY", "allow_busy"),
)
HIDDEN_FLAGS = {"MAY_REPLICATE", "SENTINEL", "ONLY_SENTINEL", "PROTECTED", "TOUCHES_ARBITRARY_KEYS"}
# ACL categories in the order Redis reports them (acl.c's ACLCommandCategories).
CATEGORY_ORDER = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog", "geo",
    "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection", "transaction", "scripting",
)
DOC_FLAG_ORDER = ("DEPRECATED", "SYSCMD")
ARG_FLAG_ORDER = ("optional", "multiple", "multiple_token")
ARG_TYPES = {"string", "integer", "double", "key", "pattern", "unix-time", "pure-token", "oneof", "block"}
GROUPS = {
    "generic", "string", "list", "set", "sorted_set", "hash", "pubsub", "transactions", "connection", "server",
    "scripting", "hyperloglog", "cluster", "sentinel", "geo", "stream", "bitmap",
}


def _opt(desc: dict, field: str) -> str | None:
    """A string field as Redis keeps it: absent or empty is no field at all."""
    return desc.get(field) or None


def legacy_range(key_specs: list[dict]) -> tuple[tuple[int, int, int], bool]:
    """(first, last, step) as COMMAND INFO reports them, and whether the key
    specs make the command ``movablekeys``: one range spec is taken whole;
    several are merged while they are plain (step 1) and consecutive."""
    specs = [(ks["begin_search"], ks["find_keys"], ks["flags"]) for ks in key_specs]
    if not specs:
        return (0, 0, 0), False
    if len(specs) == 1 and "index" in specs[0][0] and "range" in specs[0][1]:
        pos, rng = specs[0][0]["index"]["pos"], specs[0][1]["range"]
        last = rng["lastkey"] + pos if rng["lastkey"] >= 0 else rng["lastkey"]
        return (pos, last, rng["step"]), "INCOMPLETE" in specs[0][2]
    first, last, prev_last, movable = None, 0, 0, False
    for bs, fk, flags in specs:
        if "index" not in bs or "range" not in fk:
            movable = True
            continue
        pos, rng = bs["index"]["pos"], fk["range"]
        if rng["step"] != 1 or (prev_last and prev_last != pos - 1):
            movable = True
            continue
        movable |= "INCOMPLETE" in flags
        first = pos if first is None else min(first, pos)
        abs_last = rng["lastkey"] + pos if rng["lastkey"] >= 0 else rng["lastkey"]
        # Compared as unsigned in C: a negative (counted from the end) wins.
        last = max(last, abs_last, key=lambda n: n % 2**32)
        prev_last = last
    if first is None:
        return (0, 0, 0), True
    return (first, last, 1), movable


def acl_categories(cmd: dict, flags: set[str]) -> tuple[str, ...]:
    cats = {c.lower() for c in cmd.get("acl_categories", [])}
    assert cats <= set(CATEGORY_ORDER), sorted(cats - set(CATEGORY_ORDER))
    if "WRITE" in flags:
        cats.add("write")
    if "READONLY" in flags and "scripting" not in cats:
        cats.add("read")
    if "ADMIN" in flags:
        cats |= {"admin", "dangerous"}
    if "PUBSUB" in flags:
        cats.add("pubsub")
    if "FAST" in flags:
        cats.add("fast")
    if "BLOCKING" in flags:
        cats.add("blocking")
    if "fast" not in cats:
        cats.add("slow")
    return tuple("@" + c for c in CATEGORY_ORDER if c in cats)


def info_entry(cmd: dict) -> tuple:
    """(arity, flags, (first, last, step), ACL categories, tips)."""
    flags = set(cmd.get("command_flags", []))
    known = {name for name, _ in FLAG_ORDER} | HIDDEN_FLAGS
    assert flags <= known, sorted(flags - known)
    keys, movable = legacy_range(cmd.get("key_specs", []))
    if movable:
        flags.add("MOVABLE_KEYS")
    reported = tuple(name for json_name, name in FLAG_ORDER if json_name in flags)
    tips = tuple(t.lower() for t in cmd.get("command_tips", []))
    return (cmd["arity"], reported, keys, acl_categories(cmd, flags), tips)


def argument(desc: dict) -> tuple:
    """(name, type) or (name, type, {the fields present, in reply order})."""
    assert desc["type"] in ARG_TYPES, desc["type"]
    opts: dict = {}
    if "key_spec_index" in desc:
        opts["key_spec_index"] = desc["key_spec_index"]
    for field in ("token", "summary", "since"):
        if _opt(desc, field):
            opts[field] = desc[field].upper() if field == "token" else desc[field]
    if "deprecated_since" in desc:
        opts["deprecated_since"] = desc["deprecated_since"]
    flags = tuple(f for f in ARG_FLAG_ORDER if desc.get(f))
    if flags:
        opts["flags"] = flags
    if desc["type"] in ("oneof", "block"):
        opts["arguments"] = tuple(argument(sub) for sub in desc["arguments"])
    head = (desc["name"].lower(), desc["type"])
    return head + (opts,) if opts else head


def docs_entry(cmd: dict, group: str) -> dict:
    """COMMAND DOCS's fields in Redis's order, present ones only (not subcommands)."""
    assert group in GROUPS, group
    out: dict = {}
    for field in ("summary", "since"):
        if _opt(cmd, field):
            out[field] = cmd[field]
    out["group"] = group.replace("_", "-")
    if _opt(cmd, "complexity"):
        out["complexity"] = cmd["complexity"]
    doc_flags = tuple(f.lower() for f in DOC_FLAG_ORDER if f in cmd.get("doc_flags", []))
    assert len(doc_flags) == len(cmd.get("doc_flags", [])), cmd.get("doc_flags")
    if doc_flags:
        out["doc_flags"] = doc_flags
    for field in ("deprecated_since", "replaced_by"):
        if _opt(cmd, field):
            out[field] = cmd[field]
    if cmd.get("history"):
        out["history"] = tuple((since, changes) for since, changes in cmd["history"])
    if cmd.get("arguments"):
        out["arguments"] = tuple(argument(a) for a in cmd["arguments"])
    return out


def load(commands_dir: pathlib.Path) -> tuple[dict[str, tuple], dict[str, dict]]:
    raw: dict[str, dict] = {}
    files = sorted(commands_dir.glob("*.json"))
    assert files, f"no *.json in {commands_dir}"
    for path in files:
        for name, cmd in json.loads(path.read_text()).items():
            full = (f"{cmd['container']}|{name}" if cmd.get("container") else name).lower()
            assert full not in raw, f"{full} twice"
            raw[full] = cmd
    info: dict[str, tuple] = {}
    docs: dict[str, dict] = {}
    for full, cmd in sorted(raw.items()):
        container = raw.get(full.split("|")[0]) if "|" in full else None
        if "|" in full and container is None:
            continue  # a subcommand without its container
        if "ONLY_SENTINEL" in cmd.get("command_flags", []) + (container or {}).get("command_flags", []):
            continue  # exists only in sentinel mode
        info[full] = info_entry(cmd)
        docs[full] = docs_entry(cmd, (container or cmd)["group"])
    return info, docs


def _render_args(args: tuple, indent: str) -> list[str]:
    lines = []
    for arg in args:
        opts = arg[2] if len(arg) > 2 else {}
        if "arguments" not in opts:
            lines.append(f"{indent}{arg!r},")
            continue
        head = {k: v for k, v in opts.items() if k != "arguments"}
        lines.append(f"{indent}({arg[0]!r}, {arg[1]!r}, {{" + "".join(f"{k!r}: {v!r}, " for k, v in head.items()) + "'arguments': (")
        lines += _render_args(opts["arguments"], indent + "    ")
        lines.append(f"{indent})}}),")
    return lines


def render(info: dict[str, tuple], docs: dict[str, dict], version: str) -> str:
    lines = [
        f'"""COMMAND INFO and COMMAND DOCS facts of every Redis {version} command (key specs aside).',
        "",
        "GENERATED by tools/gen_command_docs.py from Redis's src/commands/*.json: do not edit.",
        "Regenerate with (REDIS.git: a clone or mirror of github.com/redis/redis):",
        "",
        f"    git --git-dir=REDIS.git archive {version} src | tar -x -C /tmp/redis-{version}",
        f"    python tools/gen_command_docs.py /tmp/redis-{version}/src/commands -o resp/commands/command_docs_data.py",
        "",
        'INFO: command name (lower case, subcommands "container|sub") -> (arity, flags,',
        "(first, last, step), ACL categories, tips), flags and categories in the order",
        "Redis replies with them. Commands of sentinel mode only are left out.",
        "",
        "DOCS: command name -> its COMMAND DOCS fields in Redis's order, present ones",
        "only, subcommands aside. An argument is (name, type) or (name, type, {its",
        "fields in reply order: key_spec_index, token, summary, since, deprecated_since,",
        "flags, arguments}).",
        '"""',
        "",
        f'REDIS_VERSION = "{version}"',
        "",
        "# fmt: off",
        "INFO: dict[str, tuple] = {",
    ]
    lines += [f"    {name!r}: {entry!r}," for name, entry in info.items()]
    lines += ["}", "", "DOCS: dict[str, dict] = {"]
    for name, entry in docs.items():
        lines.append(f"    {name!r}: {{")
        for field, value in entry.items():
            if field == "arguments":
                lines.append("        'arguments': (")
                lines += _render_args(value, "            ")
                lines.append("        ),")
            else:
                lines.append(f"        {field!r}: {value!r},")
        lines.append("    },")
    lines += ["}", "# fmt: on", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from gen_key_specs import run  # the same command line and version lookup

    return run(__doc__.split("\n", 1)[0], load, render, argv)


if __name__ == "__main__":
    sys.exit(main())
