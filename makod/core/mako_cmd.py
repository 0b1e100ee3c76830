"""MAKO: makodb's own administration commands, and MAKO CALL (stored procedures).

They live beside the cores, not in resp/, because MAKO CALL runs a stored
procedure, which is core machinery; the RESP layer only sees the table entry.
"""

from __future__ import annotations

import json
import os
import traceback
from typing import Any


from makod.codec import pack
from makod.core.context import DependencyInDoubt, KeyLocked, NeedRemote
from makod.core.procedures import PROCEDURES, Abort, ProcTxn, call_args
from makod.kv import errors
from makod.kv.errors import CommandError
from makod.core.slots_cmd import mako_slots
from makod.kv.args import parse_int
from makod.kv.replies import OK
from makod.kv.table import TABLE, container, subcommand


def _mako_status(session: Any, argv: list[bytes]) -> Any:
    return json.dumps(session.host.mako_status(), sort_keys=True)


def _mako_failover(session: Any, argv: list[bytes]) -> Any:
    target = argv[2].decode("utf-8", "replace") if len(argv) > 2 else None
    session.host.mako_failover(target)
    return OK


def _mako_prefer(session: Any, argv: list[bytes]) -> Any:
    session.host.mako_prefer(argv[2].decode("utf-8", "replace"))
    return OK


def _mako_members(session: Any, argv: list[bytes]) -> Any:
    return session.host.members_reply()


def _mako_member(session: Any, argv: list[bytes]) -> Any:
    action = argv[2].decode("utf-8", "replace").upper()
    try:
        node_id = int(argv[3])
    except ValueError:
        raise CommandError(errors.NOT_INTEGER) from None
    session.host.mako_member(action, node_id)
    return OK


def _mako_topology(session: Any, argv: list[bytes]) -> Any:
    if argv[2].upper() != b"RELOAD":
        raise CommandError(errors.SYNTAX)
    return session.host.reload_topology()


def _mako_slotmap(session: Any, argv: list[bytes]) -> Any:
    return session.host.slotmap_reply()


def _mako_route(session: Any, argv: list[bytes]) -> Any:
    values = [parse_int(a) for a in argv[2:5]]
    if any(v is None for v in values):
        raise CommandError(errors.NOT_INTEGER)
    return session.host.mako_route(*values)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _mako_call(ctx: Any, argv: list[bytes]) -> Any:
    """MAKO CALL <procedure> [<msgpack args> | JSON <json args>]: run a stored procedure as one transaction."""
    name = argv[2].decode("utf-8", "replace")
    proc = PROCEDURES.get(name)
    if proc is None:
        raise CommandError(errors.UNKNOWN_PROCEDURE.format(name))
    args = call_args(argv[3:])
    try:
        result = proc.fn(ProcTxn(ctx), args)
        if len(argv) > 3 and argv[3].upper() == b"JSON":  # asked in JSON: answered in JSON
            return json.dumps(result, default=_json_default).encode()
        return pack(result)
    except (Abort, KeyLocked, NeedRemote, DependencyInDoubt):
        raise  # the transaction machinery's own signals
    except Exception as exc:  # a bug in the procedure: fail its transaction, not the server
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f" at {os.path.basename(frame.filename)}:{frame.lineno}"
        reason = " ".join(f"{type(exc).__name__}: {exc}{where}".split())[:500]  # one line, bounded
        raise Abort(reason, errors.PROCEDURE_FAILED.format(name, reason)) from None


def _mako_procedures(session: Any, argv: list[bytes]) -> Any:
    return PROCEDURES.names()


def _mako_digest(session: Any, argv: list[bytes]) -> Any:
    return session.host.mako_digest()


def _mako_help(session: Any, argv: list[bytes]) -> Any:
    """MAKO HELP, from the command table: every subcommand and its summary."""
    subs = TABLE.lookup(b"mako").subcommands
    lines = ["MAKO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"]
    for name in sorted(subs):
        lines += [name.upper(), "    " + subs[name].summary]
    return lines


def _mako_gc(session: Any, argv: list[bytes]) -> Any:
    return json.dumps(session.host.mako_gc(), sort_keys=True)


container(
    "mako",
    scope="server",
    group="mako",
    summary="makodb cluster administration.",
    since="0.1.0",
    subcommands=[
        subcommand("mako", "status", 2, _mako_status, "admin loading stale", scope="server", group="mako", summary="This node's replication and shard status as JSON.", since="0.1.0"),
        subcommand("mako", "call", -3, _mako_call, "write no_multi movablekeys", scope="data", group="mako", summary="Runs a registered stored procedure as one transaction.", since="0.1.0", complexity="depends on the procedure"),
        subcommand("mako", "procedures", 2, _mako_procedures, "loading stale", scope="server", group="mako", summary="Lists the registered stored procedures.", since="0.1.0"),
        subcommand("mako", "digest", 2, _mako_digest, "admin loading stale", scope="server", group="mako", summary="Applied slot, key count and a hash of this replica's own state.", since="0.1.0"),
        subcommand("mako", "help", 2, _mako_help, "loading stale", scope="server", group="mako", summary="Returns helpful text about the different subcommands.", since="0.3.0"),
        subcommand("mako", "gc", 2, _mako_gc, "admin loading stale", scope="server", group="mako", summary="Runs a full pass of the cyclic garbage collector, frozen objects included, as JSON: what it found and how long it stopped the node.", since="0.3.0", complexity="O(N) in the objects in memory"),
        subcommand("mako", "prefer", 3, _mako_prefer, "admin loading stale", scope="server", group="mako", summary="Names the replica that should lead this shard when it can (or none).", since="0.1.0"),
        subcommand("mako", "members", 2, _mako_members, "admin loading stale", scope="server", group="mako", summary="This shard's membership (voters, learners, a pending change) as JSON.", since="0.2.0"),
        subcommand("mako", "member", 4, _mako_member, "admin loading stale", scope="server", group="mako", summary="Adds a replica as a learner, promotes a learner to voter, or removes a replica (at the shard's leader).", since="0.2.0"),
        subcommand("mako", "slots", -2, mako_slots, "admin write no_multi", scope="data", group="mako", summary="One step of moving slots between shards, at this shard's leader (SHOW, IMPORTING, FREEZE, EXPORT, IMPORT, OWN, DROP, UNFREEZE).", since="0.3.0", complexity="O(N) in the keys of the slots for EXPORT and DROP", durable_ack=True),
        subcommand("mako", "slotmap", 2, _mako_slotmap, "admin loading stale", scope="server", group="mako", summary="Which shard this node believes holds each slot, and its own shard's slot table, as JSON.", since="0.3.0"),
        subcommand("mako", "route", 5, _mako_route, "admin loading stale", scope="server", group="mako", summary="Tells this node that a shard now holds a range of slots (a routing hint).", since="0.3.0"),
        subcommand("mako", "topology", 3, _mako_topology, "admin loading stale", scope="server", group="mako", summary="Re-reads the replicas' addresses from the config file (RELOAD).", since="0.2.0"),
        subcommand("mako", "failover", -2, _mako_failover, "admin loading stale", scope="server", group="mako", summary="Hands this shard's leadership to another replica.", since="0.1.0"),
    ],
)
