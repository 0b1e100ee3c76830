"""The clients of one node waiting in a blocking command (BLPOP & co, XREAD
BLOCK), served in the order they blocked.

Nothing waits inside the database: a waiting command is run again, whole,
until it answers or times out, so a client that goes away leaves nothing
behind that could take an element no one receives, and a pop that succeeds
is an ordinary transaction (one shard, or a distributed one).

What this queue adds is order, as Redis serves a key's blocked clients first
come, first served. Waiters are kept in the order they blocked, and they are
retried in rounds, in that order, so the oldest waiter's pop reaches the
key's leader first. Waiters on the same keys form a group: only the oldest of
a group is retried, and the next one only once it has been served, so two
clients blocked on one list never race for its next element. A round runs
soon after a write through this node on a key someone waits on (``poke``)
or after a waiter was served, else at
2 ms, backing off to 20 ms: a push made through another node reaches a waiter
within that. Order is per node; clients blocked on different nodes are not
ordered among themselves.

Pure bookkeeping: time comes from the host (``now_ms``), timers from its
``call_later(delay_ms, session, fn)`` with ``session=None``; ``fn`` returns
the sessions it touched so the host can flush them.
"""

from __future__ import annotations

from typing import Any, Callable

FIRST_RETRY_MS = 2
MAX_RETRY_MS = 20


class _Waiter:
    __slots__ = ("token", "group", "deadline_ms", "in_flight")

    def __init__(self, token: int, group: tuple, deadline_ms: int | None) -> None:
        self.token = token
        self.group = group
        self.deadline_ms = deadline_ms
        self.in_flight = False


class BlockQueue:
    def __init__(self, now_ms: Callable[[], int], call_later: Callable[..., None]) -> None:
        self._now_ms = now_ms
        self._call_later = call_later
        # session -> its wait; a dict keeps insertion order: the order they blocked
        self.waiters: dict[Any, _Waiter] = {}
        # (db, key) -> how many waiters wait on it: a write elsewhere wakes no one
        self.waited: dict[tuple[int, bytes], int] = {}
        self._retry_ms = FIRST_RETRY_MS
        self._timer_due_ms: float | None = None
        self.rounds = 0
        self.retries = 0

    def __len__(self) -> int:
        return len(self.waiters)

    # -- what sessions call ------------------------------------------------------------------
    def park(self, session: Any, token: int, group: tuple, deadline_ms: int | None) -> None:
        """``session`` waits (again): a retry that found nothing keeps its place."""
        waiter = self.waiters.get(session)
        if waiter is None or waiter.token != token:
            if waiter is not None:
                self._remove(session)
            self.waiters[session] = _Waiter(token, group, deadline_ms)
            db, keys = group
            for key in keys:
                self.waited[(db, key)] = self.waited.get((db, key), 0) + 1
        else:
            waiter.in_flight = False  # same keys: a retry runs the same command
        self._schedule(self._retry_ms if waiter is None else self._next_delay())

    def leave(self, session: Any, served: bool) -> None:
        """``session`` stops waiting: answered, timed out, unblocked or gone.
        When it was served the next waiter of its group may be served too."""
        if self._remove(session) and served and self.waiters:
            self.poke()

    def poke(self, keys: list[tuple[int, bytes]] | None = None) -> None:
        """A write ran on this node (on ``keys``, as (db, key); None: keys
        unknown): look again soon, if anyone waits on one of them."""
        if self.waiters and (keys is None or any(k in self.waited for k in keys)):
            self._retry_ms = FIRST_RETRY_MS
            self._schedule(0)

    def _remove(self, session: Any) -> bool:
        waiter = self.waiters.pop(session, None)
        if waiter is None:
            return False
        db, keys = waiter.group
        for key in keys:
            left = self.waited[(db, key)] - 1
            if left:
                self.waited[(db, key)] = left
            else:
                del self.waited[(db, key)]
        return True

    # -- rounds ---------------------------------------------------------------------------
    def _next_delay(self) -> float:
        now = self._now_ms()
        deadlines = [w.deadline_ms for w in self.waiters.values() if w.deadline_ms is not None]
        delay: float = self._retry_ms
        if deadlines:
            delay = max(0, min(delay, min(deadlines) - now))
        return delay

    def _schedule(self, delay_ms: float) -> None:
        if not self.waiters:
            return
        due = self._now_ms() + delay_ms
        if self._timer_due_ms is not None and self._timer_due_ms <= due:
            return  # an earlier round is already coming
        self._timer_due_ms = due
        self._call_later(delay_ms, None, lambda: self._fire(due))

    def _fire(self, due: float) -> list:
        if self._timer_due_ms != due:
            return []  # superseded by an earlier round
        self._timer_due_ms = None
        return self._round()

    def _round(self) -> list:
        """Time out expired waiters, then retry the oldest idle waiter of each
        group, oldest first. Returns the sessions touched."""
        self.rounds += 1
        now = self._now_ms()
        touched = []
        seen: set[tuple] = set()
        for session, waiter in list(self.waiters.items()):
            if self.waiters.get(session) is not waiter:
                continue  # answered during this round
            if getattr(session, "closing", False):
                self._remove(session)
                continue
            if waiter.deadline_ms is not None and now >= waiter.deadline_ms and not waiter.in_flight:
                self._remove(session)
                session.block_timed_out(waiter.token)
                touched.append(session)
                continue
            if waiter.group in seen:
                continue  # an older waiter on the same keys goes first
            seen.add(waiter.group)
            if waiter.in_flight:
                continue
            waiter.in_flight = True
            self.retries += 1
            touched.append(session)
            if not session.retry_blocked(waiter.token):
                waiter.in_flight = False  # held (CLIENT PAUSE): a later round tries again
        self._retry_ms = min(self._retry_ms * 2, MAX_RETRY_MS)
        self._schedule(self._next_delay())
        return touched


def blocking_queue(host: Any) -> BlockQueue | None:
    """The host's queue (made on first use), or None for a host without
    timers, where a blocking command that finds nothing times out at once."""
    queue = getattr(host, "block_queue", None)
    if queue is None:
        call_later = getattr(host, "call_later", None)
        if call_later is None:
            return None
        queue = host.block_queue = BlockQueue(host.now_ms, call_later)
    return queue
