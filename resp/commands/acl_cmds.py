"""ACL: users, permissions and the denial log (Redis 6+), over the host's resp.acl.Acl.

Changes (SETUSER, DELUSER, LOAD) go through ``host.acl_changed()``, which
persists the table and sends it to every node of the cluster.
"""

from __future__ import annotations

import os
from typing import Any

from makod.kv import errors
from resp.acl import CATEGORIES, AclError, categories_of
from makod.kv.errors import CommandError
from resp.replies import OK, Map, SimpleString
from makod.kv.table import TABLE, container, subcommand

_ADMIN = "admin noscript loading stale"


def _acl(session: Any):
    acl = getattr(session.host, "acl", None)
    if acl is None:
        raise CommandError("ERR ACL is not available on this node")
    return acl


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _setuser(session: Any, argv: list[bytes]) -> Any:
    acl = _acl(session)
    name = _text(argv[2])
    rules = [_text(a) for a in argv[3:]]
    try:
        acl.build(name, rules, acl.users.get(name))  # all or nothing: check first
    except AclError as exc:
        bad = next((r for r in rules if _fails(acl, name, r)), rules[-1] if rules else "")
        raise CommandError(errors.ACL_SETUSER.format(bad, exc.text)) from None
    acl.setuser(name, rules)
    session.host.acl_changed()
    return OK


def _fails(acl: Any, name: str, rule: str) -> bool:
    try:
        acl.build(name, [rule], acl.users.get(name))
    except AclError:
        return True
    return False


def _deluser(session: Any, argv: list[bytes]) -> Any:
    acl = _acl(session)
    names = [_text(a) for a in argv[2:]]
    if "default" in names:
        raise CommandError(errors.ACL_DEFAULT_NOT_REMOVABLE)
    removed = sum(1 for n in names if acl.deluser(n))
    if removed:
        session.host.acl_changed()
    return removed


def _getuser(session: Any, argv: list[bytes]) -> Any:
    acl = _acl(session)
    user = acl.users.get(_text(argv[2]))
    if user is None:
        return None
    flags = ["on" if user.enabled else "off"] + (["nopass"] if user.nopass else [])
    return Map([
        (b"flags", [SimpleString(f) for f in flags]),
        (b"passwords", [h.encode() for h in user.passwords]),
        (b"commands", acl.commands_text(user).encode()),
        (b"keys", acl.keys_text(user).encode()),
        (b"channels", acl.channels_text(user).encode()),
        (b"selectors", []),
    ])


def _list(session: Any, argv: list[bytes]) -> Any:
    return [line.encode() for line in _acl(session).dump()]


def _users(session: Any, argv: list[bytes]) -> Any:
    return [name.encode() for name in sorted(_acl(session).users)]


def _whoami(session: Any, argv: list[bytes]) -> Any:
    return session.user.encode("utf-8", "surrogateescape")


def _all_specs() -> list:
    return [s for spec in TABLE for s in [spec, *spec.subcommands.values()]]


def _cat(session: Any, argv: list[bytes]) -> Any:
    if len(argv) == 2:
        return [c.encode() for c in CATEGORIES]
    cat = _text(argv[2]).lower()
    if cat not in CATEGORIES:
        raise CommandError(errors.ACL_UNKNOWN_CATEGORY.format(_text(argv[2])))
    return sorted(s.name.encode() for s in _all_specs() if cat in categories_of(s))


