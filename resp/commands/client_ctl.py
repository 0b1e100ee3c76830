"""CLIENT subcommands that control connections: KILL with filters, PAUSE and
UNPAUSE, REPLY, NO-EVICT, NO-TOUCH, the tracking queries, and HELP as Redis
7 writes it. (ID, SETNAME, LIST, INFO, UNBLOCK... are in connection.py.)

Per node, as in Redis Cluster: CLIENT PAUSE holds this node's clients, KILL
and UNBLOCK see this node's connections.

CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO drive client-side
caching (resp/tracking.py): a client tracks keys through the node it is
connected to, and hears of changes made through any node.
"""

from __future__ import annotations

from typing import Any

from makod.kv import errors
from makod.kv.args import parse_int
from makod.kv.errors import CommandError
from makod.kv.table import TABLE, subcommand
from resp import tracking
from resp.replies import OK, Map, Set, SimpleString

_CONN = "noscript loading stale"
CACHING_NOT_TRACKING = ("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or "
                        "OPTOUT mode enabled")


def _client_type(s: Any) -> str:
    return "pubsub" if s.is_pubsub else "normal"


def client_kill(session: Any, argv: list[bytes]) -> Any:
    sessions = session.host.sessions()
    if len(argv) == 3:  # the old form: KILL ip:port
        target = argv[2].decode("utf-8", "replace")
        victims = [s for s in sessions if s.addr == target]
        if not victims:
            raise CommandError("ERR No such client")
        _kill(session, victims)
        return OK
    if len(argv) % 2:
        raise CommandError(errors.SYNTAX)
    victims = list(sessions)
    skipme = True  # Redis: the new form spares the caller unless SKIPME no
    now_ms = session.host.now_ms()
    for i in range(2, len(argv), 2):
        opt, value = argv[i].lower(), argv[i + 1]
        text = value.decode("utf-8", "replace")
        if opt == b"id":
            wanted = parse_int(value)
            if wanted is None or wanted <= 0:
                raise CommandError("ERR client-id should be greater than 0")
            victims = [s for s in victims if s.id == wanted]
        elif opt == b"addr":
            victims = [s for s in victims if s.addr == text]
        elif opt == b"laddr":
            victims = [s for s in victims if s.laddr == text]
        elif opt == b"type":
            kind = text.lower()
            if kind == "slave":
                kind = "replica"
            if kind not in ("normal", "master", "replica", "pubsub"):
                raise CommandError(f"ERR Unknown client type '{text}'")
            victims = [s for s in victims if _client_type(s) == kind]
        elif opt == b"user":
            acl = getattr(session.host, "acl", None)
            if acl is not None and text not in acl.users:
                raise CommandError(f"ERR No such user '{text}'")
            victims = [s for s in victims if s.user == text]
        elif opt == b"skipme":
            if value.lower() == b"yes":
                skipme = True
            elif value.lower() == b"no":
                skipme = False
            else:
                raise CommandError(errors.SYNTAX)
        elif opt == b"maxage":
            age = parse_int(value)
            if age is None:
                raise CommandError(errors.SYNTAX)
            victims = [s for s in victims if (now_ms - s.created_ms) // 1000 >= age]
        else:
            raise CommandError(errors.SYNTAX)
    if skipme:
        victims = [s for s in victims if s is not session]
    _kill(session, victims)
    return len(victims)


def _kill(session: Any, victims: list) -> None:
    for s in victims:
        s.closing = True
    session.host.wake(victims)


def _client_pause(session: Any, argv: list[bytes]) -> Any:
    timeout = parse_int(argv[2])
    if timeout is None:
        raise CommandError("ERR timeout is not an integer or out of range")
    if timeout < 0:
        raise CommandError("ERR timeout is negative")
    mode = "all"
    if len(argv) == 4:
        mode = argv[3].decode("utf-8", "replace").lower()
        if mode not in ("all", "write"):
            raise CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
    elif len(argv) > 4:
        raise CommandError(errors.SYNTAX)
    session.host.client_pause = [session.host.now_ms() + timeout, mode]
    return OK


def _client_unpause(session: Any, argv: list[bytes]) -> Any:
    session.host.client_pause = None
    held = [s for s in session.host.sessions() if s._pause_wait and s is not session]
    for s in held:
        s._end_pause_wait()
    session.host.wake(held)
    return OK


def _client_reply(session: Any, argv: list[bytes]) -> Any:
    mode = argv[2].lower()
    if mode == b"on":
        session.reply_mode = "on"
        session._quiet = False  # ON is answered, though replies were off when it came
        return OK
    if mode in (b"off", b"skip"):
        session.reply_mode = mode.decode()
        session._quiet = True  # as in Redis, OFF and SKIP answer nothing themselves
        return OK
    raise CommandError(errors.SYNTAX)


def _on_off_flag(attr: str):
    def handler(session: Any, argv: list[bytes]) -> Any:
        value = argv[2].lower()
        if value not in (b"on", b"off"):
            raise CommandError(errors.SYNTAX)
        setattr(session, attr, value == b"on")
        return OK
    return handler


def _client_tracking(session: Any, argv: list[bytes]) -> Any:
    table = session.host.tracking
    state = tracking.parse_tracking(argv, session.tracking, lambda cid: table.find_session(cid) is not None)
    if state is None:
        table.disable(session)
    else:
        table.enable(session, state)
    return OK


def _client_caching(session: Any, argv: list[bytes]) -> Any:
    state = session.tracking
    if state is None:
        raise CommandError(CACHING_NOT_TRACKING)
    opt = argv[2].lower()
    if opt == b"yes":
        if not state.optin:
            raise CommandError("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
    elif opt == b"no":
        if not state.optout:
            raise CommandError("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
    else:
        raise CommandError(errors.SYNTAX)
    state.caching = True
    return OK


def _client_getredir(session: Any, argv: list[bytes]) -> Any:
    return -1 if session.tracking is None else session.tracking.redirect


def _client_trackinginfo(session: Any, argv: list[bytes]) -> Any:
    state = session.tracking
    if state is None:
        return Map([("flags", Set(["off"])), ("redirect", -1), ("prefixes", [])])
    return Map([("flags", Set(state.flags())), ("redirect", state.redirect), ("prefixes", sorted(state.prefixes))])


def client_help(session: Any, argv: list[bytes]) -> Any:
    return [SimpleString(line) for line in HELP_LINES]


HELP_LINES = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
]


_ADMIN = "admin " + _CONN
_client = TABLE.lookup(b"client")
for _spec in (
    subcommand("client", "kill", -3, client_kill, _ADMIN, scope="session", group="connection", summary="Terminates open connections.", since="2.4.0", complexity="O(N)"),
    subcommand("client", "pause", -3, _client_pause, _ADMIN, scope="session", group="connection", summary="Suspends commands processing.", since="3.0.0"),
    subcommand("client", "unpause", 2, _client_unpause, _ADMIN, scope="session", group="connection", summary="Resumes processing commands from paused clients.", since="6.2.0", complexity="O(N)"),
    subcommand("client", "reply", 3, _client_reply, _CONN, scope="session", group="connection", summary="Instructs the server whether to reply to commands.", since="3.2.0"),
    subcommand("client", "no-evict", 3, _on_off_flag("no_evict"), _ADMIN, scope="session", group="connection", summary="Sets the client eviction mode of the connection.", since="7.0.0"),
    subcommand("client", "no-touch", 3, _on_off_flag("no_touch"), _CONN, scope="session", group="connection", summary="Controls whether commands sent by the client affect the LRU/LFU of accessed keys.", since="7.2.0"),
    subcommand("client", "tracking", -3, _client_tracking, _CONN, scope="session", group="connection", summary="Controls server-assisted client-side caching for the connection.", since="6.0.0"),
    subcommand("client", "caching", 3, _client_caching, _CONN, scope="session", group="connection", summary="Instructs the server whether to track the keys in the next request.", since="6.0.0"),
    subcommand("client", "getredir", 2, _client_getredir, _CONN, scope="session", group="connection", summary="Returns the client ID to which the connection's tracking notifications are redirected.", since="6.0.0"),
    subcommand("client", "trackinginfo", 2, _client_trackinginfo, _CONN, scope="session", group="connection", summary="Returns information about server-assisted client-side caching for the connection.", since="6.2.0"),
    subcommand("client", "help", 2, client_help, "loading stale", scope="session", group="connection", summary="Returns helpful text about the different subcommands.", since="5.0.0"),
):
    _client.subcommands[_spec.name.split("|", 1)[1]] = _spec

# Commands CLIENT PAUSE WRITE holds besides writes (Redis: they may replicate).
MAY_REPLICATE = frozenset({"eval", "evalsha", "fcall", "publish", "spublish", "pfcount", "exec"})


def paused(session: Any, argv: list[bytes]) -> int:
    """Milliseconds this client's next command must wait (0: run it now)."""
    pause = getattr(session.host, "client_pause", None)
    if not pause:
        return 0
    left = pause[0] - session.host.now_ms()
    if left <= 0:
        session.host.client_pause = None
        return 0
    if pause[1] == "write":
        spec = session.table.lookup(argv[0]) if argv else None
        if spec is None or not (spec.is_write or spec.name in MAY_REPLICATE):
            return 0
    return left

