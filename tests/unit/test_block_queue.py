"""Blocked clients of one node are served in the order they blocked (resp/blocking.py).

Sessions on one Harness keyspace; the host's timers fire when their time
comes on a fake clock. A host may also hold retries "in flight" (as a pop
forwarded to another node's leader is) to show that a younger waiter on the
same keys does not overtake an older one whose retry has not come back.
"""

from __future__ import annotations

from typing import Any

from makod.kv.errors import CommandError
from makod.kv.table import TABLE, resolve
from resp.blocking import FIRST_RETRY_MS, MAX_RETRY_MS, BlockQueue
from resp.replies import ErrorReply
from resp.session import Session
from tests.unit.harness import Harness


class _Host:
    requirepass = None
    proto_max_bulk_len = 512 * 1024 * 1024

    def __init__(self) -> None:
        self.h = Harness()
        self.timers: list[tuple[float, int, Any]] = []
        self.seq = 0
        self.hold = False  # answer blocking retries later (forwarded)
        self.held: list[tuple[Session, int, Any]] = []
        self.block_queue = BlockQueue(self.now_ms, self.call_later)
        self.submitted: list[tuple[int, bytes]] = []

    def now_ms(self) -> int:
        return self.h.now_ms

    def _run(self, request: Any) -> Any:
        replies = []
        for argv in request.commands:
            ctx = self.h.context()
            ctx.may_block = not request.multi
            try:
                replies.append(resolve(TABLE, argv).handler(ctx, argv))
            except CommandError as exc:
                replies.append(ErrorReply(exc.text))
            ctx.finish()
        return replies if request.multi else replies[0]

    def submit(self, session: Any, token: int, request: Any) -> tuple[Any, bool] | None:
        self.submitted.append((session.id, request.commands[0][0]))
        if self.hold and "blocking" in request.specs[0].flags:
            self.held.append((session, token, request))
            return None
        return self._run(request), True

    def answer_held(self) -> None:
        """The forwarded retries come back, each run when it arrives."""
        held, self.held = self.held, []
        for session, token, request in held:
            session.on_result(token, self._run(request), True)

    def call_later(self, delay_ms: float, session: Any, fn: Any) -> None:
        self.seq += 1
        self.timers.append((self.h.now_ms + delay_ms, self.seq, fn))

    def advance(self, ms: int) -> None:
        """Move the clock ``ms`` forward, one ms at a time, firing due timers."""
        for _ in range(ms):
            self.h.advance(1)
            while True:
                due = sorted(t for t in self.timers if t[0] <= self.h.now_ms)
                if not due:
                    break
                self.timers.remove(due[0])
                due[0][2]()


