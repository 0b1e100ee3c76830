"""The declarative command table.

One ``CommandSpec`` per command (and per subcommand of container commands such
as CLIENT and CONFIG) says everything generic code needs: arity for the
wrong-arity check, flags for MULTI queueing, AUTH and routing, key positions
for routing to shards and WATCH, the handler, and the documentation that
``COMMAND INFO`` and ``COMMAND DOCS`` answer with. Nothing else in makodb keeps
a list of commands.

Arity follows Redis: it counts the command name; a positive arity is exact, a
negative one is a minimum (``-2`` means "at least two").

``scope`` says where a command runs:

* ``session``: connection state only (PING, HELLO, MULTI, WATCH, CLIENT, ...),
  answered by the RESP session itself;
* ``server``: node-level facts (INFO, CONFIG, TIME), answered through the
  session's host;
* ``data``: reads or writes keys; runs inside a transaction against the
  keyspace (``handler(ctx, args)``);
* ``keyspace``: a data command over the whole keyspace (DBSIZE, KEYS, SCAN,
  FLUSHDB), run on every shard and merged by ``merge``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# Redis's command flags that makodb uses (src/commands.def: CMD_*), lower-case.
KNOWN_FLAGS = frozenset(
    {
        "write",
        "readonly",
        "denyoom",
        "admin",
        "pubsub",
        "noscript",
        "blocking",
        "loading",
        "stale",
        "skip_monitor",
        "skip_slowlog",
        "fast",
        "no_auth",
        "may_replicate",
        "no_mandatory_keys",
        "no_multi",
        "movablekeys",
        "allow_busy",
    }
)

SCOPES = frozenset({"session", "server", "data", "keyspace"})


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str  # lower case; subcommands are "container|sub"
    arity: int
    flags: frozenset[str]
    handler: Callable[..., Any] | None
    scope: str = "data"
    first_key: int = 0
    last_key: int = 0
    key_step: int = 0
    group: str = "generic"
    summary: str = ""
    since: str = "1.0.0"
    complexity: str = "O(1)"
    # How a keyspace command's per-shard replies combine: "sum", "concat",
    # "all_ok", "first", or "custom" (the handler module merges).
    merge: str = ""
    subcommands: dict[str, "CommandSpec"] = field(default_factory=dict)
    # Keys that (first, last, step) cannot describe (a "numkeys" argument, as
    # in LMPOP, ZUNION, SINTERCARD): argv -> keys. Such a command is flagged
    # ``movablekeys``; it must raise nothing (bad input: return what it can,
    # the handler reports the error).
    key_finder: Callable[[list[bytes]], list[bytes]] | None = None
    # Does this invocation also read keys its data names (SORT's BY and GET
    # patterns)? Then no key list is complete: routing runs it where any
    # shard's key can be fetched, as for a command with no key finder.
    reads_data_keys: Callable[[list[bytes]], bool] | None = None
    # Rewrites an invocation where the client sent it, before it is queued
    # or routed (EVALSHA of a script this node knows becomes EVAL, so the
    # node that runs it need not know the SHA1); raises CommandError.
    prepare: Callable[[list[bytes]], list[bytes]] | None = None
    # The keys ``keys(argv)`` names are, by contract, all it may touch, though
    # that cannot be checked before it runs (a script's KEYS, as Redis asks):
    # protocols that order transactions up front (Luigi) take them as its
    # footprint (written unless the command is read-only); anything else it
    # touches fails there.
    keys_declared: bool = False
    # A one-key read's reply straight from the key's record (None: absent),
    # with no transaction context: the leader's fast path when nothing about
    # the key is pending (makod/core/node.py _fast_read). NotImplemented
    # sends it down the full path (a wrong type, say, answered there).
    fast_read: Callable[[Any], Any] | None = None
    # Answered only once durable, even under ``ack: speculative``: a step
    # whose caller acts on it elsewhere next (MAKO SLOTS: an acknowledged
    # import, then rolled back, would lose the keys the source then drops).
    durable_ack: bool = False

    def __post_init__(self) -> None:
        unknown = self.flags - KNOWN_FLAGS
        assert not unknown, f"{self.name}: unknown flags {sorted(unknown)}"
        assert self.scope in SCOPES, f"{self.name}: unknown scope {self.scope}"
        assert self.arity != 0, f"{self.name}: arity 0 is meaningless"
        assert ("write" in self.flags) + ("readonly" in self.flags) <= 1, self.name
        if self.first_key:
            assert self.key_step >= 1, f"{self.name}: keys need a step"
        if self.key_finder is not None:
            assert "movablekeys" in self.flags, f"{self.name}: a key finder means movable keys"
        if self.reads_data_keys is not None:
            assert "movablekeys" in self.flags, f"{self.name}: keys named by data are movable keys"
        if self.fast_read is not None:
            assert "readonly" in self.flags and self.arity == 2 and self.first_key == 1, f"{self.name}: one-key reads only"

    @property
    def is_write(self) -> bool:
        return "write" in self.flags

    def arity_ok(self, argc: int) -> bool:
        return argc == self.arity if self.arity > 0 else argc >= -self.arity

    def keys(self, args: list[bytes]) -> list[bytes]:
        """The key arguments of one invocation (args[0] is the command name)."""
        if self.key_finder is not None:
            return self.key_finder(args)
        if not self.first_key:
            return []
        last = self.last_key if self.last_key >= 0 else len(args) + self.last_key
        return args[self.first_key : last + 1 : self.key_step]


def numkeys_finder(numkeys_at: int, extra: int = 0) -> Callable[[list[bytes]], list[bytes]]:
    """Keys that follow a "numkeys" argument at ``numkeys_at`` (ZUNION, SINTERCARD,
    LMPOP's ``numkeys key...``), plus ``extra`` keys just before it (ZUNIONSTORE's
    destination at ``numkeys_at - 1``)."""

    def find(args: list[bytes]) -> list[bytes]:
        before = args[numkeys_at - extra : numkeys_at] if extra else []
        try:
            n = int(args[numkeys_at])
        except (IndexError, ValueError):
            return list(before)
        if n <= 0:
            return list(before)
        return list(before) + args[numkeys_at + 1 : numkeys_at + 1 + n]

    return find


def resolve(table: "CommandTable", argv: list[bytes]) -> "CommandSpec | None":
    """The spec that runs ``argv``: the subcommand's for container commands."""
    spec = table.lookup(argv[0])
    if spec is not None and spec.subcommands and len(argv) >= 2:
        return spec.subcommands.get(argv[1].lower().decode("utf-8", "replace"))
    return spec


