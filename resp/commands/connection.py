"""Connection and transaction commands: they change only the session's state.

PING ECHO HELLO AUTH SELECT QUIT RESET CLIENT ..., MULTI EXEC DISCARD WATCH
UNWATCH. Handlers take the Session (not a key context).
"""

from __future__ import annotations

import hmac

from typing import Any

from makod.kv import errors
from makod.kv.args import parse_int
from makod.kv.dbs import db_index
from makod.kv.errors import CommandError
from resp.replies import OK, PONG, Map, SimpleString, Verbatim
from makod.kv.table import command, container, subcommand

REDIS_COMPAT_VERSION = "7.2.0"


def _int(arg: bytes) -> int:
    try:
        if arg != arg.strip() or arg[:1] == b"+":
            raise ValueError
        return int(arg)
    except ValueError:
        raise CommandError(errors.NOT_INTEGER) from None


# -- connection --------------------------------------------------------------------------
@command("ping", -1, "fast", scope="session", group="connection", summary="Returns the server's liveliness response.")
def ping(session: Any, argv: list[bytes]) -> Any:
    if len(argv) > 2:
        raise CommandError(errors.wrong_arity("ping"))
    if session.proto == 2 and session.pubsub.active:  # subscribed mode: Redis answers a pub/sub shaped reply
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return argv[1] if len(argv) == 2 else PONG


@command("echo", 2, "fast", scope="session", group="connection", summary="Returns the given string.")
def echo(session: Any, argv: list[bytes]) -> Any:
    return argv[1]


@command(
    "hello",
    -1,
    "noscript loading stale fast no_auth allow_busy",
    scope="session",
    group="connection",
    summary="Handshakes with the Redis server.",
    since="6.0.0",
)
def hello(session: Any, argv: list[bytes]) -> Any:
    proto = session.proto
    i = 1
    if len(argv) >= 2:
        try:
            proto = int(argv[1])
        except ValueError:
            raise CommandError(errors.PROTOCOL_VERSION_NOT_INTEGER) from None
        if proto not in (2, 3):
            raise CommandError(errors.NOPROTO)
        i = 2
    auth: tuple[bytes, bytes] | None = None
    name: bytes | None = None
    while i < len(argv):
        opt = argv[i].lower()
        more = len(argv) - i - 1
        if opt == b"auth" and more >= 2:
            auth = (argv[i + 1], argv[i + 2])
            i += 3
        elif opt == b"setname" and more >= 1:
            name = argv[i + 1]
            i += 2
        else:
            raise CommandError(f"ERR Syntax error in HELLO option '{argv[i].decode('utf-8', 'replace')}'")
    if auth is not None:
        if not _password_ok(session, auth[0], auth[1]):
            raise CommandError(errors.WRONGPASS)
        session.authenticated = True
        session.user = auth[0].decode("utf-8", "surrogateescape")
    if not session.authenticated:
        raise CommandError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
            "select the RESP protocol version at the same time"
        )
    if name is not None:
        _validate_name(name)
        session.name = name or None
    session.proto = proto
    return Map(
        [
            ("server", "redis"),
            ("version", REDIS_COMPAT_VERSION),
            ("proto", proto),
            ("id", session.id),
            ("mode", "standalone"),
            ("role", "master"),
            ("modules", []),
        ]
    )


def _password_ok(session: Any, username: bytes, password: bytes) -> bool:
    """ACL users when the host has them (constant-time comparison of password
    hashes, acl.User.check_password); else only "default" with requirepass."""
    acl = getattr(session.host, "acl", None)
    if acl is not None:
        user = acl.users.get(username.decode("utf-8", "surrogateescape"))
        ok = user is not None and user.check_password(password)
        if not ok and getattr(session.host, "acl_log", None) is not None:
            session.host.acl_log.add("auth", "toplevel", "AUTH", username.decode("utf-8", "replace"),
                                     session.describe_client())
        return ok
    required = session.host.requirepass
    if username != b"default":
        return False
    return required is None or hmac.compare_digest(password, required.encode())


def _default_has_password(session: Any) -> bool:
    acl = getattr(session.host, "acl", None)
    if acl is not None:
        user = acl.users.get("default")
        return user is not None and not user.nopass
    return session.host.requirepass is not None


