"""Server-scope commands: INFO, CONFIG, TIME, COMMAND, and makodb's own MAKO.

They answer from the node (the session's host), not from the keyspace.
COMMAND lists the command table itself, so it can never disagree with what
the server actually accepts (names, arities, subcommands); what it reports
of a command Redis has is otherwise Redis 7.0's own: flags, ACL categories,
tips, key specs, DOCS (resp/commands/command_meta.py), and GETKEYS /
GETKEYSANDFLAGS (resp/commands/command_keys.py).
"""

from __future__ import annotations

from typing import Any

from makod.kv import errors
from makod.kv.errors import CommandError
from makod.kv.table import TABLE, CommandSpec, command, container, subcommand
from resp.commands.command_keys import getkeys_reply
from resp.commands.command_meta import command_docs, command_info
from resp.replies import OK, Map, SimpleString, Verbatim


# -- INFO / TIME ----------------------------------------------------------------------------
@command("info", -1, "loading stale", scope="server", group="server", summary="Returns information and statistics about the server.", complexity="O(1)")
def info(session: Any, argv: list[bytes]) -> Any:
    sections = [a.decode("utf-8", "replace").lower() for a in argv[1:]]
    return Verbatim(session.host.info(sections).encode())


@command("time", 1, "loading stale fast", scope="server", group="server", summary="Returns the server time.", since="2.6.0")
def time_(session: Any, argv: list[bytes]) -> Any:
    us = session.host.time_us()
    return [str(us // 1_000_000), str(us % 1_000_000)]


# -- CONFIG ----------------------------------------------------------------------------------
def _config_get(session: Any, argv: list[bytes]) -> Any:
    patterns = [a.decode("utf-8", "replace") for a in argv[2:]]
    return Map(session.host.config_get(patterns))


def _config_set(session: Any, argv: list[bytes]) -> Any:
    if len(argv) % 2:
        raise CommandError(errors.SYNTAX)  # as Redis 7.0 answers an odd count
    pairs = [
        (argv[i].decode("utf-8", "replace"), argv[i + 1].decode("utf-8", "replace"))
        for i in range(2, len(argv), 2)
    ]
    session.host.config_set(pairs)
    return OK


def _config_resetstat(session: Any, argv: list[bytes]) -> Any:
    session.host.reset_stats()
    return OK


def _config_rewrite(session: Any, argv: list[bytes]) -> Any:
    session.host.config_rewrite()
    return OK


def _config_help(session: Any, argv: list[bytes]) -> Any:
    return [
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Prints this help.",
    ]


_ADMIN = "admin noscript loading stale"
container(
    "config",
    scope="server",
    group="server",
    summary="A container for server configuration commands.",
    since="2.0.0",
    subcommands=[
        subcommand("config", "get", -3, _config_get, _ADMIN, scope="server", group="server", summary="Returns the effective values of configuration parameters.", since="2.0.0", complexity="O(N)"),
        subcommand("config", "set", -4, _config_set, _ADMIN, scope="server", group="server", summary="Sets configuration parameters in-flight.", since="2.0.0", complexity="O(N)"),
        subcommand("config", "resetstat", 2, _config_resetstat, _ADMIN, scope="server", group="server", summary="Resets the server's statistics.", since="2.0.0"),
        subcommand("config", "rewrite", 2, _config_rewrite, _ADMIN, scope="server", group="server", summary="Persists the effective configuration to file.", since="2.8.0"),
        subcommand("config", "help", 2, _config_help, "loading stale", scope="server", group="server", summary="Returns helpful text about the different subcommands.", since="5.0.0"),
    ],
)


# -- COMMAND ------------------------------------------------------------------------------------
def _command_all(session: Any, argv: list[bytes]) -> Any:
    return [command_info(spec) for spec in TABLE]


def _command_count(session: Any, argv: list[bytes]) -> Any:
    return len(TABLE)


def _command_list(session: Any, argv: list[bytes]) -> Any:
    return [spec.name for spec in TABLE]


def _lookup_named(name: bytes) -> CommandSpec | None:
    """A command by its name, a subcommand by "container|sub" (as Redis's COMMAND INFO/DOCS)."""
    base, sep, sub = name.partition(b"|")
    spec = TABLE.lookup(base)
    if not sep or spec is None:
        return spec
    return spec.subcommands.get(sub.lower().decode("utf-8", "replace")) if b"|" not in sub else None


def _command_info(session: Any, argv: list[bytes]) -> Any:
    if len(argv) == 2:
        return _command_all(session, argv)
    out = []
    for name in argv[2:]:
        spec = _lookup_named(name)
        out.append(command_info(spec) if spec is not None else None)
    return out


def _command_docs(session: Any, argv: list[bytes]) -> Any:
    specs = list(TABLE) if len(argv) == 2 else [_lookup_named(n) for n in argv[2:]]
    return Map([(spec.name, command_docs(spec)) for spec in specs if spec is not None])


def _command_getkeys(session: Any, argv: list[bytes]) -> Any:
    return getkeys_reply(argv[2:], with_flags=False)


def _command_getkeysandflags(session: Any, argv: list[bytes]) -> Any:
    return getkeys_reply(argv[2:], with_flags=True)


def _command_help(session: Any, argv: list[bytes]) -> Any:
    return [SimpleString(line) for line in (
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
        "HELP",
        "    Prints this help.",
    )]


_CMD = "loading stale"
container(
    "command",
    scope="server",
    group="server",
    summary="Returns detailed information about all commands.",
    since="2.8.13",
    handler=_command_all,
    subcommands=[
        subcommand("command", "count", 2, _command_count, _CMD, scope="server", group="server", summary="Returns a count of commands.", since="2.8.13"),
        subcommand("command", "list", -2, _command_list, _CMD, scope="server", group="server", summary="Returns a list of command names.", since="7.0.0", complexity="O(N)"),
        subcommand("command", "info", -2, _command_info, _CMD, scope="server", group="server", summary="Returns information about one, multiple or all commands.", since="2.8.13", complexity="O(N)"),
        subcommand("command", "docs", -2, _command_docs, _CMD, scope="server", group="server", summary="Returns documentary information about one, multiple or all commands.", since="7.0.0", complexity="O(N)"),
        subcommand("command", "getkeys", -3, _command_getkeys, _CMD, scope="server", group="server", summary="Extracts the key names from an arbitrary command.", since="2.8.13", complexity="O(N)"),
        subcommand("command", "getkeysandflags", -3, _command_getkeysandflags, _CMD, scope="server", group="server", summary="Extracts the key names and access flags for an arbitrary command.", since="7.0.0", complexity="O(N)"),
        subcommand("command", "help", 2, _command_help, _CMD, scope="server", group="server", summary="Returns helpful text about the different subcommands.", since="5.0.0"),
    ],
)
