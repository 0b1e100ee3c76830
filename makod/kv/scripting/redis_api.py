"""The Python half of the ``redis`` table: redis.call/pcall and friends.

``Bridge`` holds what one run needs (its ScriptCalls, read-only or not) and
the callbacks the Lua prelude calls (``callbacks()``). Every callback catches
every exception: a CommandError becomes an error for Lua, anything else is the
transaction machinery's and is recorded in ``fatal`` (the Lua side then
unwinds uncatchably and the engine re-raises it).
"""

from __future__ import annotations

import hashlib
from typing import Any

from makod.kv import errors
from makod.kv.errors import CommandError
from makod.kv.replies import OK, PONG, Blocked, ErrorReply
from makod.kv.scripting.bytecode import without_tail_calls
from makod.kv.scripting.convert import lua_error_text, reply_to_lua
from makod.kv.scripting.rand48 import Rand48
from makod.kv.table import TABLE, CommandTable, resolve

REDIS_VERSION = b"7.0.15"
REDIS_VERSION_NUM = 0x07000F
# Redis never reseeds: a fresh server's generator starts at 0x1234ABCD330E
# (rand.c's X0..X2), which is redisSrand48(0x1234ABCD). makodb starts every
# run there, so a script's numbers are those of a fresh redis-server's first run.
INITIAL_SEED = 0x1234ABCD


# Redis commands flagged noscript that the command table may not hold (the
# scripting and transaction commands are the protocol layer's): a script
# calling them gets "not allowed", as from Redis, not "unknown".
NOSCRIPT_COMMANDS = frozenset(
    b"eval evalsha eval_ro evalsha_ro fcall fcall_ro script function multi exec discard watch unwatch "
    b"subscribe unsubscribe psubscribe punsubscribe ssubscribe sunsubscribe blpop brpop brpoplpush blmove "
    b"blmpop bzpopmin bzpopmax bzmpop xread xreadgroup wait client config debug monitor sync psync "
    b"replicaof slaveof shutdown save bgsave bgrewriteaof auth hello reset quit failover".split()
)


def _error_line(text: str) -> str:
    """A CommandError's text with its code (ERR added as the RESP layer would)."""
    return ErrorReply(text).text


def format_arg(value: Any) -> bytes | None:
    """A redis.call argument as Redis makes it: strings as is, numbers "%.17g"."""
    t = type(value)
    if t is bytes:
        return value
    if t is int or t is float:
        return b"%.17g" % value
    return None


class Bridge:
    def __init__(self, lua: Any, table: CommandTable = TABLE) -> None:
        self.lua = lua
        self.table = table
        self.calls: Any = None
        self.readonly = False
        self.fatal: BaseException | None = None
        self.state: Any = None  # the prelude's STATE table (set by the engine)
        self.rand = Rand48(INITIAL_SEED)
        self._new_table = lua.eval("function() return {} end")
        self._err_table = lua.eval("function(t) return {err = t} end")

    def begin(self, calls: Any, readonly: bool) -> None:
        self.calls = calls
        self.readonly = readonly
        self.fatal = None
        self.rand.seed(INITIAL_SEED)

    def end(self) -> None:
        self.calls = None

    def _record(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc

    # -- callbacks -------------------------------------------------------------------

    def callbacks(self) -> dict[str, Any]:
        return {
            "call": self.call,
            "check": self.check,
            "log": self.log,
            "rand": self.rand.random,
            "seed": self.rand.seed,
            "sha1hex": lambda s: hashlib.sha1(s).hexdigest().encode(),
            "errtext": lambda s: lua_error_text(s.decode("utf-8", "replace")).encode(),
            "known_command": self.known_command,
            "untail": without_tail_calls,
            "version": REDIS_VERSION,
            "version_num": REDIS_VERSION_NUM,
        }

    def call(self, *args: Any) -> Any:
        """(0, value) | (1, error text) | (2,): fatal, see ``fatal``."""
        try:
            if self.calls is None:
                return 1, b"ERR redis.call/pcall can only be called inside a script invocation"
            if not args:
                return 1, errors.SCRIPT_NO_ARGS.encode()
            argv = []
            for a in args:
                arg = format_arg(a)
                if arg is None:
                    return 1, errors.SCRIPT_BAD_ARG_TYPE.encode()
                argv.append(arg)
            try:
                reply = self.dispatch(argv)
            except CommandError as exc:
                return 1, lua_error_text("-" + _error_line(exc.text)).encode()
            if isinstance(reply, Blocked):
                reply = reply.reply
            if isinstance(reply, ErrorReply):
                return 1, lua_error_text("-" + reply.text).encode()
            return 0, reply_to_lua(reply, self.lua_resp(), self._new_table, self._err_table)
        except BaseException as exc:  # the machinery's: uncatchable by the script
            self._record(exc)
            return (2,)

    def lua_resp(self) -> int:
        return int(self.state[b"resp"])

    def check(self) -> bool:
        try:
            if self.calls is not None:
                self.calls.check()
            return True
        except BaseException as exc:
            self._record(exc)
            return False

    def log(self, level: int, text: bytes) -> bool:
        try:
            if self.calls is not None:
                self.calls.log(int(level), text.decode("utf-8", "replace"))
            return True
        except BaseException as exc:
            self._record(exc)
            return False

    def known_command(self, *args: Any) -> bool:
        argv = [format_arg(a) or b"" for a in args]
        return argv[0].lower() in (b"ping", b"echo", b"time", b"select") or resolve(self.table, argv) is not None

    # -- one command ------------------------------------------------------------------

    def dispatch(self, argv: list[bytes]) -> Any:
        name = argv[0].lower()
        calls = self.calls
        if name == b"ping":
            if len(argv) > 2:
                raise CommandError(errors.SCRIPT_PING_ARITY)
            return PONG if len(argv) == 1 else argv[1]
        if name == b"echo":
            if len(argv) != 2:
                raise CommandError(errors.SCRIPT_WRONG_ARITY)
            return argv[1]
        if name == b"time":
            if len(argv) != 1:
                raise CommandError(errors.SCRIPT_WRONG_ARITY)
            us = calls.time_us()
            return [b"%d" % (us // 1_000_000), b"%d" % (us % 1_000_000)]
        if name == b"select":
            if len(argv) != 2:
                raise CommandError(errors.SCRIPT_WRONG_ARITY)
            try:
                db = int(argv[1])
            except ValueError:
                raise CommandError(errors.NOT_INTEGER) from None
            if not argv[1].strip() == argv[1] or not -(2**63) <= db < 2**63:
                raise CommandError(errors.NOT_INTEGER)
            calls.select(db)
            return OK
        spec = resolve(self.table, argv)
        if spec is None:
            if name in NOSCRIPT_COMMANDS:
                raise CommandError(errors.SCRIPT_NOT_ALLOWED)
            raise CommandError(errors.SCRIPT_UNKNOWN_COMMAND)
        if not spec.arity_ok(len(argv)):
            raise CommandError(errors.SCRIPT_WRONG_ARITY)
        if "noscript" in spec.flags or spec.scope != "data":
            raise CommandError(errors.SCRIPT_NOT_ALLOWED)
        if self.readonly and spec.is_write:
            raise CommandError(errors.SCRIPT_WRITE_IN_READONLY)
        return calls.execute(spec, argv)