@command(
    "auth",
    -2,
    "noscript loading stale fast no_auth allow_busy",
    scope="session",
    group="connection",
    summary="Authenticates the connection.",
)
def auth(session: Any, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    username = argv[1] if len(argv) == 3 else b"default"
    if len(argv) == 2 and not _default_has_password(session):
        raise CommandError(errors.AUTH_NOT_CONFIGURED)
    if not _password_ok(session, username, argv[-1]):
        raise CommandError(errors.WRONGPASS)
    session.authenticated = True
    session.user = username.decode("utf-8", "surrogateescape")
    return OK


@command("select", 2, "loading stale fast", scope="session", group="connection", summary="Changes the selected database.")
def select(session: Any, argv: list[bytes]) -> Any:
    session.db = db_index(argv[1], session.databases)
    return OK


@command(
    "quit",
    -1,
    "allow_busy noscript loading stale fast no_auth",
    scope="session",
    group="connection",
    summary="Closes the connection.",
)
def quit_(session: Any, argv: list[bytes]) -> Any:
    session.closing = True
    return OK


@command(
    "reset",
    1,
    "noscript loading stale fast no_auth allow_busy",
    scope="session",
    group="connection",
    summary="Resets the connection.",
    since="6.2.0",
)
def reset(session: Any, argv: list[bytes]) -> Any:
    session.reset()
    return SimpleString("RESET")


# -- transactions -------------------------------------------------------------------------
@command("multi", 1, "noscript loading stale fast allow_busy", scope="session", group="transactions", summary="Starts a transaction.")
def multi(session: Any, argv: list[bytes]) -> Any:
    return session.multi()


@command("exec", 1, "noscript loading stale skip_slowlog", scope="session", group="transactions", summary="Executes all commands in a transaction.")
def exec_(session: Any, argv: list[bytes]) -> Any:
    return session.exec_()


@command("discard", 1, "noscript loading stale fast allow_busy", scope="session", group="transactions", summary="Discards a transaction.")
def discard(session: Any, argv: list[bytes]) -> Any:
    return session.discard()


@command(
    "watch",
    -2,
    "noscript loading stale fast allow_busy",
    scope="session",
    keys=(1, -1, 1),
    group="transactions",
    summary="Monitors changes to keys to determine the execution of a transaction.",
    since="2.2.0",
)
def watch(session: Any, argv: list[bytes]) -> Any:
    return session.watch(argv[1:])


@command("unwatch", 1, "noscript loading stale fast allow_busy", scope="session", group="transactions", summary="Forgets about watched keys of a transaction.", since="2.2.0")
def unwatch(session: Any, argv: list[bytes]) -> Any:
    return session.unwatch()


# -- CLIENT ----------------------------------------------------------------------------------
def _validate_name(name: bytes) -> None:
    # Redis: every byte must be in '!'..'~' (src/networking.c validateClientAttr).
    if any(b < 0x21 or b > 0x7E for b in name):
        raise CommandError(errors.CLIENT_NAME_SPACES)


def client_line(session: Any, now_ms: int) -> str:
    """One CLIENT LIST line, with the fields redis-py and tools parse."""
    age_s = max(0, (now_ms - session.created_ms) // 1000)
    idle_s = max(0, (now_ms - session.last_active_ms) // 1000)
    subs = session.pubsub
    tracking = session.tracking
    flags = ("P" if subs.active else "") + ("x" if session.in_multi else "") + (
        "" if tracking is None else "t" + ("R" if tracking.broken else "") + ("B" if tracking.bcast else "")
    ) + ("e" if session.no_evict else "") or "N"
    redir = -1 if tracking is None else tracking.redirect
    multi = len(session.multi_queue) if session.in_multi else -1
    name = (session.name or b"").decode("utf-8", "replace")
    return (
        f"id={session.id} addr={session.addr} laddr={session.laddr} fd=-1 name={name} "
        f"age={age_s} idle={idle_s} flags={flags} db={session.db} sub={len(subs.channels)} psub={len(subs.patterns)} ssub={len(subs.shard)} "
        f"multi={multi} qbuf={session.buffered_input} qbuf-free=0 argv-mem=0 multi-mem=0 "
        f"rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r "
        f"cmd={session.last_command} user=default redir={redir} "
        f"resp={session.proto} lib-name={session.lib_name.decode('utf-8', 'replace')} "
        f"lib-ver={session.lib_ver.decode('utf-8', 'replace')}"
    )


def _client_id(session: Any, argv: list[bytes]) -> Any:
    return session.id


def _client_setname(session: Any, argv: list[bytes]) -> Any:
    _validate_name(argv[2])
    session.name = argv[2] or None
    return OK


def _client_getname(session: Any, argv: list[bytes]) -> Any:
    return session.name


def _client_setinfo(session: Any, argv: list[bytes]) -> Any:
    attr = argv[2].lower()
    if attr not in (b"lib-name", b"lib-ver"):
        raise CommandError(f"ERR Unrecognized option '{argv[2].decode('utf-8', 'replace')}'")
    if any(b < 0x21 or b > 0x7E for b in argv[3]):
        raise CommandError(
            f"ERR {attr.decode()} cannot contain spaces, newlines or special characters."
        )
    if attr == b"lib-name":
        session.lib_name = argv[3]
    else:
        session.lib_ver = argv[3]
    return OK


def _client_list(session: Any, argv: list[bytes]) -> Any:
    sessions = session.host.sessions()
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"type" and i + 1 < len(argv):
            kind = argv[i + 1].lower()
            if kind not in (b"normal", b"master", b"replica", b"slave", b"pubsub"):
                raise CommandError(f"ERR Unknown client type '{argv[i + 1].decode('utf-8', 'replace')}'")
            if kind == b"pubsub":
                sessions = [s for s in sessions if s.is_pubsub]
            elif kind == b"normal":
                sessions = [s for s in sessions if not s.is_pubsub]
            else:
                sessions = []
            i += 2
        elif opt == b"id" and i + 1 < len(argv):
            ids = {_int(a) for a in argv[i + 1 :]}
            sessions = [s for s in sessions if s.id in ids]
            break
        else:
            raise CommandError(errors.SYNTAX)
    now = session.host.now_ms()
    text = "".join(client_line(s, now) + "\n" for s in sessions)
    return Verbatim(text.encode())


def _client_info(session: Any, argv: list[bytes]) -> Any:
    return Verbatim((client_line(session, session.host.now_ms()) + "\n").encode())


def _client_unblock(session: Any, argv: list[bytes]) -> Any:
    """CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if that client was blocked and is now answered."""
    wanted = parse_int(argv[2])
    if wanted is None:
        raise CommandError(errors.NOT_INTEGER)
    error = False
    if len(argv) == 4:
        if argv[3].upper() == b"ERROR":
            error = True
        elif argv[3].upper() != b"TIMEOUT":
            raise CommandError(errors.UNBLOCK_REASON)
    elif len(argv) > 4:
        raise CommandError(errors.SYNTAX)
    for s in session.host.sessions():
        if s.id == wanted and s.unblock(error):
            session.host.wake([s])
            return 1
    return 0


_CONN = "noscript loading stale"
container(
    "client",
    scope="session",
    group="connection",
    summary="A container for client connection commands.",
    since="2.4.0",
    subcommands=[
        subcommand("client", "id", 2, _client_id, _CONN, scope="session", group="connection", summary="Returns the unique client ID of the connection.", since="5.0.0"),
        subcommand("client", "setname", 3, _client_setname, _CONN, scope="session", group="connection", summary="Sets the connection name.", since="2.6.9"),
        subcommand("client", "getname", 2, _client_getname, _CONN, scope="session", group="connection", summary="Returns the name of the connection.", since="2.6.9"),
        subcommand("client", "setinfo", 4, _client_setinfo, _CONN, scope="session", group="connection", summary="Sets information specific to the client or connection.", since="7.2.0"),
        subcommand("client", "list", -2, _client_list, "admin " + _CONN, scope="session", group="connection", summary="Lists open connections.", since="2.4.0", complexity="O(N)"),
        subcommand("client", "info", 2, _client_info, _CONN, scope="session", group="connection", summary="Returns information about the connection.", since="6.2.0"),
        subcommand("client", "unblock", -3, _client_unblock, "admin " + _CONN, scope="session", group="connection", summary="Unblocks a client blocked by a blocking command from a different connection.", since="5.0.0", complexity="O(log N) where N is the number of client connections"),
    ],
)