class CommandTable:
    """Name -> spec, case-insensitive; built once at import by the command modules."""

    def __init__(self) -> None:
        self._by_name: dict[bytes, CommandSpec] = {}

    def register(self, spec: CommandSpec) -> CommandSpec:
        key = spec.name.encode()
        assert key not in self._by_name, f"command {spec.name} registered twice"
        self._by_name[key] = spec
        return spec

    def lookup(self, name: bytes) -> CommandSpec | None:
        spec = self._by_name.get(name)
        if spec is None:
            spec = self._by_name.get(name.lower())
        return spec

    def __iter__(self):
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)


TABLE = CommandTable()


def command(
    name: str,
    arity: int,
    flags: str = "",
    *,
    scope: str = "data",
    keys: tuple[int, int, int] = (0, 0, 0),
    group: str = "generic",
    summary: str = "",
    since: str = "1.0.0",
    complexity: str = "O(1)",
    merge: str = "",
    key_finder: Callable[[list[bytes]], list[bytes]] | None = None,
    reads_data_keys: Callable[[list[bytes]], bool] | None = None,
    prepare: Callable[[list[bytes]], list[bytes]] | None = None,
    keys_declared: bool = False,
    fast_read: Callable[[Any], Any] | None = None,
    table: CommandTable = TABLE,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: declare a command and register its handler in ``table``."""

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        table.register(
            CommandSpec(
                name=name.lower(),
                arity=arity,
                flags=frozenset(flags.split()),
                handler=handler,
                scope=scope,
                first_key=keys[0],
                last_key=keys[1],
                key_step=keys[2],
                group=group,
                summary=summary,
                since=since,
                complexity=complexity,
                merge=merge,
                key_finder=key_finder,
                reads_data_keys=reads_data_keys,
                prepare=prepare,
                keys_declared=keys_declared,
                fast_read=fast_read,
            )
        )
        return handler

    return register


def container(
    name: str,
    *,
    scope: str,
    group: str,
    summary: str,
    since: str,
    subcommands: list[CommandSpec],
    flags: str = "",
    handler: Callable[..., Any] | None = None,
    table: CommandTable = TABLE,
) -> CommandSpec:
    """Declare a command with subcommands (CLIENT, CONFIG, COMMAND).

    The container's arity is -2 as in Redis (-1 when ``handler`` answers the
    bare form, as COMMAND does); a subcommand's own arity counts the container
    name too (``CLIENT SETNAME name`` is arity 3).
    """
    spec = CommandSpec(
        name=name.lower(),
        arity=-1 if handler is not None else -2,
        flags=frozenset(flags.split()),
        handler=handler,
        scope=scope,
        group=group,
        summary=summary,
        since=since,
        subcommands={sub.name.split("|", 1)[1]: sub for sub in subcommands},
    )
    return table.register(spec)


def subcommand(
    container_name: str,
    sub: str,
    arity: int,
    handler: Callable[..., Any],
    flags: str = "",
    *,
    scope: str,
    group: str,
    summary: str = "",
    since: str = "1.0.0",
    complexity: str = "O(1)",
    keys: tuple[int, int, int] = (0, 0, 0),
    merge: str = "",
    durable_ack: bool = False,
) -> CommandSpec:
    return CommandSpec(
        durable_ack=durable_ack,
        merge=merge,
        name=f"{container_name.lower()}|{sub.lower()}",
        first_key=keys[0],
        last_key=keys[1],
        key_step=keys[2],
        arity=arity,
        flags=frozenset(flags.split()),
        handler=handler,
        scope=scope,
        group=group,
        summary=summary,
        since=since,
        complexity=complexity,
    )