def _genpass(session: Any, argv: list[bytes]) -> Any:
    bits = 256
    if len(argv) == 3:
        try:
            bits = int(argv[2])
        except ValueError:
            raise CommandError(errors.ACL_GENPASS_BITS) from None
        if not 0 < bits <= 4096:
            raise CommandError(errors.ACL_GENPASS_BITS)
    chars = (bits + 3) // 4
    return os.urandom((chars + 1) // 2).hex()[:chars].encode()


def _log(session: Any, argv: list[bytes]) -> Any:
    log = session.host.acl_log
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            log.reset()
            return OK
        try:
            count = int(argv[2])
        except ValueError:
            raise CommandError(errors.NOT_INTEGER) from None
        if count < 0:
            raise CommandError(errors.NOT_INTEGER)
    else:
        count = 10
    now = session.host.now_ms()
    out = []
    for entry in log.entries[:count]:
        out.append(Map([
            (b"count", entry["count"]),
            (b"reason", entry["reason"].encode()),
            (b"context", entry["context"].encode()),
            (b"object", entry["object"].encode()),
            (b"username", entry["username"].encode()),
            (b"age-seconds", str(round((now - entry["timestamp-created"]) / 1000, 3)).encode()),
            (b"client-info", entry["client-info"].encode()),
            (b"entry-id", entry["entry-id"]),
            (b"timestamp-created", entry["timestamp-created"]),
            (b"timestamp-last-updated", entry["timestamp-last-updated"]),
        ]))
    return out


def _dryrun(session: Any, argv: list[bytes]) -> Any:
    acl = _acl(session)
    name = _text(argv[2])
    user = acl.users.get(name)
    if user is None:
        raise CommandError(errors.ACL_USER_NOT_FOUND.format(name))
    args = argv[3:]
    spec = TABLE.lookup(args[0])
    if spec is not None and spec.subcommands and len(args) >= 2:
        spec = spec.subcommands.get(_text(args[1]).lower(), spec)
    if spec is None:
        raise CommandError(errors.ACL_COMMAND_NOT_FOUND.format(_text(args[0])))
    if not spec.arity_ok(len(args)):
        raise CommandError(errors.wrong_arity(spec.name))
    if not acl.command_ok(user, spec):
        return f"User {name} has no permissions to run the '{spec.name}' command".encode()
    for key in spec.keys(args):
        if not acl.key_ok(user, key, write=spec.is_write, read=not spec.is_write):
            return f"User {name} has no permissions to access the '{_text(key)}' key".encode()
    return OK


def _save(session: Any, argv: list[bytes]) -> Any:
    path = getattr(session.host, "aclfile", None)
    if not path:
        raise CommandError(errors.ACL_NO_FILE)
    session.host.acl_save()
    return OK


def _load(session: Any, argv: list[bytes]) -> Any:
    path = getattr(session.host, "aclfile", None)
    if not path:
        raise CommandError(errors.ACL_NO_FILE)
    try:
        session.host.acl_load()
    except (AclError, OSError) as exc:
        raise CommandError(f"ERR /{path}: {getattr(exc, 'text', exc)}") from None
    return OK


_SUBS = [
    ("setuser", -3, _setuser, "Creates and modifies an ACL user and its rules."),
    ("deluser", -3, _deluser, "Deletes ACL users, and terminates their connections."),
    ("getuser", 3, _getuser, "Lists the ACL rules of a user."),
    ("list", 2, _list, "Dumps the effective rules in ACL file format."),
    ("users", 2, _users, "Lists all ACL users."),
    ("whoami", 2, _whoami, "Returns the authenticated username of the current connection."),
    ("cat", -2, _cat, "Lists the ACL categories, or the commands inside a category."),
    ("genpass", -2, _genpass, "Generates a pseudorandom, secure password that can be used to identify ACL users."),
    ("log", -2, _log, "Lists recent security events generated due to ACL rules."),
    ("dryrun", -4, _dryrun, "Simulates the execution of a command by a user, without executing the command."),
    ("save", 2, _save, "Saves the effective ACL rules in the configured ACL file."),
    ("load", 2, _load, "Reloads the rules from the configured ACL file."),
]

container(
    "acl",
    scope="server",
    group="server",
    summary="A container for Access List Control commands.",
    since="6.0.0",
    subcommands=[
        subcommand("acl", name, arity, handler,
                   "noscript loading stale" + ("" if name in ("whoami", "cat", "genpass") else " admin"),
                   scope="server", group="server", summary=summary, since="6.0.0")
        for name, arity, handler, summary in _SUBS
    ],
)
