"""The Redis session of one client connection, with no I/O (the h11 shape).

``feed(bytes)`` parses and runs commands; ``take_output()`` returns the bytes
to send. Commands that touch data go to the host (``host.submit``), which
answers at once or later through ``on_result``; a reply may also be held
until the host ``on_release``s it (a write is acknowledged only once it is
replicated). Replies always leave in command order.

Rule 1, after h11: everything that changes a session's state (protocol
version, authentication, MULTI queue, WATCH set, name) happens in this file
or in the session-scope handlers it calls.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from makod.kv.requests import TxnRequest
from makod.kv import errors
from makod.kv.errors import CommandError
from resp.acl import ALL_KEYS
from resp import monitor
from resp.blocking import blocking_queue
from resp.session_multi import DEFERRED, TransactionsMixin
from resp.session_waits import WaitsMixin
from resp.protocol import DEFAULT_MAX_BULK_LEN, RequestParser
from resp.pubsub import ALLOWED_WHEN_SUBSCRIBED, Subscriptions, Wire, acl_channels, channel_allowed, not_allowed_text
from resp.replies import QUEUED, Blocked, ErrorReply, encode
from makod.kv.table import TABLE, CommandSpec, CommandTable

# Commands that act at once even inside MULTI (src/server.c processCommand).
_NOT_QUEUED = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})


# A client that pipelines faster than we answer stops being read past this
# many parsed-but-unrun commands (the driver pauses reading).
MAX_PENDING_COMMANDS = 4096


class SessionHost(Protocol):
    """What a session needs from the server it lives in."""

    requirepass: str | None
    proto_max_bulk_len: int

    def submit(self, session: "Session", token: int, request: Any) -> tuple[Any, bool] | None: ...

    def now_ms(self) -> int: ...

    # Optional: a one-key read (spec.fast_read) answered at once, or None.
    # fast_read(db, argv, spec) -> (reply, released) | None


class Session(WaitsMixin, TransactionsMixin):
    def __init__(
        self,
        host: SessionHost,
        client_id: int,
        addr: str = "",
        laddr: str = "",
        table: CommandTable = TABLE,
    ) -> None:
        self.host = host
        self.table = table
        self.id = client_id
        self.addr = addr
        self.laddr = laddr
        self.tls = False  # came over the TLS port: CLUSTER replies name TLS ports
        self.parser = RequestParser(max_bulk_len=getattr(host, "proto_max_bulk_len", DEFAULT_MAX_BULK_LEN))
        self.proto = 2
        self.user = "default"
        self.authenticated = self._default_user_open()
        self.name: bytes | None = None
        self.lib_name = b""
        self.lib_ver = b""
        self.db = 0
        self.databases = getattr(host, "databases", 16)
        self.created_ms = host.now_ms()
        self.last_active_ms = self.created_ms
        self.last_command = "NULL"
        self.commands_processed = 0
        # Command statistics (resp/cmdstats.py): token -> (name, start ns, argv, failed)
        self.stats = getattr(host, "command_stats", None)
        self._fast_read = getattr(host, "fast_read", None)
        self._timed: dict[int, list] = {}
        self._spec_name: str | None = None  # the command being dispatched, for rejected_calls
        self._monitors: set | None = getattr(host, "monitors", None)  # MONITOR clients of this node
        self.reply_mode = "on"  # CLIENT REPLY: on, off, or skip (the next command's reply)
        self._quiet = False  # the command being dispatched answers nothing (CLIENT REPLY)
        self.no_evict = False  # CLIENT NO-EVICT (nothing is evicted here: kept for CLIENT LIST)
        self.no_touch = False  # CLIENT NO-TOUCH (access times are not tracked here)
        self._pause_wait = False  # a retry is scheduled for the end of a CLIENT PAUSE
        self.tracking: Any = None  # CLIENT TRACKING ON: a resp.tracking.ClientTracking

        self.in_multi = False
        self.multi_error = False
        self.multi_queue: list[tuple[CommandSpec, list[bytes]]] = []
        self.watched: dict[tuple[int, bytes], int] = {}  # (db, key) -> version

        self.closing = False
        self._pending: deque[list[bytes]] = deque()
        self._running = False
        self._blocked: int | None = None  # token of the request we wait on
        self._next_token = 0
        # In-order replies: [token, encoded or None, released]
        self._slots: deque[list] = deque()
        self._slot_of: dict[int, list] = {}  # token -> its slot in _slots (O(1) fill and release)
        self._continuations: dict[int, tuple] = {}
        self.blocked_on: tuple | None = None  # (token, continuation, timeout reply) of a waiting blocking command
        self._out: list[bytes] = []
        # Pub/sub (resp/pubsub.py): what this client listens to, and the
        # bytes of messages delivered but not yet in _out (behind replies).
        self.pubsub = Subscriptions()
        self.held_bytes = 0
        self._held: deque[tuple[int, bytes]] = deque()  # (due: commands dispatched by then, message)
        self._dispatched = 0

    # -- driver API -------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.closing:
            return
        commands = self.parser.feed(data)
        if commands:
            self._pending.extend(commands)
        self._run()

    def take_output(self) -> bytes:
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out = []
        return data

    @property
    def has_output(self) -> bool:
        return bool(self._out)

    @property
    def finished(self) -> bool:
        """QUIT or a protocol error, and every reply is out: the driver closes."""
        return self.closing and not self._slots and not self._out

    @property
    def wants_input(self) -> bool:
        """False while enough parsed commands wait: the driver stops reading."""
        return len(self._pending) < MAX_PENDING_COMMANDS and not self.closing

    @property
    def is_pubsub(self) -> bool:
        """Subscribed: the pubsub class of client-output-buffer-limit applies."""
        return self.pubsub.active

    @property
    def buffered_input(self) -> int:
        return self.parser.buffered

    def on_result(self, token: int, result: Any, released: bool) -> None:
        """The host ran (or failed) the request ``token``."""
        cont = self._continuations.pop(token, None)
        if cont is not None:
            if cont[0] == "block":
                served = type(result) is not Blocked
                if not served:
                    if self._park(token, cont, result):
                        return
                    result = result.reply
                self.blocked_on = None
                queue = blocking_queue(self.host)
                if queue is not None:
                    queue.leave(self, served)
            else:
                result = self._continue(cont, result)
        timed = self._timed.get(token)
        if timed is not None:
            timed[3] = type(result) is ErrorReply
            if released:
                self._finish_timing(token)
        self._fill(token, result, released)
        if self._blocked == token:
            self._blocked = None
            self._run()

    def on_release(self, token: int) -> None:
        if token in self._timed:
            self._finish_timing(token)
        slot = self._slot_of.get(token)
        if slot is not None:
            slot[2] = True
        self._flush_slots()

    # -- the command loop -------------------------------------------------------------------
    def _run(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            while self._pending and self._blocked is None and not self.closing:
                if self._wait_for_pause():
                    break
                self._dispatch(self._pending.popleft())
                self._dispatched += 1
                if self._held:
                    self._release_held()
            if self._held and not self._pending:
                self._release_held(everything=True)
            if (
                self.parser.error is not None
                and not self._pending
                and self._blocked is None
                and not self.closing
            ):
                self._reply(ErrorReply(self.parser.error.text))
                self.closing = True
        finally:
            self._running = False

    def _dispatch(self, argv: list[bytes]) -> None:
        self._dispatch_one(argv)
        tracking = self.tracking
        if tracking is not None and tracking.caching and not self.in_multi and not self.last_command.startswith("client"):
            tracking.caching = False  # CLIENT CACHING holds for the next command (or MULTI block) only

    def track(self, spec: CommandSpec, argv: list[bytes]) -> None:
        """A tracking client's command, as it is sent on: a read remembers its
        keys now, before it runs, so an invalidation that arrives while it
        runs is written after its reply (resp/tracking.py)."""
        state = self.tracking
        table = self.host.tracking
        if "readonly" in spec.flags or spec.group == "scripting":
            if state.remembers_reads():
                keys = spec.keys(argv)
                if keys:
                    table.remember(self, keys)
        elif state.noloop and not state.bcast and spec.is_write:
            table.forget(self, spec.keys(argv))

    def _dispatch_one(self, argv: list[bytes]) -> None:
        self.commands_processed += 1
        self._spec_name = None
        mode = self.reply_mode
        self._quiet = mode != "on"
        if mode == "skip":
            self.reply_mode = "on"
        self.last_active_ms = self.host.now_ms()
        name = argv[0]
        spec = self.table.lookup(name)
        if spec is None:
            self._reject(errors.unknown_command(name, argv[1:]))
            return
        if spec.subcommands and (len(argv) >= 2 or spec.handler is None):
            if len(argv) < 2:
                self._reject(errors.wrong_arity(spec.name))
                return
            sub = spec.subcommands.get(argv[1].lower().decode("utf-8", "replace"))
            if sub is None:
                self._reject(errors.unknown_subcommand(argv[1], spec.name))
                return
            spec = sub
        self.last_command = spec.name  # CLIENT LIST's cmd=
        self._spec_name = spec.name
        if not spec.arity_ok(len(argv)):
            self._reject(errors.wrong_arity(spec.name))
            return
        if not self.authenticated and "no_auth" not in spec.flags:
            self._reject(errors.NOAUTH)
            return
        acl = getattr(self.host, "acl", None)
        if acl is not None and "no_auth" not in spec.flags and not self._acl_allows(acl, spec, argv):
            return
        if spec.prepare is not None:
            try:
                argv = spec.prepare(argv)
            except CommandError as exc:
                self._reject(exc.text)
                return
            spec = self.table.lookup(argv[0])
        if spec.is_write and getattr(self.host, "disk_error", None):
            self._reject(errors.MISCONF_WRITE.format(self.host.disk_error))
            return
        if self.proto == 2 and self.pubsub.active and spec.name not in ALLOWED_WHEN_SUBSCRIBED:
            self._reject(not_allowed_text(spec.name))
            return
        if self._monitors and spec.name not in monitor.HIDDEN and "admin" not in spec.flags:
            self._feed_monitors(argv)
        if self.in_multi and spec.name not in _NOT_QUEUED:
            if "no_multi" in spec.flags:
                self._reject(errors.NOT_ALLOWED_IN_MULTI)
                return
            self.multi_queue.append((spec, argv))
            self._reply(QUEUED)
            return
        self._spec_name = None  # past the checks: no longer a rejection
        if spec.scope == "session" or spec.scope == "server":
            stats = self.stats
            if stats is None:
                reply = self._run_local(spec, argv)
            else:
                t0 = stats.mono_ns()
                reply = self._run_local(spec, argv)
                if reply is not DEFERRED:  # else timed until the host answers (EXEC, WATCH)
                    stats.record(spec.name, (stats.mono_ns() - t0) // 1000, type(reply) is ErrorReply, argv, self)
            if reply is not DEFERRED:
                self._reply(reply)
        else:
            if self.tracking is not None:
                self.track(spec, argv)
            if spec.fast_read is not None and not self._slots and self._fast_read is not None:
                # Nothing answered ahead of it is pending, so an answer now is
                # in order: no request, token or reply slot (issue 14).
                stats = self.stats
                t0 = stats.mono_ns() if stats is not None else 0
                answer = self._fast_read(self.db, argv, spec)
                if answer is not None and answer[1]:
                    if stats is not None:
                        failed = type(answer[0]) is ErrorReply
                        stats.record(spec.name, (stats.mono_ns() - t0) // 1000, failed, argv, self)
                    if not self._quiet:
                        self._out.append(encode(answer[0], self.proto))
                    return
            request = TxnRequest([argv], db=self.db)
            request.specs = [spec]
            timing = None if self.stats is None else [spec.name, 0, argv, False]
            if "blocking" in spec.flags:
                self._submit(request, ("block", request, None), timing)
                return
            if spec.is_write:
                self._poke_waiters([(spec, argv)], request)
            self._submit(request, None, timing)

    def _default_user_open(self) -> bool:
        """A new connection is logged in as "default" when that user needs no password."""
        acl = getattr(self.host, "acl", None)
        if acl is None:
            return self.host.requirepass is None
        user = acl.users.get("default")
        return user is not None and user.enabled and user.nopass

    def _acl_allows(self, acl: Any, spec: CommandSpec, argv: list[bytes]) -> bool:
        """The logged-in user's permissions (checked before queueing in MULTI, as Redis does)."""
        user = acl.users.get(self.user)
        if user is None or not user.enabled:  # deleted or disabled since it logged in
            self._reject(errors.NOPERM_COMMAND.format(self.user, spec.name))
            self.closing = True
            return False
        if not acl.command_ok(user, spec):
            self._acl_denied("command", spec.name, errors.NOPERM_COMMAND.format(self.user, spec.name))
            return False
        if "pubsub" in spec.flags:
            # Shard channels are declared as keys (COMMAND INFO, as Redis) but
            # checked as channels (&pattern rules), as Redis does.
            checked = acl_channels(spec.name, argv)
            for channel in checked[0] if checked else ():
                if not channel_allowed(acl, user, channel, checked[1]):
                    self._acl_denied("channel", channel.decode("utf-8", "replace"), errors.NOPERM_CHANNEL)
                    return False
        elif (spec.first_key or spec.key_finder is not None) and user.key_patterns[:1] != ALL_KEYS:
            # (allkeys, the default user's: every key passes, no need to look.)
            # Commands whose keys follow a count (ZUNION, LMPOP, XREAD ...) have
            # no first key but a finder: their keys are checked too.
            write = spec.is_write
            for key in spec.keys(argv):
                if not acl.key_ok(user, key, write=write, read=not write):
                    self._acl_denied("key", key.decode("utf-8", "replace"), errors.NOPERM_KEY)
                    return False
        if spec.reads_data_keys is not None and spec.reads_data_keys(argv):
            # SORT's BY/GET patterns can name any key: Redis wants read access to all keys.
            if not any("R" in perm and pattern == b"*" for perm, pattern in user.key_patterns):
                option = next((argv[i].upper().decode() for i in range(2, len(argv) - 1) if argv[i].upper() == b"GET"
                               or (argv[i].upper() == b"BY" and b"*" in argv[i + 1])), "BY")
                self._reject(f"ERR {option} option of SORT denied due to insufficient ACL permissions.")
                return False
        return True

    def _acl_denied(self, reason: str, obj: str, text: str) -> None:
        log = getattr(self.host, "acl_log", None)
        if log is not None:
            log.add(reason, "multi" if self.in_multi else "toplevel", obj, self.user, self.describe_client())
        self._reject(text)

    def describe_client(self) -> str:
        return f"id={self.id} addr={self.addr} laddr={self.laddr} name={(self.name or b'').decode('utf-8', 'replace')} user={self.user}"

    def _run_local(self, spec: CommandSpec, argv: list[bytes]) -> Any:
        try:
            return spec.handler(self, argv)
        except CommandError as exc:
            return ErrorReply(exc.text)

    def _reject(self, text: str) -> None:
        """An error while queueing flags the transaction (src/multi.c flagTransaction)."""
        if self.in_multi:
            self.multi_error = True
        if self.stats is not None and self._spec_name is not None:
            self.stats.rejected(self._spec_name)
        self._reply(ErrorReply(text))

    # -- replies ------------------------------------------------------------------------------
    def _reply(self, reply: Any) -> None:
        if type(reply) is ErrorReply and self.stats is not None:
            self.stats.error_reply(reply.text)
        if self._quiet:
            return
        self._emit(encode(reply, self.proto))

    def _emit(self, data: bytes) -> None:
        if self._slots:
            self._slots.append([None, data, True])
            self._flush_slots()
        else:
            self._out.append(data)

    def _fill(self, token: int, reply: Any, released: bool) -> None:
        if type(reply) is ErrorReply and self.stats is not None:
            self.stats.error_reply(reply.text)
        slot = self._slot_of.get(token)
        if slot is not None:
            slot[1] = b"" if slot[3] is None else encode(reply, slot[3])
            slot[2] = released or slot[2]
        self._flush_slots()

    def _reserve(self, token: int, data: bytes | None) -> None:
        """A reply's place in line (its token's slot), remembering the
        protocol it must be encoded in."""
        slot = [token, b"" if self._quiet and data is not None else data, False, None if self._quiet else self.proto]
        self._slots.append(slot)
        self._slot_of[token] = slot

    def _flush_slots(self) -> None:
        slots = self._slots
        while slots and slots[0][1] is not None and slots[0][2]:
            slot = slots.popleft()
            if slot[0] is not None:
                del self._slot_of[slot[0]]
            elif len(slot) == 5:  # a pub/sub message (deliver)
                self.held_bytes -= len(slot[1])
            self._out.append(slot[1])

    # -- pub/sub messages ----------------------------------------------------------------------
    def deliver(self, wire: Wire) -> None:
        """A published message for this client, written where Redis would put
        it in the client's buffer: after the replies of every command that
        arrived before it. A command waiting on the host (forwarded to a
        leader) holds back the messages and the commands pipelined behind it,
        until those have run; a command parked on BLPOP & co does not (Redis
        pushes to a blocked RESP3 client), the message goes just before its
        reply. A message a command of this client publishes to itself comes
        before that command's reply, as in Redis (unless older messages are
        still held: messages never overtake each other). ``held_bytes``
        counts what waits, for the output limit."""
        if self.closing:
            return
        data = wire.for_proto(self.proto)
        parked = self.blocked_on
        if parked is not None:
            for i, slot in enumerate(self._slots):
                if slot[0] == parked[0]:
                    self._slots.insert(i, [None, data, True, None, True])
                    self.held_bytes += len(data)
                    self._flush_slots()
                    return
        if self._held or (self._blocked is not None and self._pending):
            # Due once the commands that arrived before it have run.
            self._held.append((self._dispatched + len(self._pending), data))
            self.held_bytes += len(data)
        else:
            self._emit_message(data, False)

    def _emit_message(self, data: bytes, counted: bool) -> None:
        if self._slots:
            self._slots.append([None, data, True, None, True])
            if not counted:
                self.held_bytes += len(data)
        else:
            if counted:
                self.held_bytes -= len(data)
            self._out.append(data)

    def _release_held(self, everything: bool = False) -> None:
        held = self._held
        while held and (everything or held[0][0] <= self._dispatched):
            self._emit_message(held.popleft()[1], True)

    def drop_subscriptions(self) -> None:
        """RESET, or the connection closed: the node forgets this client's
        subscriptions (and its MONITOR)."""
        if self._monitors is not None:
            self._monitors.discard(self)
        hub = getattr(self.host, "pubsub", None)
        if hub is not None and self.pubsub.active:
            hub.drop(self)
        if self.tracking is not None:
            self.host.tracking.disable(self)
        self.pubsub = Subscriptions()

    def _submit(self, request: Any, continuation: tuple | None, timing: list | None = None) -> None:
        self._next_token += 1
        token = self._next_token
        if timing is not None:
            timing[1] = self.stats.mono_ns()  # type: ignore[union-attr]
            self._timed[token] = timing
        if continuation is None and not self._slots:
            # The common case: nothing queued ahead of us. If the answer is
            # immediate and releasable it goes straight out.
            answer = self.host.submit(self, token, request)
            if answer is None:
                self._reserve(token, None)
                self._blocked = token
                return
            if timing is not None:
                timing[3] = type(answer[0]) is ErrorReply
                if answer[1]:
                    self._finish_timing(token)
            if type(answer[0]) is ErrorReply and self.stats is not None:
                self.stats.error_reply(answer[0].text)
            if answer[1]:
                if not self._quiet:
                    self._out.append(encode(answer[0], self.proto))
            else:
                self._reserve(token, encode(answer[0], self.proto))
            return
        if continuation is not None:
            self._continuations[token] = continuation
        self._reserve(token, None)
        self._blocked = token
        answer = self.host.submit(self, token, request)
        if answer is not None:
            self.on_result(token, answer[0], answer[1])

    def _finish_timing(self, token: int) -> None:
        name, t0, argv, failed = self._timed.pop(token)
        stats = self.stats
        stats.record(name, (stats.mono_ns() - t0) // 1000, failed, argv, self)  # type: ignore[union-attr]

    def _feed_monitors(self, argv: list[bytes]) -> None:
        line = monitor.monitor_line(self.host.time_us(), self.db, self.addr or "?", argv)
        for m in list(self._monitors):  # type: ignore[union-attr]
            if m.closing:
                self._monitors.discard(m)  # type: ignore[union-attr]
            else:
                m._emit(line)
        wake = getattr(self.host, "wake", None)
        if wake is not None:
            wake(list(self._monitors))  # type: ignore[arg-type]

    def start_monitor(self) -> None:
        """MONITOR: from now on this client receives every command the node runs."""
        if self._monitors is not None:
            self._monitors.add(self)

    def reset(self) -> None:
        """RESET: back to a fresh connection's state (src/networking.c resetCommand)."""
        self._end_multi()
        self.drop_subscriptions()
        self.proto = 2
        self.name = None
        self.db = 0
        self.user = "default"
        self.authenticated = self._default_user_open()
