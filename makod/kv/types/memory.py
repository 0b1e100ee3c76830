"""MEMORY USAGE and MEMORY HELP: what a key costs.

makodb's values are Python objects, not Redis's encodings, so the figure
is an estimate of the same kind Redis gives: the key, the value as it is
stored (its checkpoint form), and a fixed overhead per key. It grows with
the value as Redis's does; it is not the process's bytes.
"""

from __future__ import annotations

import msgpack

from makod.kv import errors
from makod.kv.args import int_arg, is_opt
from makod.kv.errors import CommandError
from makod.kv.records import VALUE_TYPES
from makod.kv.replies import SimpleString
from makod.kv.table import container, subcommand

# Per key: a record object and its slot in the keyspace's dict (Redis
# counts its dictEntry and robj the same way, about 50 bytes).
KEY_OVERHEAD_BYTES = 48


def _memory_usage(ctx, args):
    if len(args) not in (3, 5):
        raise CommandError(errors.SYNTAX)
    if len(args) == 5:
        if not is_opt(args[3], b"SAMPLES"):
            raise CommandError(errors.SYNTAX)
        int_arg(args[4])  # every element is counted: SAMPLES only has to be a number
    rec = ctx.get(args[2])
    if rec is None:
        return None
    wire = VALUE_TYPES[rec.kind].to_wire(rec.value)
    return KEY_OVERHEAD_BYTES + len(args[2]) + len(msgpack.packb(wire, use_bin_type=True, default=_default))


def _default(obj):
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    return str(obj)


def _memory_help(ctx, args):
    return [SimpleString(line) for line in [
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help.",
    ]]


container(
    "memory",
    scope="data",
    group="server",
    summary="A container for memory diagnostics commands.",
    since="4.0.0",
    subcommands=[
        subcommand("memory", "usage", -3, _memory_usage, "readonly", scope="data", group="server", summary="Estimates the memory usage of a key.", since="4.0.0", complexity="O(N) where N is the number of samples.", keys=(2, 2, 1)),
        subcommand("memory", "help", 2, _memory_help, "loading stale", scope="data", group="server", summary="Returns helpful text about the different subcommands.", since="4.0.0"),
    ],
)