def _cmd(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def _block(host: _Host, n: int, *argv: bytes, gap_ms: int = 3) -> list[Session]:
    """n clients send the same blocking command, gap_ms apart."""
    sessions = []
    for i in range(n):
        s = Session(host, i + 1)
        s.feed(_cmd(*argv))
        assert s.take_output() == b""
        sessions.append(s)
        host.advance(gap_ms)
    return sessions


def test_waiters_are_served_in_the_order_they_blocked() -> None:
    """Five BLPOPs blocked at different moments (so a per-client backoff
    would retry them in a scrambled order); one RPUSH of three elements:
    the three oldest get them, oldest first, the other two still wait."""
    host = _Host()
    waiters = _block(host, 5, b"BLPOP", b"q", b"0", gap_ms=7)
    host.advance(45)  # every waiter's backoff has reached its cap, at different phases
    producer = Session(host, 99)
    producer.feed(_cmd(b"RPUSH", b"q", b"a", b"b", b"c"))
    assert producer.take_output() == b":3\r\n"
    host.advance(5)
    got = [w.take_output() for w in waiters]
    assert got == [
        b"*2\r\n$1\r\nq\r\n$1\r\na\r\n",
        b"*2\r\n$1\r\nq\r\n$1\r\nb\r\n",
        b"*2\r\n$1\r\nq\r\n$1\r\nc\r\n",
        b"",
        b"",
    ]
    assert list(host.block_queue.waiters) == waiters[3:]


def test_a_write_wakes_waiters_at_once_not_at_the_next_backoff() -> None:
    host = _Host()
    (waiter,) = _block(host, 1, b"BLPOP", b"q", b"0")
    host.advance(200)  # backoff at its cap
    producer = Session(host, 99)
    producer.feed(_cmd(b"LPUSH", b"q", b"x"))
    host.advance(1)
    assert waiter.take_output() == b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n"
    assert not host.block_queue.waiters


def test_a_younger_waiter_does_not_overtake_an_older_one_in_flight() -> None:
    """Retries are held (forwarded to a leader): while the oldest waiter's
    retry is out, no younger waiter on the same key is retried."""
    host = _Host()
    waiters = _block(host, 3, b"BRPOP", b"q", b"0")
    host.hold = True
    host.h.run("RPUSH", "q", "only")
    host.advance(MAX_RETRY_MS * 3)
    assert {s.id for s, _t, _r in host.held} == {waiters[0].id}
    host.answer_held()
    host.advance(MAX_RETRY_MS)
    host.answer_held()
    assert waiters[0].take_output() == b"*2\r\n$1\r\nq\r\n$4\r\nonly\r\n"
    assert waiters[1].take_output() == b"" and waiters[2].take_output() == b""


def test_waiters_on_other_keys_are_not_held_up() -> None:
    host = _Host()
    (old,) = _block(host, 1, b"BLPOP", b"empty", b"0")
    (young,) = _block(host, 1, b"BLPOP", b"full", b"0")
    host.h.run("RPUSH", "full", "v")
    host.advance(MAX_RETRY_MS + 1)
    assert young.take_output() == b"*2\r\n$4\r\nfull\r\n$1\r\nv\r\n"
    assert old.take_output() == b""


def test_timeouts_and_unblock_leave_the_queue() -> None:
    host = _Host()
    (timed,) = _block(host, 1, b"BLPOP", b"q", b"0.05")
    (forever,) = _block(host, 1, b"BLPOP", b"q", b"0")
    host.advance(60)
    assert timed.take_output() == b"*-1\r\n"
    assert list(host.block_queue.waiters) == [forever]
    assert forever.unblock(error=True)
    assert forever.take_output().startswith(b"-UNBLOCKED")
    assert not host.block_queue.waiters
    host.advance(100)
    assert not host.timers, "no rounds once nobody waits"


def test_a_closed_client_leaves_and_takes_nothing() -> None:
    host = _Host()
    gone, stays = _block(host, 2, b"BLPOP", b"q", b"0")
    gone.closing = True
    host.h.run("RPUSH", "q", "v")
    host.advance(MAX_RETRY_MS + 1)
    assert stays.take_output() == b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n"
    assert not host.block_queue.waiters


def test_rounds_back_off_while_nothing_changes() -> None:
    host = _Host()
    _block(host, 1, b"BLPOP", b"q", b"0")
    before = host.block_queue.retries
    host.advance(1000)
    retries = host.block_queue.retries - before
    # 2, 4, 8, 16 ms then every 20 ms: about 50 in a second, not 500
    assert 45 <= retries <= 55, retries
    assert FIRST_RETRY_MS < MAX_RETRY_MS


def test_writes_to_other_keys_wake_no_one():
    """A busy node's writes to other keys cost its blocked clients nothing:
    only a write to a key someone waits on starts a round early."""
    host = _Host()
    (waiter,) = _block(host, 1, b"BLPOP", b"q", b"0")
    host.advance(200)  # backoff at its cap: a round every 20 ms
    producer = Session(host, 99)
    before = host.block_queue.retries
    for i in range(50):
        producer.feed(_cmd(b"SET", b"other%d" % i, b"v"))
    producer.feed(_cmd(b"MULTI") + _cmd(b"SET", b"x", b"1") + _cmd(b"EXEC"))
    host.advance(1)
    assert host.block_queue.retries == before, "no round for writes elsewhere"
    producer.feed(_cmd(b"MULTI") + _cmd(b"SET", b"x", b"2") + _cmd(b"RPUSH", b"q", b"v") + _cmd(b"EXEC"))
    host.advance(1)
    assert waiter.take_output() == b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n"
    assert not host.block_queue.waiters and not host.block_queue.waited
