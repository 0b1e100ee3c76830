"""A session's transactions (a mixin of ``resp.session.Session``): MULTI
queueing, EXEC as one request to the host, DISCARD, WATCH and UNWATCH, and
what EXEC's and WATCH's answers continue into."""

from __future__ import annotations

from typing import Any

from makod.kv.dbs import db_index
from makod.kv.requests import TxnRequest, WatchRequest
from makod.kv import errors
from makod.kv.errors import CommandError
from resp.replies import NULL_ARRAY, OK, ErrorReply


# What a session-scope handler returns when its reply will come from the host.
DEFERRED = object()


class TransactionsMixin:
    # -- transactions (called by the MULTI/EXEC/... handlers) ------------------------------------
    def multi(self) -> Any:
        if self.in_multi:
            return ErrorReply(errors.MULTI_NESTED)
        self.in_multi = True
        self.multi_error = False
        self.multi_queue = []
        return OK

    def discard(self) -> Any:
        if not self.in_multi:
            return ErrorReply(errors.DISCARD_WITHOUT_MULTI)
        self._end_multi()
        return OK

    def _end_multi(self) -> None:
        self.in_multi = False
        self.multi_error = False
        self.multi_queue = []
        self.watched = {}

    def exec_(self) -> Any:
        """Returns a reply now, or DEFERRED when the answer comes from the host."""
        if not self.in_multi:
            return ErrorReply(errors.EXEC_WITHOUT_MULTI)
        queue = self.multi_queue
        failed = self.multi_error
        watches = list(self.watched.items())
        self._end_multi()
        if failed:
            return ErrorReply(errors.EXECABORT)
        data = [argv for spec, argv in queue if spec.scope in ("data", "keyspace")]
        if not data and not watches:
            return [self._run_local(spec, argv) for spec, argv in queue]
        request = TxnRequest(data, multi=True, watches=[(k, v, db) for (db, k), v in watches] or None, db=self.db)
        request.dbs = self._queued_dbs(queue)
        tracking = self.tracking
        if tracking is not None:
            for spec, argv in queue:
                if spec.scope == "data":
                    self.track(spec, argv)
                elif spec.name == "client|caching" and len(argv) == 3:
                    # Queued CACHING applies to the commands after it (run below, once the data has run).
                    opt = argv[2].lower()
                    if (opt == b"yes" and tracking.optin) or (opt == b"no" and tracking.optout):
                        tracking.caching = True
        self._poke_waiters([(spec, argv) for spec, argv in queue if spec.scope in ("data", "keyspace")], request)
        self._submit(request, ("exec", queue), None if self.stats is None else ["exec", 0, [b"EXEC"], False])
        return DEFERRED

    def _queued_dbs(self, queue: list) -> list[int] | None:
        """The database of each queued data command, when a queued SELECT
        changes it part way (it takes effect for the commands after it, as
        in Redis); None when they all run in the current one."""
        db = self.db
        out = []
        changed = False
        for spec, argv in queue:
            if spec.name == "select":
                try:
                    db = db_index(argv[1], self.databases)
                    changed = changed or db != self.db
                except CommandError:
                    pass  # EXEC's array shows the error; the database stays
            elif spec.scope in ("data", "keyspace"):
                out.append(db)
        return out if changed else None

    def watch(self, keys: list[bytes]) -> Any:
        if self.in_multi:
            return ErrorReply(errors.WATCH_IN_MULTI)
        self._submit(WatchRequest(keys, self.db), ("watch", keys, self.db),
                     None if self.stats is None else ["watch", 0, None, False])
        return DEFERRED

    def unwatch(self) -> Any:
        self.watched = {}
        return OK

    def _continue(self, cont: tuple, result: Any) -> Any:
        kind = cont[0]
        if kind == "watch":
            if isinstance(result, ErrorReply):
                return result
            for key, version in zip(cont[1], result):
                # Redis keeps the first WATCH of a key (watchForKey), per database.
                self.watched.setdefault((cont[2], key), version)
            return OK
        if kind == "exec":
            if result is NULL_ARRAY or isinstance(result, ErrorReply):
                return result
            replies = iter(result)
            out = [
                next(replies) if spec.scope in ("data", "keyspace") else self._run_local(spec, argv)
                for spec, argv in cont[1]
            ]
            if self.stats is not None:
                for (spec, _argv), reply in zip(cont[1], out):
                    failed = type(reply) is ErrorReply
                    self.stats.record_queued(spec.name, failed)
                    if failed:
                        self.stats.error_reply(reply.text)
            return out
        raise AssertionError(f"unknown continuation {kind}")

