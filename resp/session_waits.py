"""A session's waits (a mixin of ``resp.session.Session``): a blocking
command parked in the node's queue (resp/blocking.py) and run again, CLIENT
UNBLOCK, and commands held while a CLIENT PAUSE lasts."""

from __future__ import annotations

from typing import Any

from makod.kv.requests import TxnRequest
from makod.kv import errors
from resp.commands import client_ctl
from resp.blocking import blocking_queue
from resp.replies import Blocked, ErrorReply


class WaitsMixin:
    # -- blocking commands (resp/blocking.py) -----------------------------------------------------
    def _park(self, token: int, cont: tuple, blocked: Blocked) -> bool:
        """A blocking command found nothing: wait in this node's queue to be
        run again, or time out (False). Commands pipelined after it wait, as
        in Redis."""
        now = self.host.now_ms()
        deadline = cont[2] if cont[2] is not None else (
            (now + blocked.timeout_ms) if blocked.timeout_ms else None)
        queue = blocking_queue(self.host)
        if queue is None or self.closing or (deadline is not None and now >= deadline):
            self.blocked_on = None
            return False
        request = cont[1]
        if blocked.argv is not None:  # retry a concrete form (XREAD's $ as the ID it meant)
            specs = request.specs
            request = TxnRequest([blocked.argv], db=request.db)  # in the database it blocked in
            request.specs = specs
        parked = ("block", request, deadline)
        self.blocked_on = (token, parked, blocked.reply)
        argv = request.commands[0]
        group = (request.db, tuple(request.specs[0].keys(argv)) if request.specs else tuple(argv))
        queue.park(self, token, group, deadline)
        return True

    def _wait_for_pause(self) -> bool:
        """CLIENT PAUSE holds the next command: come back when it ends."""
        if not getattr(self.host, "client_pause", None):
            return False
        left = client_ctl.paused(self, self._pending[0])
        if not left:
            return False
        if not self._pause_wait:
            self._pause_wait = True
            call_later = getattr(self.host, "call_later", None)
            if call_later is not None:
                call_later(left + 1, self, self._end_pause_wait)
        return True

    def _end_pause_wait(self) -> None:
        self._pause_wait = False
        self._run()

    def _poke_waiters(self, commands: list, request: Any) -> None:
        """Writes among ``commands`` ((spec, argv) of ``request``, in order):
        this node's clients blocked on their keys look again once they ran
        (all of them when a write's keys are unknown before it runs)."""
        queue = getattr(self.host, "block_queue", None)
        if queue is None or not queue.waiters:
            return
        keys: list[tuple[int, bytes]] | None = []
        for i, (spec, argv) in enumerate(commands):
            if not spec.is_write:
                continue
            written = spec.keys(argv)
            if not written or spec.reads_data_keys is not None or spec.scope == "keyspace":
                keys = None
                break
            db = request.db_of(i)
            keys.extend((db, key) for key in written)  # type: ignore[union-attr]
        if keys is None or keys:
            queue.poke(keys)

    def retry_blocked(self, token: int) -> bool:
        """The queue's turn for this waiter: run the command again (False:
        not now, a CLIENT PAUSE holds it, as it holds any write)."""
        parked = self.blocked_on
        if parked is None or parked[0] != token or self.closing:
            return True  # unblocked (CLIENT UNBLOCK) or answered meanwhile
        if getattr(self.host, "client_pause", None) and client_ctl.paused(self, parked[1][1].commands[0]):
            return False
        self._continuations[token] = parked[1]
        answer = self.host.submit(self, token, parked[1][1])
        if answer is not None:
            self.on_result(token, answer[0], answer[1])
        return True

    def block_timed_out(self, token: int) -> None:
        """The queue found this waiter's timeout passed: its timeout reply."""
        parked = self.blocked_on
        if parked is not None and parked[0] == token:
            self.blocked_on = None
            self._continuations.pop(token, None)
            self.on_result(token, parked[2], True)

    def unblock(self, error: bool) -> bool:
        """CLIENT UNBLOCK: answer a waiting blocking command now (its timeout
        reply, or an UNBLOCKED error). False if this client is not blocked."""
        parked = self.blocked_on
        if parked is None:
            return False
        token, _cont, timeout_reply = parked
        self.blocked_on = None
        queue = blocking_queue(self.host)
        if queue is not None:
            queue.leave(self, served=False)
        self._continuations.pop(token, None)
        self.on_result(token, ErrorReply(errors.UNBLOCKED) if error else timeout_reply, True)
        return True

